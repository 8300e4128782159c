"""Readouts and drafts under the one policy (plans.permissions): they are work towards outcomes,
so whoever may add outcomes (policy ADD on Outcome: coordinators) sees and reviews them, and
nobody else sees them at all (404). A readout is never changed once pasted; a draft is
dropped, not deleted."""

from django.db.models import Q

from .. import permissions as policy
from ..models import Outcome
from .models import OutcomeDraft, Readout


def _scope(user, action: str) -> Q:
    return Q() if policy.is_coordinator(user) else Q(pk__in=[])


def _may_create(user) -> bool:
    return policy.can(user, policy.ADD, Outcome)


def register() -> None:
    policy.register(Readout, _scope, _may_create, nobody=(policy.CHANGE, policy.DELETE))
    policy.register(OutcomeDraft, _scope, _may_create, nobody=(policy.DELETE,))
