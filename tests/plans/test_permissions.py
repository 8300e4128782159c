"""The permission policy (plans/permissions.py), generated from the one matrix in
tests/permission_matrix.py, plus the rules the matrix's world does not reach."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from plans import permissions as policy
from plans import services
from plans.exceptions import NotAllowed, NotVisible
from plans.models import Forum, Plan, Task
from tests.factories import OrganizationFactory, UserFactory
from tests.permission_matrix import (
    ALLOW,
    DENY,
    EXPECTED,
    EXPECTED_ADD,
    HIDDEN,
    MODELS,
    ROLES,
    build_world,
    matrix_cases,
)
from tracker.models import Membership
from tracker.services import system_user

Role = Membership.Role


@pytest.fixture(scope="class")
def shared_world(django_db_setup, django_db_blocker):
    """One world for the read-only matrix cells of a class, rolled back after its last test.

    The matrix cells only ask the policy questions; building the world once keeps the
    ~260 of them fast. Each test still runs in its own savepoint (the `db` fixture).
    """
    with django_db_blocker.unblock(), transaction.atomic():
        world = build_world()
        yield world
        transaction.set_rollback(True)


@pytest.fixture
def world(db):
    """A fresh world for tests that change it."""
    return build_world()


# --- The matrix ------------------------------------------------------------------------------


class TestMatrix:
    """Every cell of EXPECTED and EXPECTED_ADD, against one shared world."""

    @pytest.mark.parametrize(("model", "action", "role", "outcome"), list(matrix_cases()))
    def test_policy_matrix(self, db, shared_world, model, action, role, outcome):
        user, obj = shared_world.user(role), shared_world.obj(model)

        assert policy.can(user, action, obj) is (outcome == ALLOW)
        # "hidden" means out of sight altogether; "deny" means seen but refused.
        assert policy.can(user, policy.VIEW, obj) is (outcome != HIDDEN)
        in_scope = policy.for_user(user, action, type(obj)).filter(pk=obj.pk).exists()
        assert in_scope is (outcome == ALLOW)

        if outcome == ALLOW:
            policy.ensure(user, action, obj)
        elif outcome == DENY:
            with pytest.raises(NotAllowed):
                policy.ensure(user, action, obj)
        else:
            with pytest.raises(NotVisible):
                policy.ensure(user, action, obj)

    @pytest.mark.parametrize("model", sorted(EXPECTED_ADD))
    @pytest.mark.parametrize("role", ROLES)
    def test_who_may_create_rows_of_a_kind(self, db, shared_world, model, role):
        model_class = MODELS[model]
        user = shared_world.user(role)
        assert policy.can(user, policy.ADD, model_class) is EXPECTED_ADD[model][role]
        if EXPECTED_ADD[model][role]:
            policy.ensure(user, policy.ADD, model_class)
        else:
            with pytest.raises(NotAllowed):
                policy.ensure(user, policy.ADD, model_class)


def test_the_matrix_covers_every_model_and_action_asked_for():
    asked = {
        "task": {
            "view",
            "change",
            "delete",
            "transition",
            "verify",
            "assign",
            "change_deadline",
            "add_update",
        },
        "plan": {"view", "change"},
        "workstream": {"view", "change", "delete"},
        "statusupdate": {"view", "change", "delete"},
        "forum": {"view", "change", "delete"},
        "outcome": {"view", "change", "delete"},
        "organization": {"view", "change", "delete"},
        "membership": {"view", "change", "delete"},
        "planparticipant": {"view", "change", "delete"},
    }
    covered: dict[str, set[str]] = {}
    for model, action in EXPECTED:
        covered.setdefault(model, set()).add(action)
    assert covered == asked
    assert len(list(matrix_cases())) == len(EXPECTED) * len(ROLES)


def test_nobody_rows_are_denied_to_everyone_who_sees_the_object():
    # Models other apps registered (webhook deliveries) have their own tests.
    matrix_nobody = [(m, a) for m, a in policy.NOBODY if m in MODELS.values()]
    assert len(matrix_nobody) >= 3
    for model_class, action in matrix_nobody:
        (name,) = [name for name, cls in MODELS.items() if cls is model_class]
        assert ALLOW not in EXPECTED[(name, action)].values(), (name, action)


# --- Rules beyond the matrix -----------------------------------------------------------------


def test_task_with_plan_visibility_is_seen_by_every_participant_but_moved_by_the_lead(world):
    contributor_other = world.user("contributor_other")
    assert not policy.can(contributor_other, policy.VIEW, world.task)

    services.task_update(actor=system_user(), task=world.task, visibility=Task.Visibility.PLAN)

    assert policy.can(contributor_other, policy.VIEW, world.task)
    assert policy.for_user(contributor_other, policy.VIEW, Task).filter(pk=world.task.pk).exists()
    for action in ("transition", "add_update", "change", "verify", "assign"):
        assert not policy.can(contributor_other, action, world.task), action
        with pytest.raises(NotAllowed):
            policy.ensure(contributor_other, action, world.task)
    # Only participants: plan B's coordinator still does not see it.
    assert not policy.can(world.user("coordinator_other_plan"), policy.VIEW, world.task)


def _outsider(label: str):
    """A user whose organization takes no part in plan A."""
    user = UserFactory(username=label)
    services.membership_create(
        actor=system_user(),
        user=user,
        organization=OrganizationFactory(name=f"Outside {label}"),
        role=Role.CONTRIBUTOR,
    )
    return user


def test_an_outsider_cannot_be_made_assignee_or_manager_to_gain_sight(world):
    """Being named on a task no longer opens it: an outsider cannot be named at all, and a
    legacy row naming one gives them nothing."""
    from django.core.exceptions import ValidationError

    outsider = _outsider("outside-assignee")
    with pytest.raises(ValidationError):
        services.task_assign(actor=system_user(), task=world.task, assignee=outsider)
    with pytest.raises(ValidationError):
        services.task_assign(actor=system_user(), task=world.task, assignee=None, manager=outsider)
    Task.objects.filter(pk=world.task.pk).update(assignee=outsider, manager=outsider)
    assert not policy.can(outsider, policy.VIEW, world.task)
    assert not policy.can(outsider, policy.VIEW, world.plan_a)


def test_a_manager_from_the_coordinating_ministry_sees_the_task_while_a_member(world):
    """A ministry official (a manager at M, not a coordinator) overseeing a firm's task sees
    it as its manager, and only while still at M."""
    official = UserFactory(username="ministry-manager")
    membership = services.membership_create(
        actor=system_user(), user=official, organization=world.m, role=Role.MANAGER
    )
    assert not policy.can(official, policy.VIEW, world.task)

    services.task_assign(actor=system_user(), task=world.task, assignee=None, manager=official)

    assert policy.can(official, policy.VIEW, world.task)
    assert policy.can(official, policy.VIEW, world.plan_a)
    assert not policy.can(official, policy.CHANGE, world.task)

    services.membership_delete(actor=system_user(), membership=membership)
    assert Task.objects.get(pk=world.task.pk).manager == official
    assert not policy.can(official, policy.VIEW, world.task)


def test_a_user_with_two_memberships_gets_the_union_and_no_more(world):
    user = UserFactory(username="two-hats")
    system = system_user()
    services.membership_create(actor=system, user=user, organization=world.lead, role=Role.VIEWER)
    services.membership_create(
        actor=system, user=user, organization=world.m2, role=Role.COORDINATOR
    )

    # From the viewer membership at L: sees T and plan A, reads only.
    assert policy.can(user, policy.VIEW, world.task)
    assert policy.can(user, policy.VIEW, world.plan_a)
    assert not policy.can(user, policy.TRANSITION, world.task)
    assert not policy.can(user, policy.CHANGE, world.plan_a)
    # From the coordinator membership at M2: plan B is theirs, and plan B only.
    assert policy.can(user, policy.CHANGE, world.plan_b)
    assert not policy.can(user, policy.CHANGE, world.task)
    assert set(policy.for_user(user, policy.VIEW, Plan)) == {world.plan_a, world.plan_b}
    assert set(policy.for_user(user, policy.CHANGE, Plan)) == {world.plan_b}

    # Viewer at L plus contributor at S: notes (as S), never moves (L's viewer is read-only).
    other = UserFactory(username="lead-viewer-supporting-contributor")
    services.membership_create(actor=system, user=other, organization=world.lead, role=Role.VIEWER)
    services.membership_create(
        actor=system, user=other, organization=world.supporting, role=Role.CONTRIBUTOR
    )
    assert policy.can(other, policy.ADD_UPDATE, world.task)
    assert not policy.can(other, policy.TRANSITION, world.task)


@pytest.mark.parametrize("role", ["contributor_lead", "coordinator", "superuser"])
def test_an_inactive_user_sees_and_does_nothing(world, role):
    user = world.user(role)
    user.is_active = False
    user.save(update_fields=["is_active"])

    for name, model in MODELS.items():
        for action in ("view", "change"):
            assert not policy.for_user(user, action, model).exists(), (name, action)
            assert not policy.can(user, action, world.obj(name)), (name, action)
        assert not policy.can(user, policy.ADD, model), name
    with pytest.raises(NotVisible):
        policy.ensure(user, policy.VIEW, world.task)


def test_system_account_may_do_everything_but_what_nobody_does(world):
    system = system_user()
    assert not system.is_active  # it cannot sign in, and still acts through services
    for (name, action), _row in EXPECTED.items():
        obj = world.obj(name)
        allowed = (type(obj), action) not in policy.NOBODY
        assert policy.can(system, action, obj) is allowed, (name, action)
    for name, model in MODELS.items():
        assert policy.can(system, policy.ADD, model), name


def test_system_account_may_act_on_any_row_of_a_kind(world):
    """can(user, action, Model) with a class: "may the user act on any row of it?". The
    system account may do everything (DESIGN: "superuser and the system actor:
    everything"), so the answer is yes wherever a row exists and nobody is not the rule."""
    system = system_user()
    for (name, action), _row in EXPECTED.items():
        model = MODELS[name]
        allowed = (model, action) not in policy.NOBODY
        assert policy.can(system, action, model) is allowed, (name, action)


@pytest.mark.parametrize("anonymous", [None, AnonymousUser()], ids=["none", "anonymous_user"])
def test_anonymous_sees_and_does_nothing(world, anonymous):
    for name, model in MODELS.items():
        for action in policy.ACTIONS:
            if action not in ("view", "add", "change", "delete") and model is not Task:
                continue
            assert not policy.for_user(anonymous, action, model).exists(), (name, action)
            assert not policy.can(anonymous, action, model), (name, action)
        assert not policy.can(anonymous, policy.VIEW, world.obj(name)), name
        with pytest.raises(NotVisible):
            policy.ensure(anonymous, policy.VIEW, world.obj(name))
    with pytest.raises(NotAllowed):
        policy.ensure(anonymous, policy.ADD, Forum)


def test_superuser_is_bound_by_nothing_but_nobody(world):
    superuser = world.user("superuser")
    for name, model in MODELS.items():
        assert policy.for_user(superuser, policy.VIEW, model).count() == model.objects.count()
        assert policy.can(superuser, policy.ADD, model), name
    assert not policy.for_user(superuser, policy.DELETE, Task).exists()
