"""The write services of the plan domain (the workflow itself is in test_workflow.py)."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction

from plans import services, signals
from plans.exceptions import TASK_CLOSED, TaskClosed, TransitionNotAllowed, VersionConflict
from plans.models import (
    Forum,
    Outcome,
    Plan,
    PlanParticipant,
    StatusUpdate,
    Task,
    Workstream,
)
from plans.services import (
    ASSIGNMENT_UNCHANGED,
    DEADLINE_BEFORE_START,
    DEADLINE_UNCHANGED,
    DEPENDENCY_OTHER_PLAN,
    DEPENDENCY_SELF,
    EMPTY_UPDATE,
    NOT_UPDATABLE,
    PROGRESS_RANGE,
    REASON_REQUIRED,
)
from tests.factories import (
    ForumFactory,
    MembershipFactory,
    OrganizationFactory,
    OutcomeFactory,
    PlanFactory,
    TaskFactory,
    UserFactory,
    WorkstreamFactory,
)
from tracker.models import Membership
from tracker.services import system_user

S = Task.Status
NOW = dt.datetime(2026, 3, 2, 1, 30, tzinfo=dt.UTC)
CLOSED = [S.DONE, S.VERIFIED, S.CANCELLED]


@pytest.fixture
def actor(db):
    """The system account: these tests are about the workflow, not about who may act."""
    return system_user()


def constraint_message(model, name: str) -> str:
    (constraint,) = [c for c in model._meta.constraints if c.name == name]
    return constraint.get_violation_error_message()


def snapshot(task: Task):
    """The task row and the size of the history: what a refused change must leave alone."""
    return (
        Task.objects.filter(pk=task.pk).values().get(),
        sorted(task.supporting_organizations.values_list("pk", flat=True)),
        sorted(task.depends_on.values_list("pk", flat=True)),
        StatusUpdate.objects.count(),
    )


# --- plan_create / plan_update --------------------------------------------------------------


@pytest.mark.django_db
def test_plan_create_adds_participants_with_their_roles(actor):
    motie, doc = OrganizationFactory(acronym="MOTIE"), OrganizationFactory(acronym="DOC")
    keit, samsung = OrganizationFactory(acronym="KEIT"), OrganizationFactory(acronym="SEC")
    plan = services.plan_create(
        actor=actor,
        code="KUS-JP2",
        title="Korea-US Industrial Cooperation Joint Plan 2.0",
        period_start=dt.date(2025, 1, 1),
        period_end=dt.date(2027, 12, 31),
        coordinating=[motie, doc],
        members=[keit, samsung],
        time_zone="Asia/Seoul",
    )
    assert Plan.objects.get(code="KUS-JP2") == plan
    assert dict(plan.participations.values_list("organization__acronym", "role")) == {
        "MOTIE": PlanParticipant.Role.COORDINATING,
        "DOC": PlanParticipant.Role.COORDINATING,
        "KEIT": PlanParticipant.Role.MEMBER,
        "SEC": PlanParticipant.Role.MEMBER,
    }


@pytest.mark.django_db
@pytest.mark.parametrize("coordinating_first", [True, False])
def test_plan_create_coordinating_wins_over_member(actor, coordinating_first):
    motie = OrganizationFactory()
    keit = OrganizationFactory()
    members = [keit, motie] if coordinating_first else [motie, keit]
    plan = services.plan_create(
        actor=actor,
        code="kus-jp2",
        title="Joint Plan 2.0",
        period_start=dt.date(2025, 1, 1),
        period_end=dt.date(2027, 12, 31),
        coordinating=[motie],
        members=members,
    )
    assert plan.participations.count() == 2
    assert plan.participations.get(organization=motie).role == PlanParticipant.Role.COORDINATING
    assert plan.participations.get(organization=keit).role == PlanParticipant.Role.MEMBER


@pytest.mark.django_db
def test_plan_create_refuses_an_invalid_plan_and_writes_nothing(actor):
    with pytest.raises(ValidationError) as exc:
        services.plan_create(
            actor=actor,
            code="kus-jp2",
            title="Joint Plan 2.0",
            period_start=dt.date(2027, 1, 1),
            period_end=dt.date(2025, 12, 31),
            coordinating=[OrganizationFactory()],
        )
    assert exc.value.message_dict[NON_FIELD_ERRORS] == [
        constraint_message(Plan, "plan_period_ordered")
    ]
    assert not Plan.objects.exists()
    assert not PlanParticipant.objects.exists()


@pytest.mark.django_db
def test_plan_create_refuses_an_unknown_time_zone(actor):
    with pytest.raises(ValidationError) as exc:
        services.plan_create(
            actor=actor,
            code="kus-jp2",
            title="Joint Plan 2.0",
            period_start=dt.date(2025, 1, 1),
            period_end=dt.date(2027, 12, 31),
            time_zone="Korea/Seoul",
        )
    assert list(exc.value.message_dict) == ["time_zone"]
    assert not Plan.objects.exists()


@pytest.mark.django_db
def test_plan_update_to_a_new_time_zone_recomputes_every_deadline(actor):
    plan = PlanFactory(time_zone="Asia/Seoul")
    other_plan_task = TaskFactory(due_date=dt.date(2026, 3, 10))
    dues = [dt.date(2026, 1, 15), dt.date(2026, 3, 7), dt.date(2026, 3, 10), dt.date(2026, 11, 1)]
    tasks = [TaskFactory(plan=plan, due_date=due) for due in dues]
    tasks.append(TaskFactory(plan=plan, due_date=dt.date(2026, 7, 1), status=S.VERIFIED))
    assert Task.objects.get(pk=tasks[2].pk).deadline_at == dt.datetime(
        2026, 3, 10, 15, tzinfo=dt.UTC
    )

    updated = services.plan_update(actor=actor, plan=plan, time_zone="America/New_York")

    assert updated.time_zone == Plan.objects.get(pk=plan.pk).time_zone == "America/New_York"
    deadlines = dict(Task.objects.filter(plan=plan).values_list("due_date", "deadline_at"))
    assert deadlines == {
        dt.date(2026, 1, 15): dt.datetime(2026, 1, 16, 5, tzinfo=dt.UTC),  # EST
        dt.date(2026, 3, 7): dt.datetime(2026, 3, 8, 5, tzinfo=dt.UTC),  # still EST at 0:00
        dt.date(2026, 3, 10): dt.datetime(2026, 3, 11, 4, tzinfo=dt.UTC),  # EDT
        dt.date(2026, 11, 1): dt.datetime(2026, 11, 2, 5, tzinfo=dt.UTC),  # EST again
        dt.date(2026, 7, 1): dt.datetime(2026, 7, 2, 4, tzinfo=dt.UTC),  # closed tasks too
    }
    assert all(
        deadline == Task.deadline_for(due, "America/New_York")
        for due, deadline in deadlines.items()
    )
    # Another plan's tasks keep their deadlines.
    assert Task.objects.get(pk=other_plan_task.pk).deadline_at == other_plan_task.deadline_at


@pytest.mark.django_db
def test_plan_update_of_other_fields_keeps_deadlines(actor):
    task = TaskFactory(due_date=dt.date(2026, 3, 10))
    services.plan_update(
        actor=actor, plan=task.plan, title="Joint Plan 2.1", requires_evidence=True
    )
    plan = Plan.objects.get(pk=task.plan_id)
    assert (plan.title, plan.requires_evidence) == ("Joint Plan 2.1", True)
    assert Task.objects.get(pk=task.pk).deadline_at == task.deadline_at


@pytest.mark.django_db
def test_plan_update_refuses_an_unknown_time_zone_and_keeps_deadlines(actor):
    task = TaskFactory(due_date=dt.date(2026, 3, 10))
    with pytest.raises(ValidationError) as exc:
        services.plan_update(actor=actor, plan=task.plan, time_zone="Eastern")
    assert list(exc.value.message_dict) == ["time_zone"]
    assert Plan.objects.get(pk=task.plan_id).time_zone == "Asia/Seoul"
    assert Task.objects.get(pk=task.pk).deadline_at == task.deadline_at


# --- workstream_create / forum_create / outcome_create --------------------------------------


@pytest.mark.django_db
def test_workstream_create_with_lead_organizations(actor):
    plan = PlanFactory()
    leads = [OrganizationFactory(), OrganizationFactory()]
    parent = services.workstream_create(
        actor=actor, plan=plan, code="SC", title="Semiconductors and AI", lead_organizations=leads
    )
    child = services.workstream_create(
        actor=actor, plan=plan, code="SC-CM", title="Critical minerals", parent=parent, order=2
    )
    assert set(parent.lead_organizations.all()) == set(leads)
    assert Workstream.objects.get(pk=child.pk).parent == parent
    assert child.order == 2


@pytest.mark.django_db
def test_workstream_create_refuses_a_duplicate_code(actor):
    first = WorkstreamFactory(code="SC")
    with pytest.raises(ValidationError) as exc:
        services.workstream_create(actor=actor, plan=first.plan, code="SC", title="Again")
    assert exc.value.messages == [constraint_message(Workstream, "workstream_code_unique_in_plan")]
    assert Workstream.objects.count() == 1


@pytest.mark.django_db
def test_workstream_create_refuses_a_parent_of_another_plan(actor):
    parent = WorkstreamFactory()
    with pytest.raises(ValidationError) as exc:
        services.workstream_create(
            actor=actor, plan=PlanFactory(), code="X", title="X", parent=parent
        )
    assert list(exc.value.message_dict) == ["parent"]
    assert Workstream.objects.count() == 1


@pytest.mark.django_db
def test_forum_create_with_hosts_and_participants(actor):
    motie, doc, sec = OrganizationFactory(), OrganizationFactory(), OrganizationFactory()
    forum = services.forum_create(
        actor=actor,
        name="Korea-US Supply Chain and Commercial Dialogue",
        series="SCCD",
        kind=Forum.Kind.DIALOGUE,
        held_on=dt.date(2025, 5, 16),
        hosts=[motie, doc],
        participants=[sec],
        source_url="https://www.commerce.gov/news/sccd",
    )
    forum = Forum.objects.get(pk=forum.pk)
    assert forum.series == "SCCD"
    assert set(forum.hosts.all()) == {motie, doc}
    assert list(forum.participants.all()) == [sec]


@pytest.mark.django_db
def test_forum_create_refuses_a_duplicate(actor):
    first = ForumFactory()
    with pytest.raises(ValidationError) as exc:
        services.forum_create(
            actor=actor, name=first.name, kind=Forum.Kind.SUMMIT, held_on=first.held_on
        )
    assert exc.value.messages == [constraint_message(Forum, "forum_unique_name_and_date")]
    assert Forum.objects.count() == 1


@pytest.mark.django_db
def test_forum_create_refuses_an_unknown_kind(actor):
    with pytest.raises(ValidationError) as exc:
        services.forum_create(actor=actor, name="Gala", kind="party", held_on=dt.date(2025, 1, 1))
    assert list(exc.value.message_dict) == ["kind"]
    assert not Forum.objects.exists()


@pytest.mark.django_db
def test_outcome_create_with_parties_and_an_amount(actor):
    forum = ForumFactory()
    parties = [OrganizationFactory(), OrganizationFactory()]
    outcome = services.outcome_create(
        actor=actor,
        forum=forum,
        kind=Outcome.Kind.INVESTMENT_PLEDGE,
        title="Investment in a US advanced packaging plant",
        parties=parties,
        amount=Decimal("450000000.00"),
        currency="USD",
    )
    outcome = Outcome.objects.get(pk=outcome.pk)
    assert (outcome.amount, outcome.currency) == (Decimal("450000000.00"), "USD")
    assert outcome.status == Outcome.Status.OPEN
    assert outcome.binding is False
    assert set(outcome.parties.all()) == set(parties)


@pytest.mark.django_db
def test_outcome_create_refuses_an_amount_without_currency(actor):
    with pytest.raises(ValidationError) as exc:
        services.outcome_create(
            actor=actor,
            forum=ForumFactory(),
            kind=Outcome.Kind.INVESTMENT_PLEDGE,
            title="Pledge",
            amount=Decimal("1000"),
        )
    assert exc.value.messages == [constraint_message(Outcome, "outcome_amount_has_currency")]
    assert not Outcome.objects.exists()


# --- task_create ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_task_create_writes_the_created_record_and_the_deadline(actor):
    plan = PlanFactory(time_zone="Asia/Seoul")
    workstream = WorkstreamFactory(plan=plan)
    lead, support = OrganizationFactory(), OrganizationFactory()
    outcome = OutcomeFactory()
    earlier = TaskFactory(plan=plan)
    with time_machine.travel(NOW, tick=False):
        task = services.task_create(
            actor=actor,
            plan=plan,
            ref="SC-03",
            title="Joint R&D on advanced packaging",
            lead_organization=lead,
            due_date=dt.date(2026, 3, 10),
            workstream=workstream,
            supporting_organizations=[support],
            source_outcomes=[outcome],
            depends_on=[earlier],
            note="From the SCCD joint statement.",
            priority=Task.Priority.HIGH,
        )
    task = Task.objects.get(pk=task.pk)
    assert task.status == S.PLANNED
    assert task.deadline_at == dt.datetime(2026, 3, 10, 15, tzinfo=dt.UTC)
    assert task.deadline_at == Task.deadline_for(task.due_date, plan.time_zone)
    assert (task.created_by, task.updated_by, task.version) == (actor, actor, 1)
    assert task.priority == Task.Priority.HIGH
    assert list(task.supporting_organizations.all()) == [support]
    assert list(task.source_outcomes.all()) == [outcome]
    assert list(task.depends_on.all()) == [earlier]
    (update,) = task.updates.all()
    assert update.kind == StatusUpdate.Kind.CREATED
    assert (update.status_from, update.status_to) == ("", S.PLANNED)
    assert update.author == actor
    assert update.note == "From the SCCD joint statement."
    assert update.created_at == NOW


@pytest.mark.django_db
def test_task_create_at_backdates_the_created_record(actor):
    at = dt.datetime(2025, 2, 1, tzinfo=dt.UTC)
    task = TaskFactory(actor=actor, at=at)
    assert task.updates.get().created_at == at


@pytest.mark.django_db
@pytest.mark.parametrize(
    "status", [S.IN_PROGRESS, S.AT_RISK, S.BLOCKED, S.DONE, S.VERIFIED, S.CANCELLED]
)
def test_task_create_refuses_a_status_other_than_planned(actor, status):
    plan = PlanFactory()
    with pytest.raises(ValidationError) as exc:
        services.task_create(
            actor=actor,
            plan=plan,
            ref="SC-03",
            title="Jump ahead",
            lead_organization=OrganizationFactory(),
            due_date=dt.date(2026, 3, 10),
            status=status,
            progress=100,
        )
    assert list(exc.value.message_dict) == ["status"]
    assert not Task.objects.exists()
    assert not StatusUpdate.objects.exists()


@pytest.mark.django_db
def test_task_create_refuses_a_dependency_on_another_plan(actor):
    other = TaskFactory()
    plan = PlanFactory()
    with pytest.raises(ValidationError) as exc:
        services.task_create(
            actor=actor,
            plan=plan,
            ref="SC-03",
            title="Depends on the wrong plan",
            lead_organization=OrganizationFactory(),
            due_date=dt.date(2026, 3, 10),
            depends_on=[other],
        )
    assert exc.value.message_dict == {"depends_on": [DEPENDENCY_OTHER_PLAN]}
    assert list(Task.objects.all()) == [other]
    assert StatusUpdate.objects.count() == 1  # other's own 'created' record


@pytest.mark.django_db
def test_task_create_refuses_due_before_start_as_a_field_error(actor):
    plan = PlanFactory()
    with pytest.raises(ValidationError) as exc:
        services.task_create(
            actor=actor,
            plan=plan,
            ref="SC-03",
            title="Backwards",
            lead_organization=OrganizationFactory(),
            start_date=dt.date(2026, 3, 11),
            due_date=dt.date(2026, 3, 10),
        )
    assert not Task.objects.exists()
    # The form / API has to show it beside the due date, like task_change_deadline does.
    assert "due_date" in exc.value.message_dict, exc.value.message_dict


@pytest.mark.django_db
def test_task_create_refuses_a_duplicate_ref(actor):
    first = TaskFactory(ref="SC-03")
    with pytest.raises(ValidationError) as exc:
        TaskFactory(plan=first.plan, ref="SC-03")
    assert exc.value.messages == [constraint_message(Task, "task_ref_unique_in_plan")]
    assert Task.objects.count() == 1


@pytest.mark.django_db
def test_task_create_refuses_a_workstream_of_another_plan(actor):
    with pytest.raises(ValidationError) as exc:
        TaskFactory(plan=PlanFactory(), workstream=WorkstreamFactory())
    assert list(exc.value.message_dict) == ["workstream"]
    assert not Task.objects.exists()


# --- task_update ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_task_update_changes_allowed_fields_and_bumps_version(actor):
    task = TaskFactory()
    workstream = WorkstreamFactory(plan=task.plan)
    new_lead, support = OrganizationFactory(), OrganizationFactory()
    outcome = OutcomeFactory()
    sibling = TaskFactory(plan=task.plan)
    parent = TaskFactory(plan=task.plan)
    history = StatusUpdate.objects.count()

    services.task_update(
        actor=actor,
        task=task,
        title="Renamed",
        description="Longer description.",
        workstream=workstream,
        lead_organization=new_lead,
        start_date=dt.date(2026, 1, 5),
        priority=Task.Priority.CRITICAL,
        visibility=Task.Visibility.PLAN,
        parent=parent,
        supporting_organizations=[support],
        source_outcomes=[outcome],
        depends_on=[sibling],
    )

    task.refresh_from_db()
    assert (task.title, task.description) == ("Renamed", "Longer description.")
    assert (task.workstream, task.lead_organization, task.parent) == (workstream, new_lead, parent)
    assert task.start_date == dt.date(2026, 1, 5)
    assert (task.priority, task.visibility) == (Task.Priority.CRITICAL, Task.Visibility.PLAN)
    assert list(task.supporting_organizations.all()) == [support]
    assert list(task.source_outcomes.all()) == [outcome]
    assert list(task.depends_on.all()) == [sibling]
    assert task.version == 2
    assert task.updated_by == actor
    assert StatusUpdate.objects.count() == history  # descriptive edits are not history


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field_values",
    [
        {"status": S.DONE},
        {"progress": 50},
        {"due_date": dt.date(2026, 12, 31)},
        {"deadline_at": dt.datetime(2026, 12, 31, tzinfo=dt.UTC)},
        {"assignee": None},
        {"manager": None},
        {"version": 99},
        {"plan": None},
        {"ref": "XX-01"},
        {"completed_at": None},
        {"created_by": None},
    ],
    ids=lambda values: next(iter(values)),
)
def test_task_update_refuses_fields_that_have_their_own_service(actor, field_values):
    task = TaskFactory()
    before = snapshot(task)
    with pytest.raises(ValidationError) as exc:
        services.task_update(actor=actor, task=task, title="Also renamed", **field_values)
    (field,) = field_values
    assert exc.value.messages == [NOT_UPDATABLE.format(fields=field)]
    assert snapshot(task) == before


@pytest.mark.django_db
def test_task_update_names_every_refused_field(actor):
    task = TaskFactory()
    with pytest.raises(ValidationError) as exc:
        services.task_update(actor=actor, task=task, status=S.DONE, progress=100)
    assert exc.value.messages == [NOT_UPDATABLE.format(fields="progress, status")]


@pytest.mark.django_db
@pytest.mark.parametrize("which", ["self", "other plan"])
def test_task_update_refuses_bad_dependencies_and_writes_nothing(actor, which):
    task = TaskFactory()
    dependency = task if which == "self" else TaskFactory()
    message = DEPENDENCY_SELF if which == "self" else DEPENDENCY_OTHER_PLAN
    before = snapshot(task)
    with pytest.raises(ValidationError) as exc:
        services.task_update(actor=actor, task=task, title="Renamed", depends_on=[dependency])
    assert exc.value.message_dict == {"depends_on": [message]}
    assert snapshot(task) == before


@pytest.mark.django_db
def test_task_update_refuses_a_start_after_the_due_date(actor):
    task = TaskFactory(due_date=dt.date(2026, 3, 10))
    before = snapshot(task)
    with pytest.raises(ValidationError) as exc:
        services.task_update(actor=actor, task=task, start_date=dt.date(2026, 3, 11))
    assert exc.value.message_dict == {
        "due_date": [DEADLINE_BEFORE_START.format(start_date=dt.date(2026, 3, 11))]
    }
    assert snapshot(task) == before


# --- task_assign ----------------------------------------------------------------------------


@pytest.mark.django_db
def holders(organization, n=1):
    """Contributors of `organization`: people who may hold its tasks."""
    return [
        MembershipFactory(organization=organization, role=Membership.Role.CONTRIBUTOR).user
        for _ in range(n)
    ]


def test_task_assign_records_the_assignment(actor):
    task = TaskFactory()
    (assignee,) = holders(task.lead_organization)
    services.task_assign(actor=actor, task=task, assignee=assignee, note=" Owner from KEIT. ")
    task.refresh_from_db()
    assert task.assignee == assignee
    assert task.version == 2
    update = task.updates.get(kind=StatusUpdate.Kind.ASSIGNMENT)
    assert (update.assignee_from, update.assignee_to) == (None, assignee)
    assert update.author == actor
    assert update.note == "Owner from KEIT."


@pytest.mark.django_db
def test_task_assign_records_a_reassignment_and_an_unassignment(actor):
    lead = OrganizationFactory()
    first, second = holders(lead, 2)
    task = TaskFactory(lead_organization=lead, assignee=first)
    services.task_assign(actor=actor, task=task.pk, assignee=second)
    services.task_assign(actor=actor, task=task.pk, assignee=None)
    assert Task.objects.get(pk=task.pk).assignee is None
    assert list(
        task.updates.filter(kind=StatusUpdate.Kind.ASSIGNMENT).values_list(
            "assignee_from", "assignee_to"
        )
    ) == [(first.pk, second.pk), (second.pk, None)]


@pytest.mark.django_db
def test_task_assign_records_a_manager_change_in_the_note(actor):
    lead = OrganizationFactory()
    assignee, old_manager, new_manager = holders(lead, 3)
    task = TaskFactory(lead_organization=lead, manager=old_manager)
    services.task_assign(
        actor=actor, task=task, assignee=assignee, manager=new_manager, note="Handover."
    )
    task.refresh_from_db()
    assert (task.assignee, task.manager) == (assignee, new_manager)
    update = task.updates.get(kind=StatusUpdate.Kind.ASSIGNMENT)
    assert update.note == f"Handover.\nManager: {old_manager} -> {new_manager}."


@pytest.mark.django_db
def test_task_assign_may_change_only_the_manager(actor):
    lead = OrganizationFactory()
    assignee, manager = holders(lead, 2)
    task = TaskFactory(lead_organization=lead, assignee=assignee)
    services.task_assign(actor=actor, task=task, assignee=assignee, manager=manager)
    task.refresh_from_db()
    assert task.manager == manager
    update = task.updates.get(kind=StatusUpdate.Kind.ASSIGNMENT)
    assert (update.assignee_from, update.assignee_to) == (assignee, assignee)
    assert update.note == f"Manager: none -> {manager}."


@pytest.mark.django_db
def test_task_assign_leaves_the_manager_alone_when_not_given(actor):
    lead = OrganizationFactory()
    manager, assignee = holders(lead, 2)
    task = TaskFactory(lead_organization=lead, manager=manager)
    services.task_assign(actor=actor, task=task, assignee=assignee)
    task.refresh_from_db()
    assert task.manager == manager
    assert "Manager" not in task.updates.get(kind=StatusUpdate.Kind.ASSIGNMENT).note


@pytest.mark.django_db
@pytest.mark.parametrize("with_manager", [False, True])
def test_task_assign_refuses_an_unchanged_assignment(actor, with_manager):
    lead = OrganizationFactory()
    assignee, manager = holders(lead, 2)
    task = TaskFactory(lead_organization=lead, assignee=assignee, manager=manager)
    before = snapshot(task)
    kwargs = {"manager": manager} if with_manager else {}
    with pytest.raises(ValidationError) as exc:
        services.task_assign(actor=actor, task=task, assignee=assignee, **kwargs)
    assert exc.value.message_dict == {"assignee": [ASSIGNMENT_UNCHANGED]}
    assert snapshot(task) == before


# --- task_change_deadline -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("status", [S.PLANNED, S.IN_PROGRESS, S.AT_RISK, S.BLOCKED])
def test_task_change_deadline_records_the_change(actor, status):
    plan = PlanFactory(time_zone="America/New_York")
    task = TaskFactory(plan=plan, status=status, due_date=dt.date(2026, 1, 15))
    version = task.version
    services.task_change_deadline(
        actor=actor, task=task, due_date=dt.date(2026, 3, 10), reason="  Tariff talks delayed.  "
    )
    task.refresh_from_db()
    assert task.due_date == dt.date(2026, 3, 10)
    assert task.deadline_at == dt.datetime(2026, 3, 11, 4, tzinfo=dt.UTC)
    assert task.version == version + 1
    assert task.status == status
    update = task.updates.latest("pk")
    assert update.kind == StatusUpdate.Kind.DEADLINE_CHANGE
    assert (update.due_date_from, update.due_date_to) == (
        dt.date(2026, 1, 15),
        dt.date(2026, 3, 10),
    )
    assert update.note == "Tariff talks delayed."
    assert update.author == actor


@pytest.mark.django_db
@pytest.mark.parametrize("reason", ["", "   "])
def test_task_change_deadline_requires_a_reason(actor, reason):
    task = TaskFactory()
    before = snapshot(task)
    with pytest.raises(ValidationError) as exc:
        services.task_change_deadline(
            actor=actor, task=task, due_date=dt.date(2031, 1, 1), reason=reason
        )
    assert exc.value.message_dict == {"reason": [REASON_REQUIRED]}
    assert snapshot(task) == before


@pytest.mark.django_db
def test_task_change_deadline_refuses_the_same_date(actor):
    task = TaskFactory(due_date=dt.date(2026, 3, 10))
    before = snapshot(task)
    with pytest.raises(ValidationError) as exc:
        services.task_change_deadline(
            actor=actor, task=task, due_date=dt.date(2026, 3, 10), reason="No change."
        )
    assert exc.value.message_dict == {
        "due_date": [DEADLINE_UNCHANGED.format(due_date=dt.date(2026, 3, 10))]
    }
    assert snapshot(task) == before


@pytest.mark.django_db
def test_task_change_deadline_refuses_a_date_before_the_start(actor):
    task = TaskFactory(start_date=dt.date(2026, 3, 1), due_date=dt.date(2026, 3, 10))
    before = snapshot(task)
    with pytest.raises(ValidationError) as exc:
        services.task_change_deadline(
            actor=actor, task=task, due_date=dt.date(2026, 2, 28), reason="Earlier."
        )
    assert exc.value.message_dict == {
        "due_date": [DEADLINE_BEFORE_START.format(start_date=dt.date(2026, 3, 1))]
    }
    assert snapshot(task) == before


@pytest.mark.django_db
def test_task_change_deadline_accepts_the_start_date(actor):
    task = TaskFactory(start_date=dt.date(2026, 3, 1), due_date=dt.date(2026, 3, 10))
    services.task_change_deadline(
        actor=actor, task=task, due_date=dt.date(2026, 3, 1), reason="One-day task."
    )
    assert Task.objects.get(pk=task.pk).due_date == dt.date(2026, 3, 1)


@pytest.mark.django_db
@pytest.mark.parametrize("status", CLOSED)
def test_task_change_deadline_refuses_a_closed_task(actor, status):
    task = TaskFactory(status=status)
    before = snapshot(task)
    with pytest.raises(TaskClosed) as exc:
        services.task_change_deadline(
            actor=actor, task=task, due_date=dt.date(2031, 1, 1), reason="Too late."
        )
    assert exc.value.status == status
    assert exc.value.message == TASK_CLOSED.format(status=status, action="changing the deadline")
    assert snapshot(task) == before


# --- status_update_add ----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("note", ["", "  \n "])
def test_status_update_add_refuses_an_empty_update(actor, note):
    task = TaskFactory()
    before = snapshot(task)
    with pytest.raises(ValidationError) as exc:
        services.status_update_add(actor=actor, task=task, note=note)
    assert exc.value.message_dict == {"note": [EMPTY_UPDATE]}
    assert snapshot(task) == before


@pytest.mark.django_db
@pytest.mark.parametrize("progress", [-1, 101, 1000, True, False, 50.0, "50"])
def test_status_update_add_refuses_progress_out_of_range(actor, progress):
    task = TaskFactory(status=S.IN_PROGRESS)
    before = snapshot(task)
    with pytest.raises(ValidationError) as exc:
        services.status_update_add(actor=actor, task=task, progress=progress, note="Report.")
    assert exc.value.message_dict == {"progress": [PROGRESS_RANGE]}
    assert snapshot(task) == before


@pytest.mark.django_db
@pytest.mark.parametrize("status", CLOSED)
def test_status_update_add_refuses_progress_on_a_closed_task(actor, status):
    task = TaskFactory(status=status)
    before = snapshot(task)
    with pytest.raises(TaskClosed) as exc:
        services.status_update_add(actor=actor, task=task, progress=100, note="Late report.")
    assert exc.value.status == status
    assert exc.value.message == TASK_CLOSED.format(status=status, action="reporting progress")
    assert snapshot(task) == before


@pytest.mark.django_db
@pytest.mark.parametrize("status", CLOSED)
def test_status_update_add_accepts_a_note_on_a_closed_task(actor, status):
    task = TaskFactory(status=status)
    task_before, *_ = snapshot(task)
    update = services.status_update_add(
        actor=actor, task=task, note="Final report filed.", evidence_url="https://example.org/r"
    )
    assert StatusUpdate.objects.get(pk=update.pk).note == "Final report filed."
    assert update.progress is None
    assert Task.objects.filter(pk=task.pk).values().get() == task_before


@pytest.mark.django_db
@pytest.mark.parametrize("progress", [0, 35, 100])
def test_status_update_add_sets_progress_and_bumps_version(actor, progress):
    task = TaskFactory(status=S.IN_PROGRESS, progress=10)
    version = task.version
    update = services.status_update_add(
        actor=actor, task=task, progress=progress, note="  Pilot line running. "
    )
    task.refresh_from_db()
    assert task.progress == progress
    assert task.version == version + 1
    assert task.updated_by == actor
    update = StatusUpdate.objects.get(pk=update.pk)
    assert update.kind == StatusUpdate.Kind.PROGRESS
    assert (update.task, update.author, update.progress) == (task, actor, progress)
    assert update.note == "Pilot line running."


def _lead_member(task: Task):
    user = UserFactory()
    services.membership_create(
        actor=system_user(), user=user, organization=task.lead_organization, role="contributor"
    )
    return user


# Every write to a task, called with the version its caller read.
VERSIONED_WRITES = {
    "status_update_add (note)": lambda actor, task, version: services.status_update_add(
        actor=actor, task=task, note="Met the DOC team.", expected_version=version
    ),
    "status_update_add (progress)": lambda actor, task, version: services.status_update_add(
        actor=actor, task=task, progress=task.progress + 1, expected_version=version
    ),
    "task_update": lambda actor, task, version: services.task_update(
        actor=actor, task=task, title="Renamed", expected_version=version
    ),
    "task_transition": lambda actor, task, version: services.task_transition(
        actor=actor,
        task=task,
        to_status=S.AT_RISK,
        expected_from=S.IN_PROGRESS,
        note="Supplier late.",
        expected_version=version,
    ),
    "task_assign": lambda actor, task, version: services.task_assign(
        actor=actor, task=task, assignee=_lead_member(task), expected_version=version
    ),
    "task_change_deadline": lambda actor, task, version: services.task_change_deadline(
        actor=actor,
        task=task,
        due_date=task.due_date + dt.timedelta(days=30),
        reason="Supplier moved delivery.",
        expected_version=version,
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(VERSIONED_WRITES))
def test_every_task_write_refuses_a_stale_expected_version_and_writes_nothing(actor, name):
    task = TaskFactory(status=S.IN_PROGRESS, progress=40)
    read = task.version
    services.status_update_add(actor=actor, task=task, progress=41)  # someone else's write
    task.refresh_from_db()
    before = snapshot(task)

    with pytest.raises(VersionConflict) as exc:
        VERSIONED_WRITES[name](actor, task, read)

    assert (exc.value.expected, exc.value.actual) == (read, task.version)
    assert snapshot(task) == before
    VERSIONED_WRITES[name](actor, task, task.version)  # the current version is accepted
    bumped = 0 if name == "status_update_add (note)" else 1  # a note is not an edit
    assert Task.objects.get(pk=task.pk).version == task.version + bumped


@pytest.mark.django_db
def test_status_update_add_with_unchanged_progress_keeps_the_task(actor):
    task = TaskFactory(status=S.IN_PROGRESS, progress=40)
    task_before, *_ = snapshot(task)
    count = task.updates.count()
    services.status_update_add(actor=actor, task=task, progress=40)
    assert Task.objects.filter(pk=task.pk).values().get() == task_before
    assert task.updates.count() == count + 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kwargs", [{"note": "Met the DOC team."}, {"evidence_url": "https://example.org/minutes"}]
)
def test_status_update_add_without_progress_keeps_the_task(actor, kwargs):
    task = TaskFactory(status=S.IN_PROGRESS, progress=40)
    task_before, *_ = snapshot(task)
    update = services.status_update_add(actor=actor, task=task, **kwargs)
    assert Task.objects.filter(pk=task.pk).values().get() == task_before
    assert update.progress is None
    assert StatusUpdate.objects.filter(pk=update.pk, **kwargs).exists()


@pytest.mark.django_db
def test_status_update_add_refuses_an_invalid_evidence_url(actor):
    task = TaskFactory(status=S.IN_PROGRESS)
    before = snapshot(task)
    with pytest.raises(ValidationError) as exc:
        services.status_update_add(actor=actor, task=task, evidence_url="file:///etc/passwd")
    assert list(exc.value.message_dict) == ["evidence_url"]
    assert snapshot(task) == before


# --- Signals: announced after commit, never for a refused change ----------------------------


@pytest.fixture
def events():
    received = []

    def receiver(sender, event, task_id, **kwargs):
        kwargs.pop("signal")
        received.append((sender, event, task_id, kwargs))

    signals.task_changed.connect(receiver, weak=False)
    yield received
    signals.task_changed.disconnect(receiver)


@pytest.mark.django_db
def test_task_create_announces_after_commit(actor, events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        task = TaskFactory(actor=actor)
        assert events == []  # not before the commit
    assert len(callbacks) == 1
    assert events == [(Task, "task.created", task.pk, {})]


@pytest.mark.django_db
def test_task_update_announces_the_changed_fields(
    actor, events, django_capture_on_commit_callbacks
):
    task = TaskFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.task_update(actor=actor, task=task, title="Renamed", priority=task.priority)
        assert events == []
    assert events == [(Task, "task.updated", task.pk, {"fields": ["title"]})]


@pytest.mark.django_db
def test_task_transition_announces_the_status_change(
    actor, events, django_capture_on_commit_callbacks
):
    task = TaskFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.task_transition(
            actor=actor, task=task, to_status=S.IN_PROGRESS, expected_from=S.PLANNED
        )
        assert events == []
    assert events == [
        (
            Task,
            "task.status_changed",
            task.pk,
            {"status_from": S.PLANNED, "status_to": S.IN_PROGRESS},
        )
    ]


@pytest.mark.django_db
def test_task_assign_announces_an_update(actor, events, django_capture_on_commit_callbacks):
    task = TaskFactory()
    assignee, manager = holders(task.lead_organization, 2)
    with django_capture_on_commit_callbacks(execute=True):
        services.task_assign(actor=actor, task=task, assignee=assignee, manager=manager)
        assert events == []
    assert events == [(Task, "task.updated", task.pk, {"fields": ["assignee", "manager"]})]


@pytest.mark.django_db
def test_task_change_deadline_announces_an_update(
    actor, events, django_capture_on_commit_callbacks
):
    task = TaskFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.task_change_deadline(
            actor=actor, task=task, due_date=dt.date(2031, 1, 1), reason="Budget moved."
        )
        assert events == []
    assert events == [(Task, "task.updated", task.pk, {"fields": ["due_date"]})]


@pytest.mark.django_db
def test_status_update_add_announces_the_update(actor, events, django_capture_on_commit_callbacks):
    task = TaskFactory(status=S.IN_PROGRESS)
    with django_capture_on_commit_callbacks(execute=True):
        update = services.status_update_add(actor=actor, task=task, progress=20)
        assert events == []
    assert events == [(Task, "status_update.created", task.pk, {"status_update_id": update.pk})]


def _refused_transition(task):
    services.task_transition(
        actor=system_user(), task=task, to_status=S.VERIFIED, expected_from=S.PLANNED
    )


def _refused_create(task):
    TaskFactory(plan=PlanFactory(), depends_on=[task])


def _refused_deadline(task):
    services.task_change_deadline(
        actor=system_user(), task=task, due_date=task.due_date, reason="Same."
    )


def _refused_update(task):
    services.task_update(actor=system_user(), task=task, title="Renamed", depends_on=[task])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("refused_call", "error"),
    [
        (_refused_transition, TransitionNotAllowed),
        (_refused_create, ValidationError),
        (_refused_deadline, ValidationError),
        (_refused_update, ValidationError),
    ],
    ids=["transition", "create", "deadline", "update"],
)
def test_a_refused_change_announces_nothing(
    events, django_capture_on_commit_callbacks, refused_call, error
):
    task = TaskFactory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(error):
        refused_call(task)
    assert callbacks == []
    assert events == []


@pytest.mark.django_db
def test_a_rolled_back_change_announces_nothing(actor, events, django_capture_on_commit_callbacks):
    task = TaskFactory()
    capture = django_capture_on_commit_callbacks(execute=True)
    with capture as callbacks, pytest.raises(RuntimeError), transaction.atomic():
        services.task_transition(
            actor=actor, task=task, to_status=S.IN_PROGRESS, expected_from=S.PLANNED
        )
        raise RuntimeError("the caller failed after the service")
    assert callbacks == []
    assert events == []
    assert Task.objects.get(pk=task.pk).status == S.PLANNED
