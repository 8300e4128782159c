"""Reads of the plan domain that need scoping: the policy first, then the filters."""

from django.db import connection
from django.db.models import Q, QuerySet

from tracker.models import Membership, User

from . import permissions as policy
from .models import PlanParticipant, Task
from .services import WORKFLOW, Move


def coordinates_any_plan(user: User) -> bool:
    """Superusers and coordinators of a coordinating participant see whole plans."""
    if policy.is_unrestricted(user):
        return True
    if not policy.is_signed_in(user):
        return False
    return PlanParticipant.objects.filter(
        role=PlanParticipant.Role.COORDINATING,
        organization__memberships__user=user,
        organization__memberships__role=Membership.Role.COORDINATOR,
    ).exists()


def task_mine(*, user: User, queryset: QuerySet | None = None) -> QuerySet:
    """ "My tasks": open tasks the user is assigned to or manages, or that their organizations
    lead or support."""
    queryset = policy.for_user(user, policy.VIEW, queryset if queryset is not None else Task)
    orgs = Membership.objects.filter(user=user).values("organization_id")
    supported = Task.supporting_organizations.through.objects.filter(
        organization_id__in=orgs
    ).values("task_id")
    return queryset.open().filter(
        Q(assignee=user) | Q(manager=user) | Q(lead_organization_id__in=orgs) | Q(pk__in=supported)
    )


def task_allowed_moves(*, user: User, task: Task) -> list[tuple[str, Move]]:
    """The workflow moves `user` may make on `task` from its current status."""
    moves = [(to, move) for (frm, to), move in WORKFLOW.items() if frm == task.status]
    allowed = {
        action: policy.can(user, action, task)
        for action in {policy.move_action(move) for _to, move in moves}
    }
    return [(to, move) for to, move in moves if allowed[policy.move_action(move)]]


def task_list(*, user: User, filters: dict | None = None, queryset: QuerySet | None = None):
    """Tasks `user` may see, narrowed by TaskFilterSet `filters` (a QueryDict or dict).

    Raises django.core.exceptions.ValidationError naming each invalid filter.
    """
    from django.core.exceptions import ValidationError

    from .filtersets import TaskFilterSet

    scoped = policy.for_user(user, policy.VIEW, queryset if queryset is not None else Task)
    filterset = TaskFilterSet(filters or {}, queryset=scoped)
    if not filterset.is_valid():
        raise ValidationError(
            {
                field: [error["message"] for error in errors]
                for field, errors in filterset.errors.get_json_data().items()
            }
        )
    return filterset.qs


def task_attach_relations(tasks: list[Task]) -> list[Task]:
    """Give each task the ids of its supporting organizations, source outcomes and
    dependencies (`support_ids`, `outcome_ids`, `depends_on_ids`) in ONE query for the page.

    Written as plain SQL (valid on PostgreSQL and SQLite): it runs on every task list.
    """
    for task in tasks:
        task.support_ids, task.outcome_ids, task.depends_on_ids = [], [], []
    if not tasks:
        return tasks
    by_id = {task.pk: task for task in tasks}
    ids = list(by_id)
    marks = ", ".join(["%s"] * len(ids))
    support = Task.supporting_organizations.through._meta.db_table
    outcomes = Task.source_outcomes.through._meta.db_table
    depends = Task.depends_on.through._meta.db_table
    sql = (
        f"SELECT task_id, 1, organization_id FROM {support} WHERE task_id IN ({marks}) "
        f"UNION ALL SELECT task_id, 2, outcome_id FROM {outcomes} WHERE task_id IN ({marks}) "
        f"UNION ALL SELECT from_task_id, 3, to_task_id FROM {depends} "
        f"WHERE from_task_id IN ({marks}) ORDER BY 1, 2, 3"
    )
    attribute = {1: "support_ids", 2: "outcome_ids", 3: "depends_on_ids"}
    with connection.cursor() as cursor:
        cursor.execute(sql, ids * 3)
        for task_id, kind, other_id in cursor.fetchall():
            getattr(by_id[task_id], attribute[kind]).append(other_id)
    return tasks


def task_assignee_choices(*, user: User, task: Task) -> QuerySet:
    """People `user` may make the assignee of `task`: active members with a working role
    (coordinator, manager, contributor; never viewers) of its lead organization and, for
    coordinators of the plan, also of its supporting and coordinating organizations. Empty
    when `user` may not assign the task at all."""
    if not policy.can(user, policy.ASSIGN, task):
        return User.objects.none()
    orgs = Q(organization_id=task.lead_organization_id)
    if policy.can(user, policy.CHANGE, task):
        supporting = Task.supporting_organizations.through.objects.filter(task_id=task.pk)
        coordinating = PlanParticipant.objects.filter(
            plan_id=task.plan_id, role=PlanParticipant.Role.COORDINATING
        )
        orgs |= Q(organization_id__in=supporting.values("organization_id")) | Q(
            organization_id__in=coordinating.values("organization_id")
        )
    members = Membership.objects.filter(orgs, role__in=policy.WORKING_ROLES).values("user_id")
    return User.objects.filter(pk__in=members, is_active=True, is_system=False).order_by(
        "first_name", "last_name", "username"
    )
