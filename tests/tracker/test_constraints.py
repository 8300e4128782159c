"""Check constraints validated in one query (tracker/constraints.py): the same errors as
Django's own `Model.validate_constraints()` (one query per constraint), in one round trip
and its savepoint."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.test.utils import CaptureQueriesContext

from plans.models import Outcome, StatusUpdate, Task
from tests.factories import OutcomeFactory, TaskFactory
from tracker.constraints import ChecksInOneQuery

pytestmark = pytest.mark.django_db


def errors(validate, **kwargs) -> dict | None:
    try:
        validate(**kwargs)
    except ValidationError as exc:
        return {
            field: [(e.message, e.code, e.params) for e in items]
            for field, items in exc.error_dict.items()
        }
    return None


def both(instance, exclude=None):
    """(one query, Django's own) for the same instance."""
    ours = errors(instance.validate_constraints, exclude=exclude)
    django = errors(models.Model.validate_constraints, self=instance, exclude=exclude)
    return ours, django


def test_the_models_with_several_checks_use_it():
    for model in (Task, StatusUpdate, Outcome):
        assert issubclass(model, ChecksInOneQuery)
        checks = [c for c in model._meta.constraints if type(c) is models.CheckConstraint]
        assert len(checks) >= 2


BROKEN_TASKS = {
    "valid": {},
    "progress out of range": {"progress": 150},
    "done below 100": {"status": "done", "progress": 40},
    "due before start": {"start_date": dt.date(2027, 5, 1), "due_date": dt.date(2027, 4, 1)},
    "unknown choices": {"status": "lost", "priority": "urgent", "visibility": "world"},
    "many at once": {
        "status": "verified",
        "progress": 101,
        "priority": "urgent",
        "start_date": dt.date(2027, 5, 1),
        "due_date": dt.date(2027, 4, 1),
    },
}


@pytest.mark.parametrize("case", BROKEN_TASKS)
def test_the_same_errors_as_django_in_fewer_queries(case):
    task = TaskFactory.build(plan=TaskFactory().plan, ref="X-1")
    for name, value in BROKEN_TASKS[case].items():
        setattr(task, name, value)
    with transaction.atomic():  # as in the services: Django adds a savepoint per check
        with CaptureQueriesContext(connection) as ours:
            ours_errors = errors(task.validate_constraints)
        with CaptureQueriesContext(connection) as django:
            django_errors = errors(models.Model.validate_constraints, self=task)
    assert ours_errors == django_errors
    assert (ours_errors is None) == (case == "valid")
    # The unique ref, then 7 checks: 3 round trips each for Django, 3 in all here.
    assert len(django) == 1 + 7 * 3
    assert len(ours) == 1 + 3, [q["sql"] for q in ours.captured_queries]


def test_a_unique_constraint_is_still_reported_under_its_fields():
    existing = TaskFactory()
    task = TaskFactory.build(plan=existing.plan, ref=existing.ref, progress=150)
    ours, django = both(task)
    assert ours == django
    assert set(ours) == {"__all__"}
    assert len(ours["__all__"]) == 2  # the ref, then the progress, in the constraints' order


def test_an_excluded_field_skips_the_checks_that_name_it():
    task = TaskFactory.build(plan=TaskFactory().plan, ref="X-2", progress=150, status="lost")
    ours, django = both(task, exclude={"progress"})
    assert ours == django
    messages = [m for m, _, _ in ours["__all__"]]
    assert not any("Progress" in str(m) for m in messages)
    assert len(messages) == 1  # the status choice only


def test_a_failing_combined_query_falls_back_to_djangos_checks(caplog):
    """An amount the database cannot hold breaks the combined query; each check is then
    asked alone, as Django does (it logs the error and lets that check pass), and the
    transaction goes on."""
    outcome = OutcomeFactory.build(kind="lost", amount=Decimal("1E+1000000"), currency="USD")
    with transaction.atomic():
        ours, django = both(outcome)
        assert Outcome.objects.count() >= 0  # the transaction still works
    assert ours == django
    assert len(ours["__all__"]) == 1  # the kind only: the amount's checks failed at the database
    assert "Got a database error calling check()" in caplog.text


def test_full_clean_reports_through_it():
    task = TaskFactory.build(plan=TaskFactory().plan, ref="X-4", status="done", progress=40)
    with pytest.raises(ValidationError) as raised:
        task.full_clean()
    assert "A done or verified task has progress 100." in raised.value.messages


# --- Foreign keys ----------------------------------------------------------------------------


def clean_both(instance):
    """(one query, Django's own) errors of clean_fields() for the same values."""
    ours = errors(instance.clean_fields)
    values = {
        f.attname: getattr(instance, f.attname) for f in instance._meta.fields if not f.generated
    }
    django = errors(models.Model.clean_fields, self=instance)
    for name, value in values.items():
        setattr(instance, name, value)
    return ours, django


@pytest.mark.parametrize("missing", [(), ("lead_organization_id",), ("plan_id", "assignee_id")])
def test_foreign_keys_are_found_in_one_query_with_djangos_errors(missing):
    other = TaskFactory()
    task = TaskFactory.build(
        plan=other.plan,
        ref="X-5",
        workstream=None,
        assignee=other.created_by,
        created_by=other.created_by,
        updated_by=other.created_by,
    )
    for name in missing:
        setattr(task, name, 987654321)
    with CaptureQueriesContext(connection) as ours:
        errors(task.clean_fields)
    with CaptureQueriesContext(connection) as django:
        errors(models.Model.clean_fields, self=task)
    assert clean_both(task)[0] == clean_both(task)[1]
    if missing:
        assert set(clean_both(task)[0]) >= {name.removesuffix("_id") for name in missing}
    keys = [
        f
        for f in Task._meta.fields
        if isinstance(f, models.ForeignKey) and getattr(task, f.attname)
    ]
    assert len(keys) >= 3  # plan, lead organization, assignee at least
    # A query per key for Django; one here, and each missing one again through Django (its
    # message).
    assert len(django) == len(keys)
    assert len(ours) == 1 + len(missing)


def test_an_unreadable_key_is_left_to_django():
    task = TaskFactory.build(plan=TaskFactory().plan, ref="X-6")
    task.lead_organization_id = "not a key"
    ours, django = clean_both(task)
    assert ours == django
    assert "lead_organization" in ours
