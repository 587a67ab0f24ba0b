from django.conf import settings


def site(request):
    return {
        "site_name": settings.SITE_NAME,
        "cpt_copyright_year": settings.CPT_COPYRIGHT_YEAR,
    }
