"""
The editorial history in the content backup (carecodes.content): who changed which
payer, policy or write-up, when, and every value it had.

Each historical record is written with the natural key of its object (payer slug,
payer and policy number, code system and code), never a database id, and the
reviewer's and editor's accounts by user name. Restoring adds the file's records
that the database does not hold yet (same object, time and kind of change), so
importing a file twice adds nothing. A record whose object no longer exists on the
site (it was deleted, and the file does not bring it back) is left out: history
belongs to an object. Code groups, code rows and references keep their history in
the database only.
"""

from __future__ import annotations

import datetime

from django.contrib.auth import get_user_model
from django.db import models

from policies.models import Payer, Policy
from procedures.models import Procedure

KINDS = {"+", "~", "-"}


def _payer_key(payer):
    return [payer.slug]


def _policy_key(policy):
    return [policy.payer.slug, policy.number]


def _procedure_key(procedure):
    return [procedure.code.system, procedure.code.code]


# Section of the file: (model, key of a live object, the foreign key the key stands
# for, how to find the live object by key).
TRACKED = {
    "payers": (Payer, _payer_key, None, lambda key: Payer.objects.get(slug=key[0])),
    "policies": (
        Policy,
        _policy_key,
        "payer",
        lambda key: Policy.objects.get(payer__slug=key[0], number=key[1]),
    ),
    "procedures": (
        Procedure,
        _procedure_key,
        "code",
        lambda key: Procedure.objects.get(code__system=key[0], code__code=key[1]),
    ),
}


def _plain(value):
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    return value


def _fields(history_model):
    """The record's own value fields (the tracked model's, foreign keys aside)."""
    return [
        field
        for field in history_model.tracked_fields
        if not field.is_relation and not field.primary_key
    ]


def export_history() -> dict:
    sections = {}
    for section, (model, key_of, _parent, _find) in TRACKED.items():
        history_model = model.history.model
        live = {obj.pk: obj for obj in _with_keys(model)}
        records = []
        for record in history_model.objects.select_related(
            "history_user", *_relations(history_model)
        ).order_by("history_date", "history_id"):
            obj = live.get(record.id)
            if obj is None:
                continue
            values = {
                field.name: _plain(getattr(record, field.name))
                for field in _fields(history_model)
            }
            if section == "procedures":
                values["reviewer"] = (
                    record.reviewer.get_username() if record.reviewer_id else None
                )
            if section == "policies":
                values["replaced_by"] = (
                    _policy_key(record.replaced_by) if record.replaced_by_id else None
                )
            records.append(
                {
                    "key": key_of(obj),
                    "date": record.history_date.isoformat(),
                    "type": record.history_type,
                    "user": record.history_user.get_username()
                    if record.history_user_id
                    else None,
                    "reason": record.history_change_reason,
                    "values": values,
                }
            )
        sections[section] = records
    return sections


def _with_keys(model):
    if model is Payer:
        return Payer.objects.all()
    return model.objects.select_related({Policy: "payer", Procedure: "code"}[model])


def _relations(history_model):
    return [
        name
        for name in ("reviewer", "replaced_by__payer")
        if name.split("__")[0] in {f.name for f in history_model.tracked_fields}
    ]


def check_history(check, data):
    """Adds to ``check`` (carecodes.content's checker) what is wrong in the section."""
    history = data.get("history", {})
    if not isinstance(history, dict):
        check.fail("history", "should be an object.")
        return
    for section in history:
        if section not in TRACKED:
            check.fail(f"history.{section}", "is not a kind of content with history.")
    for section in TRACKED:
        if section not in history:
            continue
        for where, record in check.items(history, section, "history"):
            key = record.get("key")
            if not isinstance(key, list) or not all(isinstance(k, str) for k in key):
                check.fail(f"{where}.key", "should be a list of texts.")
            check.date(record, where, "date", kind=datetime.datetime, null=False)
            if record.get("type") not in KINDS:
                check.fail(f"{where}.type", "should be +, ~ or -.")
            if not isinstance(record.get("values"), dict):
                check.fail(f"{where}.values", "should be an object.")


def import_history(data) -> int:
    """Adds the file's history records the database lacks; returns how many."""
    added = 0
    users = {user.get_username(): user for user in get_user_model().objects.all()}
    for section, records in data.get("history", {}).items():
        model, _key_of, parent, find = TRACKED[section]
        history_model = model.history.model
        fields = {field.name: field for field in _fields(history_model)}
        for item in records:
            try:
                obj = find(item["key"])
            except model.DoesNotExist:
                continue
            date = datetime.datetime.fromisoformat(item["date"])
            if history_model.objects.filter(
                id=obj.pk, history_date=date, history_type=item["type"]
            ).exists():
                continue
            record = history_model(
                id=obj.pk,
                history_date=date,
                history_type=item["type"],
                history_user=users.get(item.get("user")),
                history_change_reason=item.get("reason"),
            )
            for name, value in item["values"].items():
                if name in fields:
                    setattr(record, name, _parsed(fields[name], value))
            if parent:
                setattr(record, f"{parent}_id", getattr(obj, f"{parent}_id"))
            if section == "procedures":
                record.reviewer = users.get(item["values"].get("reviewer"))
            if section == "policies" and item["values"].get("replaced_by"):
                slug, number = item["values"]["replaced_by"]
                record.replaced_by = Policy.objects.filter(
                    payer__slug=slug, number=number
                ).first()
            record.save()
            added += 1
    return added


def _parsed(field, value):
    if value is None:
        return None
    if isinstance(field, models.DateTimeField):
        return datetime.datetime.fromisoformat(value)
    if isinstance(field, models.DateField):
        return datetime.date.fromisoformat(value)
    return value
