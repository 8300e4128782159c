"""Figures of the plans list and the plan dashboard, each a fixed number of queries.

Built from the one policy's scopes (`plans.permissions.for_user`) and the plan domain's
querysets (`with_progress`, `overdue`, `open`): every figure counts only the tasks the viewer
may see, and the headline and workstream figures are the very rollups the API serves
(`/api/v1/plans/`, `/api/v1/workstreams/`). Nothing here decides who sees what.

The timeline stays bounded whatever the plan's size: it draws at most
`TIMELINE_PER_WORKSTREAM` tasks per workstream (the soonest due first) and at most
`TIMELINE_MAX_BARS` in all; each workstream says how many more it holds ("and N more").
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, F, Sum, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from plans import permissions as policy
from plans import selectors as plan_selectors
from plans.models import Plan, StatusUpdate, Task, Workstream
from tracker.models import Organization

DUE_SOON_DAYS = 30
TIMELINE_PER_WORKSTREAM = 12
TIMELINE_MAX_BARS = 120
ORGANIZATION_ROWS = 25
RECENT_CHANGES = 10

STATUS_ORDER = [code for code, _label in Task.Status.choices]


def rounded_progress(value) -> float:
    """An average progress rounded to one decimal, halves up (42.25 -> 42.3), as the API
    shows it (plans.api.serializers.RoundedProgressField)."""
    return int(float(value or 0) * 10 + 0.5) / 10


def visible_tasks(user):
    return policy.for_user(user, policy.VIEW, Task)


def plan_list(*, user, now: dt.datetime | None = None) -> list[Plan]:
    """The plans the user may see, newest first, with the rollups of the tasks they may see."""
    now = now or timezone.now()
    plans = list(
        policy.for_user(user, policy.VIEW, Plan)
        .with_progress(now=now, tasks=visible_tasks(user))
        .order_by("-period_start", "code")
    )
    for plan in plans:
        plan.progress = rounded_progress(plan.progress_rollup)
    return plans


def plan_get(*, user, pk: int, now: dt.datetime | None = None) -> Plan | None:
    """One plan the user may see, with its rollups; None when it is out of their sight."""
    now = now or timezone.now()
    plan = (
        policy.for_user(user, policy.VIEW, Plan)
        .filter(pk=pk)
        .with_progress(now=now, tasks=visible_tasks(user))
        .first()
    )
    if plan is not None:
        plan.progress = rounded_progress(plan.progress_rollup)
    return plan


@dataclass
class WorkstreamRow:
    """One line of "progress by workstream" (None: the tasks filed under no workstream)."""

    workstream: Workstream | None
    task_count: int
    done_count: int
    overdue_count: int
    progress: float
    by_status: dict = field(default_factory=dict)

    @property
    def key(self):
        return self.workstream.pk if self.workstream else None


@dataclass
class OrganizationRow:
    organization: Organization
    overdue: int
    due_soon: int

    @property
    def total(self) -> int:
        return self.overdue + self.due_soon


@dataclass
class TimelineGroup:
    workstream: Workstream | None
    tasks: list
    more: int  # tasks of the workstream not drawn


def _elapsed_percent(plan: Plan, today: dt.date) -> int:
    """How much of the plan's period has passed on `today`, 0-100 (whole days)."""
    days = (plan.period_end - plan.period_start).days + 1
    passed = (today - plan.period_start).days + 1
    return max(0, min(100, round(100 * passed / days))) if days > 0 else 0


def _workstreams(plan: Plan, tasks, now, status_rows) -> list[WorkstreamRow]:
    """The API's workstream rollups (`with_progress`), plus a line for tasks without one."""
    by_status = defaultdict(dict)
    loose = {"count": 0, "progress": 0}
    for row in status_rows:
        by_status[row["workstream_id"]][row["status"]] = row["count"]
        if row["workstream_id"] is None and row["status"] != Task.Status.CANCELLED:
            loose["count"] += row["count"]
            loose["progress"] += row["progress"] or 0
    workstreams = (
        Workstream.objects.filter(plan=plan)
        .with_progress(now=now, tasks=tasks)
        .select_related("parent")
        .order_by("order", "code", "pk")
    )
    rows = [
        WorkstreamRow(
            workstream=ws,
            task_count=ws.task_count,
            done_count=ws.done_count,
            overdue_count=ws.overdue_count,
            progress=rounded_progress(ws.progress_rollup),
            by_status=by_status.get(ws.pk, {}),
        )
        for ws in workstreams
    ]
    if by_status.get(None):
        statuses = by_status[None]
        rows.append(
            WorkstreamRow(
                workstream=None,
                task_count=loose["count"],
                done_count=sum(statuses.get(s, 0) for s in Task.COMPLETE_STATUSES),
                overdue_count=0,  # filled in from the organizations' overdue rows below
                progress=rounded_progress(
                    loose["progress"] / loose["count"] if loose["count"] else 0
                ),
                by_status=statuses,
            )
        )
    return rows


def _organizations(tasks, now) -> tuple[list[OrganizationRow], int, int, dict]:
    """Overdue and due within DUE_SOON_DAYS per lead organization (two grouped queries and
    one for the organizations), the most pressing first."""
    overdue = (
        tasks.overdue(now)
        .values("lead_organization_id", "workstream_id")
        .annotate(count=Count("pk"))
        .order_by()
    )
    due_soon = (
        tasks.open()
        .not_overdue(now)
        .filter(deadline_at__lte=now + dt.timedelta(days=DUE_SOON_DAYS))
        .values("lead_organization_id")
        .annotate(count=Count("pk"))
        .order_by()
    )
    counts = defaultdict(lambda: [0, 0])
    overdue_by_workstream = defaultdict(int)
    for row in overdue:
        counts[row["lead_organization_id"]][0] += row["count"]
        overdue_by_workstream[row["workstream_id"]] += row["count"]
    for row in due_soon:
        counts[row["lead_organization_id"]][1] += row["count"]
    organizations = Organization.objects.in_bulk(list(counts)) if counts else {}
    rows = sorted(
        (
            OrganizationRow(organization=organizations[pk], overdue=late, due_soon=soon)
            for pk, (late, soon) in counts.items()
            if pk in organizations
        ),
        key=lambda row: (-row.overdue, -row.due_soon, row.organization.name),
    )
    due_soon_total = sum(row.due_soon for row in rows)
    return (
        rows[:ORGANIZATION_ROWS],
        max(0, len(rows) - ORGANIZATION_ROWS),
        due_soon_total,
        overdue_by_workstream,
    )


def _timeline(tasks, now, workstream_rows) -> list[TimelineGroup]:
    """At most TIMELINE_PER_WORKSTREAM tasks per workstream, soonest due first, in one query."""
    ranked = (
        tasks.exclude(status=Task.Status.CANCELLED)
        .with_overdue(now)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("workstream_id")],
                order_by=[F("due_date").asc(), F("ref").asc(), F("pk").asc()],
            )
        )
        .filter(rank__lte=TIMELINE_PER_WORKSTREAM)
        .select_related("lead_organization")
        .order_by(
            F("workstream__order").asc(nulls_last=True),
            F("workstream__code").asc(nulls_last=True),
            "due_date",
            "ref",
            "pk",
        )[:TIMELINE_MAX_BARS]
    )
    by_workstream = defaultdict(list)
    for task in ranked:
        by_workstream[task.workstream_id].append(task)
    groups = []
    for row in workstream_rows:
        drawn = by_workstream.get(row.key, [])
        if row.task_count or drawn:
            groups.append(
                TimelineGroup(
                    workstream=row.workstream, tasks=drawn, more=max(0, row.task_count - len(drawn))
                )
            )
    return groups


def _recent_changes(user, plan: Plan) -> list[StatusUpdate]:
    """The plan's latest status updates the user may see, with the people they may see named
    (`shown_author_id`, ...): two queries."""
    updates = list(
        policy.for_user(user, policy.VIEW, StatusUpdate)
        .filter(task__plan=plan)
        .select_related("task", "author", "assignee_from", "assignee_to")
        .order_by("-created_at", "-pk")[:RECENT_CHANGES]
    )
    return plan_selectors.status_updates_attach_people(updates, reader=user)


def plan_dashboard(
    *, user, plan: Plan, now: dt.datetime | None = None, today: dt.date | None = None
) -> dict:
    """Every figure of `plan`'s dashboard for `user` (a plan from `plan_get`, carrying its
    rollups). A fixed number of queries whatever the number of tasks."""
    now = now or timezone.now()
    today = today or timezone.localdate(now)
    tasks = visible_tasks(user).filter(plan=plan)
    status_rows = list(
        tasks.values("workstream_id", "status")
        .annotate(count=Count("pk"), progress=Sum("progress"))
        .order_by()
    )
    by_status = dict.fromkeys(STATUS_ORDER, 0)
    for row in status_rows:
        by_status[row["status"]] += row["count"]
    workstreams = _workstreams(plan, visible_tasks(user), now, status_rows)
    organizations, more_organizations, due_soon, overdue_by_workstream = _organizations(tasks, now)
    for row in workstreams:
        if row.workstream is None:
            row.overdue_count = overdue_by_workstream.get(None, 0)
    return {
        "plan": plan,
        "today": today,
        "now": now,
        "headline": {
            "task_count": plan.task_count,
            "done_count": plan.done_count,
            "overdue_count": plan.overdue_count,
            "progress": plan.progress,
            "cancelled_count": by_status[Task.Status.CANCELLED],
            "due_soon_count": due_soon,
            "elapsed_percent": _elapsed_percent(plan, today),
        },
        "status_counts": [(code, by_status[code]) for code in STATUS_ORDER],
        "workstreams": workstreams,
        "organizations": organizations,
        "more_organizations": more_organizations,
        "due_soon_days": DUE_SOON_DAYS,
        "timeline": _timeline(tasks, now, workstreams),
        "timeline_per_workstream": TIMELINE_PER_WORKSTREAM,
        "recent_changes": _recent_changes(user, plan),
        "scorecard": plan_selectors.outcome_scorecard(user=user, plan=plan),
    }
