"""Overdue at the edge of a day in the plan's time zone, and progress rolled up from tasks."""

import datetime as dt

import pytest
import time_machine

from plans.models import Outcome, Plan, Task, Workstream
from tests.factories import (
    OutcomeFactory,
    PlanFactory,
    PlanParticipantFactory,
    TaskFactory,
    WorkstreamFactory,
)

S = Task.Status
SECOND = dt.timedelta(seconds=1)


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


# (plan time zone, due date, the instant the due date ends)
DEADLINES = [
    pytest.param("Asia/Seoul", dt.date(2026, 3, 10), utc(2026, 3, 10, 15), id="seoul"),
    pytest.param("America/New_York", dt.date(2026, 3, 10), utc(2026, 3, 11, 4), id="new-york-edt"),
    pytest.param("America/New_York", dt.date(2026, 1, 15), utc(2026, 1, 16, 5), id="new-york-est"),
    pytest.param(
        "America/New_York", dt.date(2026, 3, 7), utc(2026, 3, 8, 5), id="new-york-dst-begins"
    ),
    pytest.param(
        "America/New_York", dt.date(2026, 11, 1), utc(2026, 11, 2, 5), id="new-york-dst-ends"
    ),
]


@pytest.mark.parametrize(("time_zone", "due_date", "deadline"), DEADLINES)
def test_deadline_for_is_the_next_midnight_in_the_zone(time_zone, due_date, deadline):
    assert Task.deadline_for(due_date, time_zone) == deadline


@pytest.mark.django_db
@pytest.mark.parametrize(("time_zone", "due_date", "deadline"), DEADLINES)
def test_overdue_starts_at_the_end_of_the_due_date_in_the_plan_zone(time_zone, due_date, deadline):
    task = TaskFactory(plan=PlanFactory(time_zone=time_zone), due_date=due_date)
    assert task.deadline_at == deadline

    with time_machine.travel(deadline - SECOND, tick=False):
        assert list(Task.objects.overdue()) == []
        assert list(Task.objects.not_overdue()) == [task]
        assert Task.objects.with_overdue().get().is_overdue is False
    with time_machine.travel(deadline, tick=False):
        assert list(Task.objects.overdue()) == [task]
        assert list(Task.objects.not_overdue()) == []
        assert Task.objects.with_overdue().get().is_overdue is True

    assert list(Task.objects.overdue(now=deadline - SECOND)) == []
    assert list(Task.objects.overdue(now=deadline)) == [task]
    assert list(Task.objects.overdue(now=deadline + dt.timedelta(days=30))) == [task]


@pytest.mark.django_db
def test_seoul_task_is_not_overdue_on_the_last_second_of_its_day():
    task = TaskFactory(plan=PlanFactory(time_zone="Asia/Seoul"), due_date=dt.date(2026, 3, 10))
    # 23:59:59 KST on the due date
    assert not Task.objects.overdue(now=utc(2026, 3, 10, 14, 59, 59)).exists()
    # 00:00:00 KST the day after
    assert list(Task.objects.overdue(now=utc(2026, 3, 10, 15))) == [task]


@pytest.mark.django_db
def test_new_york_task_uses_daylight_time_after_the_change():
    task = TaskFactory(
        plan=PlanFactory(time_zone="America/New_York"), due_date=dt.date(2026, 3, 10)
    )
    # At 04:00 UTC it is already midnight EDT; an EST (05:00) deadline would be an hour late.
    with time_machine.travel(utc(2026, 3, 11, 3, 59, 59), tick=False):
        assert not Task.objects.overdue().exists()
    with time_machine.travel(utc(2026, 3, 11, 4), tick=False):
        assert list(Task.objects.overdue()) == [task]


@pytest.mark.django_db
def test_default_now_is_read_at_each_call():
    TaskFactory(due_date=dt.date(2026, 3, 10))
    with time_machine.travel(utc(2026, 3, 1), tick=False):
        assert Task.objects.overdue().count() == 0
    with time_machine.travel(utc(2026, 4, 1), tick=False):
        assert Task.objects.overdue().count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("status", [S.PLANNED, S.IN_PROGRESS, S.AT_RISK, S.BLOCKED])
def test_every_open_status_can_be_overdue(status):
    task = TaskFactory(status=status, due_date=dt.date(2026, 3, 10))
    assert list(Task.objects.overdue(now=utc(2026, 4, 1))) == [task]
    assert list(Task.objects.open()) == [task]


@pytest.mark.django_db
@pytest.mark.parametrize("status", [S.DONE, S.VERIFIED, S.CANCELLED])
def test_closed_tasks_are_never_overdue(status):
    task = TaskFactory(status=status, due_date=dt.date(2026, 3, 10))
    later = utc(2030, 1, 1)
    assert not Task.objects.overdue(now=later).exists()
    assert list(Task.objects.not_overdue(now=later)) == [task]
    assert Task.objects.with_overdue(now=later).get().is_overdue is False
    assert not Task.objects.open().exists()
    with time_machine.travel(later, tick=False):
        assert not Task.objects.overdue().exists()


@pytest.mark.django_db
def test_with_overdue_agrees_with_overdue():
    seoul = PlanFactory(time_zone="Asia/Seoul")
    new_york = PlanFactory(time_zone="America/New_York")
    for plan in (seoul, new_york):
        for status in S.values:
            for due in (dt.date(2026, 3, 7), dt.date(2026, 3, 10), dt.date(2026, 11, 1)):
                TaskFactory(plan=plan, status=status, due_date=due)

    instants = [utc(2026, 3, 1), utc(2026, 3, 8, 4, 59, 59), utc(2026, 3, 8, 5)]
    instants += [utc(2026, 3, 10, 15), utc(2026, 3, 11, 4), utc(2026, 11, 2, 5), utc(2027, 1, 1)]
    seen_counts = set()
    for now in instants:
        overdue = set(Task.objects.overdue(now=now).values_list("pk", flat=True))
        flagged = dict(Task.objects.with_overdue(now=now).values_list("pk", "is_overdue"))
        assert {pk for pk, is_overdue in flagged.items() if is_overdue} == overdue
        assert all(isinstance(is_overdue, bool) for is_overdue in flagged.values())
        assert set(Task.objects.not_overdue(now=now).values_list("pk", flat=True)) == (
            set(flagged) - overdue
        )
        with time_machine.travel(now, tick=False):
            assert (
                set(
                    Task.objects.with_overdue().filter(is_overdue=True).values_list("pk", flat=True)
                )
                == overdue
            )
        seen_counts.add(len(overdue))
    # The instants really cross deadlines: from none overdue to every open task overdue.
    assert min(seen_counts) == 0
    assert max(seen_counts) == 2 * 4 * 3


# --- Rolled-up progress ---------------------------------------------------------------------

ROLLUP_NOW = utc(2026, 6, 1)


def make_rollup_tasks(**common):
    """Five tasks: two overdue at ROLLUP_NOW, one done, one cancelled (which never counts)."""
    return [
        TaskFactory(status=S.PLANNED, progress=0, due_date=dt.date(2026, 5, 1), **common),
        TaskFactory(status=S.IN_PROGRESS, progress=50, due_date=dt.date(2026, 12, 31), **common),
        TaskFactory(status=S.DONE, due_date=dt.date(2026, 5, 1), **common),
        TaskFactory(status=S.BLOCKED, progress=20, due_date=dt.date(2026, 5, 31), **common),
        TaskFactory(status=S.CANCELLED, progress=30, due_date=dt.date(2026, 1, 1), **common),
    ]


EXPECTED = {"task_count": 4, "done_count": 1, "overdue_count": 2, "progress_rollup": 42.5}
EMPTY = {"task_count": 0, "done_count": 0, "overdue_count": 0, "progress_rollup": 0}


def rollup(obj) -> dict:
    return {name: getattr(obj, name) for name in EXPECTED}


@pytest.mark.django_db
def test_plan_with_progress():
    plan = PlanFactory(time_zone="Asia/Seoul")
    make_rollup_tasks(plan=plan)
    TaskFactory(status=S.IN_PROGRESS, progress=90)  # another plan's task

    annotated = Plan.objects.with_progress(now=ROLLUP_NOW).get(pk=plan.pk)
    assert rollup(annotated) == EXPECTED
    assert isinstance(annotated.progress_rollup, float)

    with time_machine.travel(ROLLUP_NOW, tick=False):
        assert rollup(Plan.objects.with_progress().get(pk=plan.pk)) == EXPECTED
    # Before the first deadline nothing is overdue yet.
    assert Plan.objects.with_progress(now=utc(2026, 1, 1)).get(pk=plan.pk).overdue_count == 0


@pytest.mark.django_db
def test_verified_tasks_count_as_done():
    plan = PlanFactory()
    TaskFactory(plan=plan, status=S.VERIFIED)
    TaskFactory(plan=plan, status=S.DONE)
    TaskFactory(plan=plan, status=S.IN_PROGRESS, progress=10)
    annotated = Plan.objects.with_progress().get(pk=plan.pk)
    assert (annotated.task_count, annotated.done_count) == (3, 2)
    assert annotated.progress_rollup == pytest.approx(70.0)


@pytest.mark.django_db
def test_plan_without_tasks_rolls_up_to_zero():
    plan = PlanFactory()
    only_cancelled = PlanFactory()
    TaskFactory(plan=only_cancelled, status=S.CANCELLED, progress=80)
    annotated = {p.pk: rollup(p) for p in Plan.objects.with_progress(now=ROLLUP_NOW)}
    assert annotated == {plan.pk: EMPTY, only_cancelled.pk: EMPTY}
    assert isinstance(annotated[plan.pk]["progress_rollup"], float)


@pytest.mark.django_db
def test_workstream_with_progress():
    plan = PlanFactory()
    workstream = WorkstreamFactory(plan=plan)
    empty = WorkstreamFactory(plan=plan)
    make_rollup_tasks(plan=plan, workstream=workstream)
    TaskFactory(plan=plan, status=S.IN_PROGRESS, progress=90)  # no workstream

    annotated = {w.pk: rollup(w) for w in Workstream.objects.with_progress(now=ROLLUP_NOW)}
    assert annotated == {workstream.pk: EXPECTED, empty.pk: EMPTY}
    # The plan counts the task outside any workstream too.
    plan_rollup = rollup(Plan.objects.with_progress(now=ROLLUP_NOW).get())
    assert plan_rollup["task_count"] == 5
    assert plan_rollup["progress_rollup"] == pytest.approx((0 + 50 + 100 + 20 + 90) / 5)


@pytest.mark.django_db
def test_outcome_with_progress_across_plans():
    outcome = OutcomeFactory()
    untouched = OutcomeFactory()
    seoul = PlanFactory(time_zone="Asia/Seoul")
    new_york = PlanFactory(time_zone="America/New_York")
    tasks = make_rollup_tasks(plan=seoul, source_outcomes=[outcome])
    tasks[2].source_outcomes.add(untouched)  # the done task serves two outcomes
    TaskFactory(
        plan=new_york,
        status=S.AT_RISK,
        progress=60,
        due_date=dt.date(2026, 5, 31),  # ends 2026-06-01 04:00 UTC: not overdue yet
        source_outcomes=[outcome],
    )
    TaskFactory(plan=new_york, status=S.IN_PROGRESS, progress=10)  # not linked

    annotated = {o.pk: rollup(o) for o in Outcome.objects.with_progress(now=ROLLUP_NOW)}
    assert annotated[outcome.pk] == {
        "task_count": 5,
        "done_count": 1,
        "overdue_count": 2,
        "progress_rollup": pytest.approx((0 + 50 + 100 + 20 + 60) / 5),
    }
    assert annotated[untouched.pk] == {
        "task_count": 1,
        "done_count": 1,
        "overdue_count": 0,
        "progress_rollup": 100,
    }
    later = Outcome.objects.with_progress(now=utc(2026, 6, 1, 4)).get(pk=outcome.pk)
    assert later.overdue_count == 3


@pytest.mark.django_db
def test_rollups_do_not_duplicate_rows():
    plan = PlanFactory()
    for _ in range(4):
        PlanParticipantFactory(plan=plan)
    workstreams = [WorkstreamFactory(plan=plan) for _ in range(3)]
    outcomes = [OutcomeFactory() for _ in range(3)]
    for index, workstream in enumerate(workstreams):
        TaskFactory(
            plan=plan,
            workstream=workstream,
            status=S.IN_PROGRESS,
            progress=10 * (index + 1),
            source_outcomes=outcomes,
            supporting_organizations=[p.organization for p in plan.participations.all()],
        )
    other = PlanFactory()

    plans = list(Plan.objects.with_progress(now=ROLLUP_NOW))
    assert sorted(p.pk for p in plans) == sorted([plan.pk, other.pk])
    (annotated,) = [p for p in plans if p.pk == plan.pk]
    assert (annotated.task_count, annotated.done_count) == (3, 0)
    assert annotated.progress_rollup == pytest.approx(20.0)

    # Filtering through a to-many relation after annotating still gives one row per plan.
    filtered = Plan.objects.with_progress().filter(participants__in=[plan.participants.first()])
    assert [(p.pk, p.task_count) for p in filtered] == [(plan.pk, 3)]

    annotated_workstreams = list(Workstream.objects.with_progress())
    assert len(annotated_workstreams) == 3
    assert [w.task_count for w in annotated_workstreams] == [1, 1, 1]

    annotated_outcomes = list(Outcome.objects.with_progress())
    assert len(annotated_outcomes) == 3
    assert {(o.task_count, o.progress_rollup) for o in annotated_outcomes} == {(3, 20.0)}
