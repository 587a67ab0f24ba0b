from django.conf import settings


def site(request):
    return {
        "site_name": settings.SITE_NAME,
        "cpt_copyright_year": settings.CPT_COPYRIGHT_YEAR,
        # For pages without a description of their own (the error pages).
        "default_description": (
            "Medical procedure and diagnosis codes explained in plain language, "
            "with the payer policies that name them."
        ),
    }
