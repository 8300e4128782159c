"""Every constraint of the plan models is enforced by the database and reported readably.

Database: each violation is written past `full_clean()` (queryset `update()` or
`bulk_create()`) and must fail with an IntegrityError naming the constraint.
Validation: `full_clean()` reports the constraint's own `violation_error_message`. Where a
field's choices already refuse the value, `full_clean()` reports the field error and
`validate_constraints()` the constraint's message.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from plans.models import (
    APPEND_ONLY,
    Forum,
    Outcome,
    Plan,
    PlanParticipant,
    StatusUpdate,
    Task,
    Workstream,
)
from tests.factories import (
    ForumFactory,
    OrganizationFactory,
    OutcomeFactory,
    PlanFactory,
    PlanParticipantFactory,
    TaskFactory,
    WorkstreamFactory,
)

PLAN_MODELS = (Forum, Outcome, Plan, PlanParticipant, Workstream, Task, StatusUpdate)
CONSTRAINTS = {c.name: (model, c) for model in PLAN_MODELS for c in model._meta.constraints}


def constraint_message(name: str) -> str:
    """The readable message of a plan constraint (never Django's default one)."""
    _, constraint = CONSTRAINTS[name]
    assert constraint.violation_error_message != constraint.default_violation_error_message
    return constraint.get_violation_error_message()


def _update(instance, **values):
    manager = type(instance).objects
    # Columns as named: modeltranslation would write `name` into the active language's
    # version (name_en) instead of the original column.
    if hasattr(manager, "rewrite"):
        manager = manager.rewrite(False)
    return lambda: manager.filter(pk=instance.pk).update(**values)


def _status_update(**fields):
    task = TaskFactory()
    fields = {"task": task, "created_at": timezone.now(), **fields}
    return lambda: StatusUpdate.objects.bulk_create([StatusUpdate(**fields)])


# --- Writes that bypass full_clean: (constraint, case) -> a callable returning the write ---


def _forum_duplicate():
    first = ForumFactory()
    second = ForumFactory(held_on=first.held_on)
    return _update(second, name=first.name)


def _forum_duplicate_version(language):
    """Two forums on one day with the same name in `language` (the copies of the constraint
    that django-modeltranslation makes per language)."""
    first = ForumFactory(name_ko="포럼")
    second = ForumFactory(held_on=first.held_on, name_ko="다른 포럼")
    field = f"name_{language}"
    return _update(second, **{field: getattr(first, field)})


def _participant_duplicate():
    first = PlanParticipantFactory()
    second = PlanParticipantFactory(plan=first.plan)
    return _update(second, organization=first.organization)


def _workstream_duplicate():
    first = WorkstreamFactory()
    second = WorkstreamFactory(plan=first.plan)
    return _update(second, code=first.code)


def _workstream_own_parent():
    workstream = WorkstreamFactory()
    return _update(workstream, parent=workstream)


def _task_duplicate_ref():
    first = TaskFactory()
    second = TaskFactory(plan=first.plan)
    return _update(second, ref=first.ref)


def _task_own_parent():
    task = TaskFactory()
    return _update(task, parent=task)


def _plan_own_predecessor():
    plan = PlanFactory()
    return _update(plan, predecessor=plan)


DATABASE_VIOLATIONS = [
    ("forum_kind_valid", "unknown", lambda: _update(ForumFactory(), kind="party")),
    ("forum_unique_name_and_date", "duplicate", _forum_duplicate),
    (
        "forum_unique_name_and_date-en",
        "duplicate English name",
        lambda: _forum_duplicate_version("en"),
    ),
    (
        "forum_unique_name_and_date-ko",
        "duplicate Korean name",
        lambda: _forum_duplicate_version("ko"),
    ),
    ("outcome_kind_valid", "unknown", lambda: _update(OutcomeFactory(), kind="wish")),
    ("outcome_status_valid", "unknown", lambda: _update(OutcomeFactory(), status="forgotten")),
    (
        "outcome_amount_has_currency",
        "amount without currency",
        lambda: _update(OutcomeFactory(), amount=Decimal("1000000")),
    ),
    (
        "outcome_amount_has_currency",
        "currency without amount",
        lambda: _update(OutcomeFactory(), currency="USD"),
    ),
    (
        "outcome_amount_has_currency",
        "lowercase currency",
        lambda: _update(OutcomeFactory(), amount=Decimal("1"), currency="usd"),
    ),
    (
        "outcome_amount_not_negative",
        "negative",
        lambda: _update(OutcomeFactory(), amount=Decimal("-1"), currency="USD"),
    ),
    ("plan_status_valid", "unknown", lambda: _update(PlanFactory(), status="paused")),
    (
        "plan_period_ordered",
        "ends before start",
        lambda: _update(PlanFactory(), period_end=dt.date(2024, 12, 31)),
    ),
    ("plan_not_own_predecessor", "self", _plan_own_predecessor),
    (
        "planparticipant_role_valid",
        "unknown",
        lambda: _update(PlanParticipantFactory(), role="observer"),
    ),
    ("planparticipant_once_per_plan", "duplicate", _participant_duplicate),
    ("workstream_code_unique_in_plan", "duplicate", _workstream_duplicate),
    ("workstream_not_own_parent", "self", _workstream_own_parent),
    ("task_ref_unique_in_plan", "duplicate", _task_duplicate_ref),
    (
        "task_due_not_before_start",
        "start after due",
        lambda: _update(
            TaskFactory(due_date=dt.date(2026, 3, 10)), start_date=dt.date(2026, 3, 11)
        ),
    ),
    ("task_progress_percent", "over 100", lambda: _update(TaskFactory(), progress=101)),
    (
        "task_complete_means_full_progress",
        "done below 100",
        lambda: _update(TaskFactory(status="done"), progress=99),
    ),
    (
        "task_complete_means_full_progress",
        "verified below 100",
        lambda: _update(TaskFactory(status="verified"), progress=0),
    ),
    (
        "task_complete_means_full_progress",
        "marked done without progress",
        lambda: _update(TaskFactory(), status="done"),
    ),
    ("task_not_own_parent", "self", _task_own_parent),
    ("task_status_valid", "unknown", lambda: _update(TaskFactory(), status="paused")),
    ("task_priority_valid", "unknown", lambda: _update(TaskFactory(), priority="urgent")),
    ("task_visibility_valid", "unknown", lambda: _update(TaskFactory(), visibility="public")),
    ("statusupdate_kind_valid", "unknown", lambda: _status_update(kind="comment")),
    (
        "statusupdate_progress_percent",
        "over 100",
        lambda: _status_update(kind="progress", progress=101),
    ),
    (
        "statusupdate_transition_has_states",
        "no status from",
        lambda: _status_update(kind="transition", status_to="in_progress"),
    ),
    (
        "statusupdate_transition_has_states",
        "no status to",
        lambda: _status_update(kind="transition", status_from="planned"),
    ),
    (
        "statusupdate_deadline_change_has_reason",
        "no new date",
        lambda: _status_update(kind="deadline_change", note="Delayed by the supplier."),
    ),
    (
        "statusupdate_deadline_change_has_reason",
        "no reason",
        lambda: _status_update(kind="deadline_change", due_date_to=dt.date(2026, 4, 1)),
    ),
]


def test_every_plan_constraint_has_a_database_case():
    assert {name for name, _, _ in DATABASE_VIOLATIONS} == set(CONSTRAINTS)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "make_write"),
    [pytest.param(name, make, id=f"{name}: {case}") for name, case, make in DATABASE_VIOLATIONS],
)
def test_database_enforces_constraint(name, make_write):
    write = make_write()
    with pytest.raises(IntegrityError) as exc, transaction.atomic():
        write()
    model, constraint = CONSTRAINTS[name]
    # SQLite names only check constraints in its errors, and unique ones by their columns.
    if isinstance(constraint, models.CheckConstraint) or connection.vendor == "postgresql":
        assert name in str(exc.value)
    else:
        columns = [
            f"{model._meta.db_table}.{model._meta.get_field(f).column}" for f in constraint.fields
        ]
        assert ", ".join(columns) in str(exc.value)


# --- full_clean() reports the readable message ----------------------------------------------


def _forum_duplicate_instance():
    first = ForumFactory()
    return ForumFactory.build(name=first.name, held_on=first.held_on)


def _forum_duplicate_korean_instance():
    first = ForumFactory(name_ko="포럼")
    return ForumFactory.build(name="Another forum", name_ko="포럼", held_on=first.held_on)


def _participant_duplicate_instance():
    first = PlanParticipantFactory()
    return PlanParticipant(plan=first.plan, organization=first.organization)


def _workstream_duplicate_instance():
    first = WorkstreamFactory()
    return Workstream(plan=first.plan, code=first.code, title="Another")


def _self_referencing(instance, field):
    setattr(instance, field, instance)
    return instance


def _task_duplicate_instance():
    first = TaskFactory()
    return TaskFactory.build(
        plan=first.plan, ref=first.ref, lead_organization=OrganizationFactory()
    )


def _with(instance, **values):
    for field, value in values.items():
        setattr(instance, field, value)
    return instance


def _status_update_instance(**fields):
    return StatusUpdate(task=TaskFactory(), created_at=timezone.now(), **fields)


VALIDATION_VIOLATIONS = [
    ("forum_unique_name_and_date", "duplicate", _forum_duplicate_instance),
    ("forum_unique_name_and_date-en", "duplicate", _forum_duplicate_instance),
    (
        "forum_unique_name_and_date-ko",
        "duplicate Korean name",
        lambda: _forum_duplicate_korean_instance(),
    ),
    (
        "outcome_amount_has_currency",
        "amount without currency",
        lambda: _with(OutcomeFactory(), amount=Decimal("1000000")),
    ),
    (
        "outcome_amount_has_currency",
        "currency without amount",
        lambda: _with(OutcomeFactory(), currency="USD"),
    ),
    (
        "outcome_amount_has_currency",
        "lowercase currency",
        lambda: _with(OutcomeFactory(), amount=Decimal("1"), currency="usd"),
    ),
    (
        "outcome_amount_not_negative",
        "negative",
        lambda: _with(OutcomeFactory(), amount=Decimal("-1"), currency="USD"),
    ),
    (
        "plan_period_ordered",
        "ends before start",
        lambda: _with(PlanFactory(), period_end=dt.date(2024, 12, 31)),
    ),
    ("plan_not_own_predecessor", "self", lambda: _self_referencing(PlanFactory(), "predecessor")),
    ("planparticipant_once_per_plan", "duplicate", _participant_duplicate_instance),
    ("workstream_code_unique_in_plan", "duplicate", _workstream_duplicate_instance),
    ("workstream_not_own_parent", "self", lambda: _self_referencing(WorkstreamFactory(), "parent")),
    ("task_ref_unique_in_plan", "duplicate", _task_duplicate_instance),
    (
        "task_due_not_before_start",
        "start after due",
        lambda: _with(TaskFactory(due_date=dt.date(2026, 3, 10)), start_date=dt.date(2026, 3, 11)),
    ),
    ("task_progress_percent", "over 100", lambda: _with(TaskFactory(), progress=101)),
    (
        "task_complete_means_full_progress",
        "done below 100",
        lambda: _with(TaskFactory(status="done"), progress=99),
    ),
    (
        "task_complete_means_full_progress",
        "verified below 100",
        lambda: _with(TaskFactory(status="verified"), progress=0),
    ),
    ("task_not_own_parent", "self", lambda: _self_referencing(TaskFactory(), "parent")),
    (
        "statusupdate_progress_percent",
        "over 100",
        lambda: _status_update_instance(kind="progress", progress=101),
    ),
    (
        "statusupdate_transition_has_states",
        "no status from",
        lambda: _status_update_instance(kind="transition", status_to="in_progress"),
    ),
    (
        "statusupdate_transition_has_states",
        "no status to",
        lambda: _status_update_instance(kind="transition", status_from="planned"),
    ),
    (
        "statusupdate_deadline_change_has_reason",
        "no new date",
        lambda: _status_update_instance(kind="deadline_change", note="Delayed by the supplier."),
    ),
    (
        "statusupdate_deadline_change_has_reason",
        "no reason",
        lambda: _status_update_instance(kind="deadline_change", due_date_to=dt.date(2026, 4, 1)),
    ),
]

# Constraints that only restrict a field to its choices: the field's own validation refuses
# the value first, so full_clean() reports a field error and the constraint stays silent.
CHOICE_VIOLATIONS = [
    ("forum_kind_valid", "kind", lambda: _with(ForumFactory(), kind="party")),
    ("outcome_kind_valid", "kind", lambda: _with(OutcomeFactory(), kind="wish")),
    ("outcome_status_valid", "status", lambda: _with(OutcomeFactory(), status="forgotten")),
    ("plan_status_valid", "status", lambda: _with(PlanFactory(), status="paused")),
    (
        "planparticipant_role_valid",
        "role",
        lambda: _with(PlanParticipantFactory(), role="observer"),
    ),
    ("task_status_valid", "status", lambda: _with(TaskFactory(), status="paused")),
    ("task_priority_valid", "priority", lambda: _with(TaskFactory(), priority="urgent")),
    ("task_visibility_valid", "visibility", lambda: _with(TaskFactory(), visibility="public")),
    ("statusupdate_kind_valid", "kind", lambda: _status_update_instance(kind="comment")),
]


def test_every_plan_constraint_has_a_validation_case():
    names = {name for name, _, _ in VALIDATION_VIOLATIONS} | {n for n, _, _ in CHOICE_VIOLATIONS}
    assert names == set(CONSTRAINTS)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "make_instance"),
    [pytest.param(name, make, id=f"{name}: {case}") for name, case, make in VALIDATION_VIOLATIONS],
)
def test_full_clean_reports_constraint_message(name, make_instance):
    instance = make_instance()
    with pytest.raises(ValidationError) as exc:
        instance.full_clean()
    assert exc.value.message_dict[NON_FIELD_ERRORS] == [constraint_message(name)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "field", "make_instance"),
    [pytest.param(name, field, make, id=name) for name, field, make in CHOICE_VIOLATIONS],
)
def test_choice_constraint_message(name, field, make_instance):
    instance = make_instance()
    with pytest.raises(ValidationError) as exc:
        instance.full_clean()
    assert list(exc.value.message_dict) == [field]
    assert exc.value.error_dict[field][0].code == "invalid_choice"
    with pytest.raises(ValidationError) as exc:
        instance.validate_constraints()
    assert exc.value.messages == [constraint_message(name)]


def test_choice_constraint_messages_list_the_choices():
    assert constraint_message("task_status_valid") == (
        "Task status must be one of: planned, in_progress, at_risk, blocked, done, verified, "
        "cancelled."
    )


# --- Values at the edge are accepted --------------------------------------------------------


@pytest.mark.django_db
def test_same_ref_in_another_plan_is_fine():
    first = TaskFactory(ref="SC-03")
    second = TaskFactory.build(
        plan=PlanFactory(), ref="SC-03", lead_organization=OrganizationFactory()
    )
    second.full_clean()
    second.save()
    assert Task.objects.filter(ref="SC-03").count() == 2
    assert first.plan_id != second.plan_id


@pytest.mark.django_db
def test_same_workstream_code_in_another_plan_is_fine():
    first = WorkstreamFactory(code="SC")
    second = WorkstreamFactory(code="SC")
    assert first.plan_id != second.plan_id


@pytest.mark.django_db
def test_same_forum_name_on_another_date_is_fine():
    first = ForumFactory(name="SCCD", held_on=dt.date(2025, 5, 1))
    second = ForumFactory.build(name="SCCD", held_on=dt.date(2025, 11, 1))
    second.full_clean()
    assert first.name == second.name


@pytest.mark.django_db
@pytest.mark.parametrize("progress", [0, 100])
def test_task_progress_bounds_are_accepted(progress):
    task = TaskFactory()
    Task.objects.filter(pk=task.pk).update(progress=progress)
    task.refresh_from_db()
    task.full_clean()
    assert task.progress == progress


@pytest.mark.django_db
def test_task_due_on_its_start_date_is_fine():
    task = TaskFactory(start_date=dt.date(2026, 3, 10), due_date=dt.date(2026, 3, 10))
    task.full_clean()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("amount", "currency"), [(None, ""), (Decimal("0"), "USD"), (Decimal("7500000000"), "KRW")]
)
def test_outcome_amount_and_currency_together_are_fine(amount, currency):
    outcome = OutcomeFactory(amount=amount, currency=currency, kind=Outcome.Kind.INVESTMENT_PLEDGE)
    outcome.full_clean()


@pytest.mark.django_db
@pytest.mark.parametrize("status", Task.Status.values)
def test_database_accepts_every_task_status(status):
    task = TaskFactory()
    Task.objects.filter(pk=task.pk).update(status=status, progress=100)
    task.refresh_from_db()
    assert task.status == status


# --- Cross-plan rules of clean() ------------------------------------------------------------


@pytest.mark.django_db
def test_workstream_parent_must_belong_to_the_same_plan():
    parent = WorkstreamFactory()
    child = WorkstreamFactory.build(plan=PlanFactory(), parent=parent)
    with pytest.raises(ValidationError) as exc:
        child.full_clean()
    assert exc.value.message_dict == {"parent": ["The parent workstream belongs to another plan."]}


@pytest.mark.django_db
def test_workstream_parent_in_the_same_plan_is_fine():
    parent = WorkstreamFactory()
    child = WorkstreamFactory(plan=parent.plan, parent=parent)
    child.full_clean()
    assert list(parent.children.all()) == [child]


@pytest.mark.django_db
def test_task_workstream_must_belong_to_the_same_plan():
    task = TaskFactory()
    task.workstream = WorkstreamFactory()
    with pytest.raises(ValidationError) as exc:
        task.full_clean()
    assert exc.value.message_dict == {"workstream": ["The workstream belongs to another plan."]}


@pytest.mark.django_db
def test_task_parent_must_belong_to_the_same_plan():
    task = TaskFactory()
    task.parent = TaskFactory()
    with pytest.raises(ValidationError) as exc:
        task.full_clean()
    assert exc.value.message_dict == {"parent": ["The parent task belongs to another plan."]}


@pytest.mark.django_db
def test_task_reports_both_cross_plan_errors_at_once():
    task = TaskFactory()
    task.workstream = WorkstreamFactory()
    task.parent = TaskFactory()
    with pytest.raises(ValidationError) as exc:
        task.full_clean()
    assert set(exc.value.message_dict) == {"workstream", "parent"}


@pytest.mark.django_db
def test_task_workstream_and_parent_in_the_same_plan_are_fine():
    parent = TaskFactory()
    workstream = WorkstreamFactory(plan=parent.plan)
    milestone = TaskFactory(plan=parent.plan, workstream=workstream, parent=parent)
    milestone.full_clean()
    assert list(parent.milestones.all()) == [milestone]


# --- StatusUpdate is append-only ------------------------------------------------------------


@pytest.fixture
def status_update(db):
    task = TaskFactory()
    return task.updates.get()


def _snapshot(update):
    return StatusUpdate.objects.filter(pk=update.pk).values().get()


@pytest.mark.django_db
def test_status_update_cannot_be_saved_again(status_update):
    before = _snapshot(status_update)
    status_update.note = "Rewritten history."
    with pytest.raises(ValidationError) as exc:
        status_update.save()
    assert exc.value.messages == [APPEND_ONLY]
    assert _snapshot(status_update) == before


@pytest.mark.django_db
def test_status_update_cannot_be_deleted(status_update):
    with pytest.raises(ValidationError) as exc:
        status_update.delete()
    assert exc.value.messages == [APPEND_ONLY]
    assert StatusUpdate.objects.filter(pk=status_update.pk).exists()


@pytest.mark.django_db
def test_status_updates_cannot_be_updated_in_bulk(status_update):
    before = _snapshot(status_update)
    with pytest.raises(TypeError, match=APPEND_ONLY):
        StatusUpdate.objects.filter(pk=status_update.pk).update(note="Rewritten history.")
    with pytest.raises(TypeError, match=APPEND_ONLY):
        StatusUpdate.objects.update(note="Rewritten history.")
    status_update.note = "Rewritten history."
    # bulk_update() opens atomic(savepoint=False): give it its own savepoint to fail in.
    with pytest.raises(TypeError, match=APPEND_ONLY), transaction.atomic():
        StatusUpdate.objects.bulk_update([status_update], ["note"])
    assert _snapshot(status_update) == before


@pytest.mark.django_db
def test_status_updates_cannot_be_deleted_in_bulk(status_update):
    with pytest.raises(TypeError, match=APPEND_ONLY):
        StatusUpdate.objects.filter(pk=status_update.pk).delete()
    with pytest.raises(TypeError, match=APPEND_ONLY):
        StatusUpdate.objects.all().delete()
    assert StatusUpdate.objects.filter(pk=status_update.pk).exists()


@pytest.mark.django_db
def test_status_updates_can_still_be_appended(status_update):
    StatusUpdate(
        task=status_update.task, kind="progress", progress=10, created_at=timezone.now()
    ).save()
    assert status_update.task.updates.count() == 2


@pytest.mark.django_db
def test_deleting_a_task_does_not_silently_erase_its_history(status_update):
    # The history outlives the task: a cascade would delete it behind the queryset's back.
    task = status_update.task
    with pytest.raises((ProtectedError, ValidationError, TypeError)), transaction.atomic():
        task.delete()
    assert StatusUpdate.objects.filter(pk=status_update.pk).exists()
