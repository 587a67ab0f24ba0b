"""Dumps of the content tables that compare across databases and runs.

``natural_dump`` names every row by its values, foreign keys included (followed to
the row they point at), never by a primary key, so two databases filled in different
orders compare equal when they hold the same content.
"""

import json

from django.apps import apps

APPS = ("procedures", "policies")
# Derived from the content and recomputed after writes (index.similar): not what
# an import or a restore writes, so dumps leave it out.
DERIVED_MODELS = {"index.SimilarCode"}


def _models():
    # History (simple-history's Historical* models) is the record of changes, not
    # content: each path that writes keeps its own.
    return [
        model
        for model in apps.get_models(include_auto_created=True)
        if model._meta.app_label in APPS
        and model._meta.label not in DERIVED_MODELS
        and not hasattr(model, "instance_type")
    ]


def _plain(value):
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


# The row's save counter (optimistic locking) says how it was written, not what it
# holds; the reviewer's account is the site's, not the content's (the backup keeps
# the reviewer's name).
def natural_dump(skip=("created_at", "updated_at", "version", "reviewer")):
    rows_by_model = {}
    for model in _models():
        fields = [f for f in model._meta.concrete_fields if f.name not in skip]
        rows_by_model[model] = {
            row["pk"]: row
            for row in model.objects.values("pk", *(f.attname for f in fields))
        }
    memo = {}

    def key(model, pk):
        if pk is None:
            return None
        if (model, pk) not in memo:
            memo[(model, pk)] = None  # a cycle reads as None rather than looping
            row = rows_by_model[model][pk]
            values = []
            for field in model._meta.concrete_fields:
                if field.name in skip or field.primary_key:
                    continue
                value = row[field.attname]
                if field.is_relation:
                    value = key(field.related_model, value)
                values.append((field.name, _plain(value)))
            memo[(model, pk)] = tuple(values)
        return memo[(model, pk)]

    return {
        model._meta.label: sorted(
            (key(model, pk) for pk in rows), key=lambda row: repr(row)
        )
        for model, rows in rows_by_model.items()
    }


def pk_dump(skip=()):
    """Every content row by primary key, timestamps included unless skipped."""
    return {
        model._meta.label: list(
            model.objects.order_by("pk").values_list(
                *(
                    field.attname
                    for field in model._meta.concrete_fields
                    if field.name not in skip
                )
            )
        )
        for model in _models()
    }
