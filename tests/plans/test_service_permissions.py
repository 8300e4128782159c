"""The services enforce the policy: generated from the task rows of the permission matrix.

allow -> the change is made and its StatusUpdate is authored by the actor; deny -> NotAllowed
and nothing written; hidden -> NotVisible and nothing written. Every refusal is re-run as the
plan's coordinator, which must succeed: the refusal was about who asked, not about the call.
"""

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError

from plans import services
from plans.exceptions import NotAllowed, NotVisible
from plans.models import StatusUpdate, Task
from plans.services import ASSIGNEE_OUTSIDE_ORGANIZATION, PLAN_WITHOUT_ACTOR
from tests.factories import FACTORY_NOTE, OrganizationFactory, UserFactory
from tests.permission_matrix import ALLOW, DENY, HIDDEN, build_world, matrix_cases
from tracker.models import Membership
from tracker.services import ROLE_GROUPS, system_user

S = Task.Status
Kind = StatusUpdate.Kind
NEW_TITLE = "Hydrogen turbine pilot line, phase two"
NEW_DUE = dt.date(2031, 3, 31)
NOTE = "Supplier audit found a delay in the turbine casing."
REASON = "The supplier moved the casing delivery by a quarter."


@pytest.fixture
def world(db):
    return build_world()


def snapshot(task: Task):
    """What a refused call must leave alone: the task row and the whole history."""
    return (
        Task.objects.filter(pk=task.pk).values().get(),
        StatusUpdate.objects.count(),
        list(StatusUpdate.objects.order_by("pk").values_list("pk", flat=True)),
    )


# Per task action: prepare the world, make the call, check what an allowed call wrote.


def _prepare_verify(world):
    services.task_transition(
        actor=system_user(),
        task=world.task,
        to_status=S.DONE,
        expected_from=S.IN_PROGRESS,
        note=FACTORY_NOTE,
        evidence_url="https://example.org/evidence",
    )
    world.task.refresh_from_db()


def _call(action, world, actor):
    task = world.task
    if action == "change":
        return services.task_update(actor=actor, task=task, title=NEW_TITLE)
    if action == "transition":
        return services.task_transition(
            actor=actor, task=task, to_status=S.AT_RISK, expected_from=S.IN_PROGRESS, note=NOTE
        )
    if action == "verify":
        return services.task_transition(
            actor=actor, task=task, to_status=S.VERIFIED, expected_from=S.DONE
        )
    if action == "assign":
        return services.task_assign(actor=actor, task=task, assignee=world.user("contributor_lead"))
    if action == "change_deadline":
        return services.task_change_deadline(
            actor=actor, task=task, due_date=NEW_DUE, reason=REASON
        )
    if action == "add_update":
        return services.status_update_add(actor=actor, task=task, note=NOTE)
    raise AssertionError(action)


def _check_written(action, world, actor, before):
    task = Task.objects.get(pk=world.task.pk)
    before_row, before_count, before_pks = before
    new_updates = list(StatusUpdate.objects.exclude(pk__in=before_pks).order_by("pk"))
    if action == "change":
        assert task.title == NEW_TITLE
        assert task.version == before_row["version"] + 1
        assert task.updated_by == actor
        assert StatusUpdate.objects.count() == before_count  # descriptive edits: no log line
        return
    assert StatusUpdate.objects.count() == before_count + 1
    (update,) = new_updates
    assert update.task_id == task.pk
    assert update.author == actor
    assert task.version == before_row["version"] + (0 if action == "add_update" else 1)
    if action == "transition":
        assert task.status == S.AT_RISK
        assert (update.kind, update.status_from, update.status_to) == (
            Kind.TRANSITION,
            S.IN_PROGRESS,
            S.AT_RISK,
        )
        assert update.note == NOTE
    elif action == "verify":
        assert task.status == S.VERIFIED and task.verified_at is not None
        assert (update.kind, update.status_from, update.status_to) == (
            Kind.TRANSITION,
            S.DONE,
            S.VERIFIED,
        )
    elif action == "assign":
        assert task.assignee == world.user("contributor_lead")
        assert (update.kind, update.assignee_to) == (Kind.ASSIGNMENT, task.assignee)
    elif action == "change_deadline":
        assert task.due_date == NEW_DUE
        assert (update.kind, update.due_date_to, update.note) == (
            Kind.DEADLINE_CHANGE,
            NEW_DUE,
            REASON,
        )
    elif action == "add_update":
        assert (update.kind, update.note, update.progress) == (Kind.PROGRESS, NOTE, None)


SERVICE_ACTIONS = ("change", "transition", "verify", "assign", "change_deadline", "add_update")


@pytest.mark.parametrize(
    ("model", "action", "role", "outcome"),
    list(matrix_cases(models={"task"}, actions=set(SERVICE_ACTIONS))),
)
def test_task_services_follow_the_matrix(world, model, action, role, outcome):
    if action == "verify":
        _prepare_verify(world)
    actor = world.user(role)
    before = snapshot(world.task)

    if outcome == ALLOW:
        _call(action, world, actor)
        _check_written(action, world, actor, before)
        return

    error = NotAllowed if outcome == DENY else NotVisible
    with pytest.raises(error):
        _call(action, world, actor)
    assert snapshot(world.task) == before, "a refused call wrote something"

    # The very same call succeeds for the plan's coordinator: the refusal was about the actor.
    coordinator = world.user("coordinator")
    _call(action, world, coordinator)
    _check_written(action, world, coordinator, before)


def test_the_service_rows_cover_allow_deny_and_hidden():
    outcomes = {case.values[3] for case in matrix_cases(models={"task"})}
    assert outcomes == {ALLOW, DENY, HIDDEN}


# --- Rules a single cell cannot show ---------------------------------------------------------


def test_supporting_contributor_adds_a_note_but_not_a_progress_figure(world):
    supporting = world.user("contributor_supporting")
    before = snapshot(world.task)
    with pytest.raises(NotAllowed):
        services.status_update_add(actor=supporting, task=world.task, note=NOTE, progress=50)
    assert snapshot(world.task) == before

    update = services.status_update_add(actor=supporting, task=world.task, note=NOTE)
    assert (update.author, update.progress, update.note) == (supporting, None, NOTE)
    # The lead organization may give the figure.
    services.status_update_add(actor=world.user("contributor_lead"), task=world.task, progress=50)
    assert Task.objects.get(pk=world.task.pk).progress == 50


def test_manager_assigns_only_members_of_the_lead_organization(world):
    manager = world.user("manager")
    before = snapshot(world.task)
    with pytest.raises(ValidationError) as excinfo:
        services.task_assign(
            actor=manager, task=world.task, assignee=world.user("contributor_other")
        )
    assert excinfo.value.message_dict["assignee"] == [
        ASSIGNEE_OUTSIDE_ORGANIZATION.format(organization=world.lead)
    ]
    assert snapshot(world.task) == before

    # The coordinator assigns beyond the lead organization: a supporting one's member.
    services.task_assign(
        actor=world.user("coordinator"),
        task=world.task,
        assignee=world.user("contributor_supporting"),
    )
    assert Task.objects.get(pk=world.task.pk).assignee == world.user("contributor_supporting")


def test_manager_may_not_change_the_tasks_manager(world):
    manager = world.user("manager")
    before = snapshot(world.task)
    with pytest.raises(NotAllowed):
        services.task_assign(
            actor=manager,
            task=world.task,
            assignee=world.user("contributor_lead"),
            manager=manager,
        )
    assert snapshot(world.task) == before

    services.task_assign(
        actor=world.user("coordinator"),
        task=world.task,
        assignee=world.user("contributor_lead"),
        manager=manager,
    )
    assert Task.objects.get(pk=world.task.pk).manager == manager


def test_plan_create_requires_the_coordinator_to_list_their_own_organization(world):
    coordinator = world.user("coordinator")
    kwargs = dict(
        actor=coordinator,
        code="PLAN-C",
        title="Joint Plan C",
        period_start=dt.date(2026, 1, 1),
        period_end=dt.date(2027, 12, 31),
        members=[world.lead],
    )
    with pytest.raises(ValidationError) as excinfo:
        services.plan_create(coordinating=[world.m2], **kwargs)
    assert excinfo.value.message_dict["coordinating"] == [PLAN_WITHOUT_ACTOR]

    plan = services.plan_create(coordinating=[world.m], **kwargs)
    assert plan.code == "PLAN-C"


def test_plan_create_is_refused_to_a_contributor(world):
    with pytest.raises(NotAllowed):
        services.plan_create(
            actor=world.user("contributor_lead"),
            code="PLAN-C",
            title="Joint Plan C",
            period_start=dt.date(2026, 1, 1),
            period_end=dt.date(2027, 12, 31),
            coordinating=[world.lead],
        )


def test_membership_create_by_the_plans_coordinator_grants_staff_and_role_group(world):
    newcomer = UserFactory(username="newcomer")
    assert not newcomer.is_staff

    membership = services.membership_create(
        actor=world.user("coordinator"),
        user=newcomer,
        organization=world.lead,
        role=Membership.Role.CONTRIBUTOR,
    )

    newcomer.refresh_from_db()
    assert membership.organization == world.lead
    assert newcomer.is_staff
    assert list(newcomer.groups.values_list("name", flat=True)) == [
        ROLE_GROUPS[Membership.Role.CONTRIBUTOR]
    ]


def test_membership_create_is_refused_to_a_contributor_of_the_organization(world):
    newcomer = UserFactory(username="newcomer")
    with pytest.raises(NotAllowed):
        services.membership_create(
            actor=world.user("contributor_lead"),
            user=newcomer,
            organization=world.lead,
            role=Membership.Role.CONTRIBUTOR,
        )
    assert not Membership.objects.filter(user=newcomer).exists()
    newcomer.refresh_from_db()
    assert not newcomer.is_staff


def test_membership_create_is_refused_to_the_coordinator_of_another_plan(world):
    newcomer = UserFactory(username="newcomer")
    with pytest.raises(NotAllowed):
        services.membership_create(
            actor=world.user("coordinator_other_plan"),
            user=newcomer,
            organization=world.lead,
            role=Membership.Role.CONTRIBUTOR,
        )
    assert not Membership.objects.filter(user=newcomer).exists()


def test_membership_delete_removes_the_role_group(world):
    contributor = world.user("contributor_lead")
    contributors = Group.objects.get(name=ROLE_GROUPS[Membership.Role.CONTRIBUTOR])
    assert contributors in contributor.groups.all()

    services.membership_delete(actor=world.user("coordinator"), membership=world.membership)

    assert not Membership.objects.filter(user=contributor).exists()
    assert contributors not in contributor.groups.all()


def test_membership_delete_keeps_the_groups_of_remaining_memberships(world):
    contributor = world.user("contributor_lead")
    system = system_user()
    services.membership_create(
        actor=system,
        user=contributor,
        organization=OrganizationFactory(name="Second home"),
        role=Membership.Role.VIEWER,
    )
    services.membership_delete(actor=world.user("coordinator"), membership=world.membership)
    assert set(contributor.groups.values_list("name", flat=True)) == {
        ROLE_GROUPS[Membership.Role.VIEWER]
    }


@pytest.mark.parametrize(
    ("role", "error"),
    [
        ("contributor_lead", NotAllowed),
        ("manager", NotAllowed),
        ("contributor_other", NotVisible),
        ("coordinator_other_plan", NotVisible),
    ],
)
def test_membership_delete_is_refused_to_those_who_do_not_manage_it(world, role, error):
    with pytest.raises(error):
        services.membership_delete(actor=world.user(role), membership=world.membership)
    assert Membership.objects.filter(pk=world.membership.pk).exists()
