"""Reads of the workspace pages, each a fixed number of queries whatever the rows.

Built only from the one policy (`plans.permissions.for_user`) and the plan selectors; the
workspace adds ordering, grouping and the columns a page shows, never a rule.
"""

import datetime as dt

from django.db.models import Case, Count, IntegerField, Prefetch, Q, QuerySet, Value, When
from django.utils import timezone

from plans import permissions as policy
from plans import selectors as plan_selectors
from plans.models import Outcome, Plan, StatusUpdate, Task
from plans.services import WORKFLOW
from tracker.models import Membership, User

ROW_RELATIONS = ("plan", "workstream", "lead_organization", "assignee", "manager")
RECENT_DAYS = 7
PAGE_ROWS = 100


def _rows(queryset: QuerySet, now: dt.datetime) -> QuerySet:
    """Overdue first, then soonest due; with what a row shows."""
    return (
        queryset.with_overdue(now)
        .select_related(*ROW_RELATIONS)
        .annotate(
            overdue_rank=Case(
                When(Q(status__in=Task.OPEN_STATUSES, deadline_at__lte=now), then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("overdue_rank", "deadline_at", "ref", "pk")
    )


# Moves that take a task forward, in the order a "next step" button prefers them; an
# in-progress task's next step is a progress report.
FORWARD = ("in_progress", "verified")
REPORT = "report"


def next_steps(*, user: User, tasks: list[Task]) -> dict[int, tuple[str, object]]:
    """For each task, its next step for `user`: (to_status, move) for the forward move the
    policy lets them make, or (REPORT, None) where they may only report progress. Three
    queries for the whole page."""
    if not tasks:
        return {}
    ids = Task.objects.filter(pk__in=[task.pk for task in tasks])
    allowed = {
        action: set(policy.for_user(user, action, ids).values_list("pk", flat=True))
        for action in (policy.TRANSITION, policy.VERIFY, policy.ADD_UPDATE)
    }
    result = {}
    for task in tasks:
        for (frm, to), move in WORKFLOW.items():
            if frm == task.status and to in FORWARD:
                if task.pk in allowed[policy.move_action(move)]:
                    result[task.pk] = (to, move)
                break
        if task.pk not in result and task.is_open and task.pk in allowed[policy.ADD_UPDATE]:
            result[task.pk] = (REPORT, None)
    return result


def my_tasks(*, user: User, now: dt.datetime | None = None) -> list[Task]:
    """Open tasks the user works on (assignee, manager, their organizations lead or support)."""
    now = now or timezone.now()
    return list(_rows(plan_selectors.task_mine(user=user), now)[:PAGE_ROWS])


def managed_organizations(user: User) -> QuerySet:
    return Membership.objects.filter(user=user, role=Membership.Role.MANAGER).values(
        "organization_id"
    )


def is_manager(user: User) -> bool:
    return Membership.objects.filter(user=user, role=Membership.Role.MANAGER).exists()


def team_tasks(*, user: User, now: dt.datetime | None = None) -> dict:
    """A manager's people's open tasks (tasks they manage or their organization leads) and,
    per assignee, how many are late."""
    now = now or timezone.now()
    scoped = policy.for_user(user, policy.VIEW, Task).open()
    team = scoped.filter(Q(manager=user) | Q(lead_organization_id__in=managed_organizations(user)))
    late = (
        team.overdue(now)
        .values("assignee_id", "assignee__username", "assignee__first_name", "assignee__last_name")
        .annotate(count=Count("pk"))
        .order_by("-count", "assignee__username")
    )
    return {"tasks": list(_rows(team, now)[:PAGE_ROWS]), "late": list(late)}


def coordinator_overview(*, user: User, now: dt.datetime | None = None) -> dict:
    """Each plan the user coordinates with its headline figures, the tasks awaiting their
    verification and the tasks that became overdue in the last seven days."""
    now = now or timezone.now()
    visible = policy.for_user(user, policy.VIEW, Task)
    plans = list(
        policy.for_user(user, policy.CHANGE, Plan)
        .with_progress(now=now, tasks=visible)
        .order_by("-period_start", "code")
    )
    awaiting_counts = dict(
        visible.filter(plan__in=[plan.pk for plan in plans], status=Task.Status.DONE)
        .values("plan_id")
        .annotate(count=Count("pk"))
        .values_list("plan_id", "count")
    )
    for plan in plans:
        plan.awaiting_count = awaiting_counts.get(plan.pk, 0)
    coordinated = [plan.pk for plan in plans]
    awaiting = (
        policy.for_user(user, policy.VERIFY, Task)
        .filter(status=Task.Status.DONE, plan__in=coordinated)
        .with_overdue(now)
        .select_related(*ROW_RELATIONS)
        .order_by("completed_at", "pk")[:PAGE_ROWS]
    )
    newly_overdue = _rows(
        visible.filter(plan__in=coordinated)
        .overdue(now)
        .filter(deadline_at__gt=now - dt.timedelta(days=RECENT_DAYS)),
        now,
    )[:PAGE_ROWS]
    return {"plans": plans, "awaiting": list(awaiting), "newly_overdue": list(newly_overdue)}


def task_get(*, user: User, pk: int, now: dt.datetime | None = None) -> Task | None:
    """One task the user may see, with everything its page shows, or None."""
    now = now or timezone.now()
    updates = StatusUpdate.objects.select_related("author", "assignee_from", "assignee_to")
    return (
        policy.for_user(user, policy.VIEW, Task)
        .filter(pk=pk)
        .with_overdue(now)
        .select_related(*ROW_RELATIONS)
        .prefetch_related(
            "supporting_organizations",
            Prefetch("source_outcomes", queryset=Outcome.objects.select_related("forum")),
            Prefetch("updates", queryset=updates.order_by("-created_at", "-pk")),
        )
        .first()
    )


def task_lineage(*, user: User, task: Task) -> dict[str, list[Task]]:
    """The task of the previous plan version `task` carries over, and the tasks of later
    versions that carry it over, each only if `user` may see it (one query)."""
    linked = Q(predecessor_id=task.pk)
    if task.predecessor_id:
        linked |= Q(pk=task.predecessor_id)
    rows = (
        policy.for_user(user, policy.VIEW, Task)
        .filter(linked)
        .select_related("plan")
        .order_by("plan__period_start", "pk")
    )
    lineage = {"carried_from": [], "carried_to": []}
    for row in rows:
        lineage["carried_from" if row.pk == task.predecessor_id else "carried_to"].append(row)
    return lineage


def task_abilities(*, user: User, task: Task) -> dict[str, bool]:
    """What the policy lets `user` do on `task` (one query per action)."""
    return {
        action: policy.can(user, action, task)
        for action in (
            policy.TRANSITION,
            policy.VERIFY,
            policy.ASSIGN,
            policy.CHANGE_DEADLINE,
            policy.ADD_UPDATE,
        )
    }


def task_moves(*, user: User, task: Task, abilities: dict[str, bool]) -> list[tuple[str, object]]:
    """The workflow moves open to `user` from the task's status, from `abilities` (no query).
    The same answer as plans.selectors.task_allowed_moves."""
    return [
        (to, move)
        for (frm, to), move in WORKFLOW.items()
        if frm == task.status and abilities.get(policy.move_action(move))
    ]
