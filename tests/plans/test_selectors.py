"""plans.selectors.task_assignee_choices: who may be made a task's assignee, by whom."""

import pytest

from plans import selectors
from tests.factories import MembershipFactory
from tests.permission_matrix import build_world


@pytest.fixture
def world(db):
    return build_world()


def _names(world, role):
    return {
        u.username for u in selectors.task_assignee_choices(user=world.user(role), task=world.task)
    }


def test_a_manager_chooses_among_the_lead_organizations_working_members(world):
    assert _names(world, "manager") == {"contributor_lead", "manager"}


def test_a_coordinator_also_chooses_supporting_people_but_not_the_coordinating_ones(world):
    # The same rule as the services' (plans.permissions.assignee_candidates): an assignee
    # works in the task's lead or a supporting organization.
    assert _names(world, "coordinator") == {
        "contributor_lead",
        "manager",
        "contributor_supporting",
    }


@pytest.mark.parametrize("role", ["viewer", "contributor_lead", "contributor_other", "anonymous"])
def test_those_who_may_not_assign_get_no_choice(world, role):
    assert _names(world, role) == set()


def test_viewers_and_inactive_people_are_never_offered(world):
    left = MembershipFactory(organization=world.lead).user
    left.is_active = False
    left.save(update_fields=["is_active"])
    names = _names(world, "coordinator")
    assert "viewer" not in names and left.username not in names
