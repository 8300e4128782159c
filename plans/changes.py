"""The changes feed: what a list's `updated_after` cannot tell a syncing client.

`updated_after` on every list returns the rows that changed (upserts). What it cannot show is
a row that is no longer there for the reader: deleted, or moved out of the reader's scope (a
task handed to another lead organization, a workstream moved to a plan the reader does not
see). This module answers "what went away since `after`" from django-simple-history's
tables, which already record every change and deletion (history_type '-') in the same
transaction as the change itself: no new table, no new write path
(docs/decisions/0013-incremental-sync.md).

Rules, with the one policy (plans.permissions):

- A row that changed after `after` (its history says so), exists for nobody or is out of the
  reader's scope now, and was inside the reader's scope in some recorded version: a
  `delete`. A row the reader never could see is never named (no leak of ids).
- A plan the reader sees only through its tasks (its organizations take no part in it) can
  appear or disappear when those tasks change: an `upsert` or a `delete` of the plan.
- When the reader's own access changed (a membership of theirs, or a participation of one
  of their organizations, added, changed or removed), rows may have entered or left the
  scope without changing themselves: `full_sync_required`. The client re-reads every list.
- A delete implies what hangs under the row: a task's status updates; a plan's workstreams,
  participants and tasks.
"""

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Max, Q
from django.utils import timezone

from tracker.models import Membership, Organization

from . import permissions as policy
from .models import Forum, Outcome, Plan, PlanParticipant, Task, Workstream

UPSERT, DELETE = "upsert", "delete"
MAX_ENTRIES = 2000  # beyond this many, a full re-read is cheaper than the feed


@dataclass(frozen=True)
class Change:
    kind: str
    id: int
    op: str
    at: dt.datetime


@dataclass
class Feed:
    until: dt.datetime
    full_sync_required: bool = False
    results: list[Change] = field(default_factory=list)


# Kinds whose scope condition (plans.permissions.scope_q) reads only fields their history
# keeps too (plan, organization). Other apps add theirs with `register`.
SCOPED_KINDS = {"workstream": Workstream, "plan-participant": PlanParticipant}


def register(kind: str, model) -> None:
    """Report deletions of `model` (it keeps a simple_history `history`) under `kind`."""
    SCOPED_KINDS[kind] = model


def _changed(model, after) -> dict[int, dt.datetime]:
    """Ids of `model` with a history row after `after`, and the time of the last one."""
    rows = (
        model.history.filter(history_date__gt=after)
        .values("id")
        .annotate(at=Max("history_date"))
        .values_list("id", "at")
    )
    return dict(rows)


def _gone(model, reader, changed: dict) -> set[int]:
    """Of `changed`, the ids the reader cannot see now (deleted, or out of scope)."""
    if not changed:
        return set()
    visible = policy.for_user(reader, policy.VIEW, model).filter(pk__in=list(changed))
    return set(changed) - set(visible.values_list("pk", flat=True))


def _access_changed(reader, after) -> bool:
    """The reader's own access moved: their memberships, or their organizations' places in
    plans. (A membership lost also shows here: its history names the reader.)"""
    if Membership.history.filter(user_id=reader.pk, history_date__gt=after).exists():
        return True
    orgs = Membership.objects.filter(user_id=reader.pk).values("organization_id")
    return PlanParticipant.history.filter(history_date__gt=after, organization_id__in=orgs).exists()


def _task_seen_q(seen: policy.Viewer) -> Q:
    """`plans.permissions._task_q(VIEW)` stated on HistoricalTask rows with the reader's
    current ids: the task, as it was in that version, was in the reader's scope."""
    history = Task.history.model
    supported = history._meta.get_field("historicaltask_supporting_organizations").related_model
    return (
        Q(plan_id__in=seen.coordinated_plan_ids)
        | Q(lead_organization_id__in=seen.organization_ids)
        | Q(
            history_id__in=supported.objects.filter(
                organization_id__in=seen.organization_ids
            ).values("history_id")
        )
        | (
            (Q(assignee_id=seen.user_id) | Q(manager_id=seen.user_id))
            & Q(plan_id__in=seen.overseen_plan_ids)
        )
        | Q(visibility=Task.Visibility.PLAN, plan_id__in=seen.participating_plan_ids)
    )


def change_feed(*, reader, after: dt.datetime | None) -> Feed:
    """The deletions (and plan arrivals) the reader must apply since `after`, oldest first.
    Without `after`: a first sync, a full read."""
    feed = Feed(until=timezone.now())
    if after is None or not policy.is_signed_in(reader):
        feed.full_sync_required = True
        return feed
    unrestricted = policy.is_unrestricted(reader)
    if not unrestricted and _access_changed(reader, after):
        feed.full_sync_required = True
        return feed
    out: list[Change] = []

    def report(kind, ids, changed, op=DELETE):
        out.extend(Change(kind, pk, op, changed[pk]) for pk in ids)

    # Public records: every reader saw them, so every deletion is reported.
    for kind, model in (("forum", Forum), ("outcome", Outcome), ("organization", Organization)):
        changed = _changed(model, after)
        report(kind, _gone(model, reader, changed), changed)

    # Tasks: gone, and inside the reader's scope in some recorded version.
    task_history = Task.history.model.objects
    changed = _changed(Task, after)
    gone = _gone(Task, reader, changed)
    seen = None if unrestricted else policy.viewer(reader)
    if gone and seen is not None:
        gone = set(
            task_history.filter(id__in=gone)
            .filter(_task_seen_q(seen))
            .values_list("id", flat=True)
            .distinct()
        )
    report("task", gone, changed)

    # Plans the reader sees only through tasks: they come and go with those tasks.
    if seen is not None and changed:
        touched = {
            plan_id: at
            for plan_id, at in task_history.filter(history_date__gt=after)
            .exclude(plan_id__in=seen.participating_plan_ids)
            .values("plan_id")
            .annotate(at=Max("history_date"))
            .values_list("plan_id", "at")
        }
        visible = set(
            policy.for_user(reader, policy.VIEW, Plan)
            .filter(pk__in=list(touched))
            .values_list("pk", flat=True)
        )
        arrived = Plan.objects.filter(pk__in=visible, updated_at__lte=after)
        report("plan", arrived.values_list("pk", flat=True), touched, op=UPSERT)
        left = set(touched) - visible
        if left:
            left = set(
                task_history.filter(plan_id__in=left)
                .filter(_task_seen_q(seen))
                .values_list("plan_id", flat=True)
                .distinct()
            )
        report("plan", left, touched)

    # Rows seen with their plan, and other apps' rows (webhooks, seen with their
    # organization): gone, and some recorded version inside the reader's scope (the
    # policy's own condition, applied to the history table).
    for kind, model in SCOPED_KINDS.items():
        changed = _changed(model, after)
        gone = _gone(model, reader, changed)
        if gone and not unrestricted:
            gone = set(
                model.history.filter(id__in=gone)
                .filter(policy.scope_q(reader, policy.VIEW, model))
                .values_list("id", flat=True)
                .distinct()
            )
        report(kind, gone, changed)

    if len(out) > MAX_ENTRIES:
        feed.full_sync_required = True
        return feed
    feed.results = sorted(out, key=lambda change: (change.at, change.kind, change.id))
    return feed
