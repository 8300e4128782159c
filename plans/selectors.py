"""Reads of the plan domain that need scoping: the policy first, then the filters."""

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
