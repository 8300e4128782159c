"""ETags of the records without a version column (forums, outcomes, plans, workstreams, plan
participants, organizations): a hash of the row's stored values and of its many-to-many
links, so any change (through the API, the admin or the workspace) gives a new ETag.

Tasks keep their `version` counter ("v6", plans.api.views.etag). Here the ETag is a quoted
16-hex-digit hash; If-Match with a different (or malformed) value is 412 and nothing is
written (plans.exceptions.RecordChanged), exactly as for tasks.
"""

import hashlib
import json

from tracker import content_language
from tracker.models import Organization

from .exceptions import RecordChanged
from .models import Forum, Outcome, Plan, PlanParticipant, Workstream

# The many-to-many links that are part of a record (read from a prefetch when there is one).
LINKS = {
    Forum: ("hosts", "participants"),
    Outcome: ("parties",),
    Workstream: ("lead_organizations",),
    Plan: (),
    PlanParticipant: (),
    Organization: (),
}


def _ids(obj, name: str) -> list[int]:
    return sorted(each.pk for each in getattr(obj, name).all())


def content_etag(obj) -> str:
    """The record's ETag value (without quotes): changes whenever a stored value changes."""
    model = type(obj)
    skip = set(content_language.translated_fields(model))  # the *_en / *_ko columns count
    values = [
        [field.attname, getattr(obj, field.attname)]
        for field in model._meta.concrete_fields
        if field.name not in skip
    ]
    for name in LINKS.get(model, ()):
        values.append([name, _ids(obj, name)])
    if model is Plan:
        # Participants and their roles are part of the plan (prefetched as `participations`).
        values.append(
            ["participants", sorted((p.organization_id, p.role) for p in obj.participations.all())]
        )
    text = json.dumps(values, default=str, sort_keys=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def quoted(obj) -> str:
    return f'"{content_etag(obj)}"'


def check(obj, expected: str | None) -> None:
    """Refuse (412) when `expected` (the If-Match value, quotes and W/ removed) is not the
    record's ETag. None: not checked. Call it on the row locked for the write."""
    if expected is None:
        return
    actual = content_etag(obj)
    if expected != actual:
        raise RecordChanged(
            kind=str(type(obj)._meta.verbose_name), expected=expected, actual=actual
        )
