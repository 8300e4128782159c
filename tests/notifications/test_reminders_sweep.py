"""The reminder policy against frozen time, for a Seoul and a New York recipient of the same
Seoul task, across the US daylight-saving change, and the sweep's guarantees (idempotent,
set-based, fresh reminders for a new due date, none for closed tasks)."""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications import services
from notifications.models import Notification, ReminderPolicy
from plans import services as plan_services
from plans.models import Task
from tests.factories import TaskFactory
from tests.notifications import reminders_world as w
from tests.notifications.reminders_world import DUE, NEW_YORK, SEOUL, local
from tracker.services import system_user

pytestmark = pytest.mark.django_db

ONE_SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def world():
    return w.build()


def sweep_at(moment: dt.datetime):
    with time_machine.travel(moment, tick=False):
        return services.reminders_sweep(enqueue=False)


def rows(**filters):
    return set(
        Notification.objects.filter(**filters).values_list("recipient__username", "kind", "step")
    )


def kinds_of(user, **filters):
    return set(Notification.objects.filter(recipient=user, **filters).values_list("kind", "step"))


def before(day, zone):
    return local(day, zone) - ONE_SECOND


@pytest.mark.parametrize(
    ("days", "kind"),
    [(14, "due_soon"), (7, "due_soon"), (1, "due_soon"), (0, "due_today")],
)
def test_each_step_falls_due_at_nine_in_the_recipients_zone(world, days, kind):
    day = DUE - dt.timedelta(days=days)
    # Seoul's 09:00 comes first (on the previous evening in New York).
    sweep_at(before(day, SEOUL))
    assert (kind, days) not in kinds_of(world.seoul)
    sweep_at(local(day, SEOUL))
    assert (kind, days) in kinds_of(world.seoul)
    assert (kind, days) not in kinds_of(world.new_york)
    sweep_at(before(day, NEW_YORK))
    assert (kind, days) not in kinds_of(world.new_york)
    sweep_at(local(day, NEW_YORK))
    assert (kind, days) in kinds_of(world.new_york)
    seoul = Notification.objects.get(recipient=world.seoul, kind=kind, step=days)
    new_york = Notification.objects.get(recipient=world.new_york, kind=kind, step=days)
    assert seoul.due_at == local(day, SEOUL)
    assert new_york.due_at == local(day, NEW_YORK)


def test_new_york_nine_moves_with_daylight_saving_in_utc(world):
    sweep_at(local(DUE - dt.timedelta(days=7), NEW_YORK))  # 2026-03-03, EST (UTC-5)
    sweep_at(local(DUE - dt.timedelta(days=1), NEW_YORK))  # 2026-03-09, EDT (UTC-4)
    seven = Notification.objects.get(recipient=world.new_york, step=7)
    one = Notification.objects.get(recipient=world.new_york, step=1)
    assert seven.due_at == dt.datetime(2026, 3, 3, 14, 0, tzinfo=dt.UTC)
    assert one.due_at == dt.datetime(2026, 3, 9, 13, 0, tzinfo=dt.UTC)


def test_november_change_back_keeps_nine_local(db):
    world = w.build(due=dt.date(2026, 11, 3), created=dt.datetime(2026, 10, 1, tzinfo=dt.UTC))
    day = dt.date(2026, 11, 2)  # the day after the US falls back (EST, UTC-5)
    sweep_at(dt.datetime(2026, 11, 2, 13, 59, 59, tzinfo=dt.UTC))
    assert ("due_soon", 1) not in kinds_of(world.new_york)
    sweep_at(dt.datetime(2026, 11, 2, 14, 0, tzinfo=dt.UTC))
    assert ("due_soon", 1) in kinds_of(world.new_york)
    assert Notification.objects.get(recipient=world.new_york, step=1).due_at == local(day, NEW_YORK)


def test_only_the_most_recent_step_is_sent(world):
    # The sweep ran for the first time on the day before the due date: only the 1-day step.
    sweep_at(local(DUE - dt.timedelta(days=1), NEW_YORK))
    assert kinds_of(world.seoul) == {("due_soon", 1)}
    assert kinds_of(world.new_york) == {("due_soon", 1)}


def test_a_task_created_three_days_before_gets_no_late_reminders(db):
    created = local(DUE - dt.timedelta(days=3), SEOUL, hour=12)
    world = w.build(created=created)
    sweep_at(created + dt.timedelta(minutes=5))
    assert not Notification.objects.exists()  # not the 14- or 7-day ones, late
    sweep_at(local(DUE - dt.timedelta(days=1), SEOUL))
    assert kinds_of(world.seoul) == {("due_soon", 1)}


def test_overdue_from_the_first_day_after_then_every_seven_days(world):
    deadline = world.task.deadline_at
    assert deadline == local(DUE + dt.timedelta(days=1), SEOUL, hour=0)
    sweep_at(deadline - ONE_SECOND)
    assert not Notification.objects.filter(kind="overdue").exists()
    day1 = DUE + dt.timedelta(days=1)
    sweep_at(before(day1, SEOUL))
    assert not Notification.objects.filter(kind="overdue").exists()
    sweep_at(local(day1, SEOUL))
    assert kinds_of(world.seoul, kind="overdue") == {("overdue", 1)}
    assert not kinds_of(world.new_york, kind="overdue")
    sweep_at(local(day1, NEW_YORK))
    assert kinds_of(world.new_york, kind="overdue") == {("overdue", 1)}
    sweep_at(local(day1 + dt.timedelta(days=6), NEW_YORK))
    assert kinds_of(world.new_york, kind="overdue") == {("overdue", 1)}
    sweep_at(before(day1 + dt.timedelta(days=7), NEW_YORK))
    assert kinds_of(world.new_york, kind="overdue") == {("overdue", 1)}
    sweep_at(local(day1 + dt.timedelta(days=7), NEW_YORK))
    assert kinds_of(world.new_york, kind="overdue") == {("overdue", 1), ("overdue", 2)}


def test_new_york_plan_deadline_seen_from_seoul(db):
    """Across the date line: a New York plan's deadline passes at 13:00 in Seoul, after
    Seoul's 09:00, so Seoul's first overdue reminder waits for the next morning."""
    world = w.build(plan_zone="America/New_York")
    deadline = world.task.deadline_at
    assert deadline == dt.datetime(2026, 3, 11, 4, 0, tzinfo=dt.UTC)  # 13:00 KST on the 11th
    sweep_at(local(DUE + dt.timedelta(days=1), SEOUL))
    assert not kinds_of(world.seoul, kind="overdue")
    sweep_at(before(DUE + dt.timedelta(days=2), SEOUL))
    assert not kinds_of(world.seoul, kind="overdue")
    sweep_at(local(DUE + dt.timedelta(days=2), SEOUL))
    assert kinds_of(world.seoul, kind="overdue") == {("overdue", 1)}
    # The due-today reminder in Seoul comes on the 10th at 09:00 KST, long before.
    sweep_at(local(DUE, SEOUL))
    assert ("due_today", 0) in kinds_of(world.seoul)


def test_escalation_to_manager_after_three_days_and_coordinators_after_fourteen(world):
    day1 = DUE + dt.timedelta(days=1)
    sweep_at(before(day1 + dt.timedelta(days=3), NEW_YORK))
    assert not Notification.objects.filter(kind="escalation_manager").exists()
    sweep_at(local(day1 + dt.timedelta(days=3), NEW_YORK))
    assert rows(kind="escalation_manager") == {(world.new_york.username, "escalation_manager", 3)}
    sweep_at(before(day1 + dt.timedelta(days=14), NEW_YORK))
    assert not Notification.objects.filter(kind="escalation_coordinators").exists()
    sweep_at(local(day1 + dt.timedelta(days=14), NEW_YORK))
    assert rows(kind="escalation_coordinators") == {
        (world.coordinator.username, "escalation_coordinators", 14)
    }


def test_awaiting_verification_after_seven_days(world):
    done_at = local(dt.date(2026, 3, 5), SEOUL, hour=15)
    task = plan_services.task_transition(
        actor=system_user(), task=world.task, to_status=Task.Status.IN_PROGRESS,
        expected_from=Task.Status.PLANNED, at=done_at - dt.timedelta(hours=1),
    )  # fmt: skip
    task = plan_services.task_transition(
        actor=system_user(), task=task, to_status=Task.Status.DONE,
        expected_from=Task.Status.IN_PROGRESS, note="Done.", at=done_at,
    )  # fmt: skip
    assert task.completed_at == done_at
    # The coordinator is in New York: the first 09:00 after is 03-05 09:00 EST, +7 days.
    day = dt.date(2026, 3, 12)
    sweep_at(before(day, NEW_YORK))
    assert not Notification.objects.filter(kind="awaiting_verification").exists()
    sweep_at(local(day, NEW_YORK))
    assert rows(kind="awaiting_verification") == {
        (world.coordinator.username, "awaiting_verification", 7)
    }
    assert not Notification.objects.filter(kind__in=["due_soon", "due_today", "overdue"]).exists()


@pytest.mark.parametrize("status", [Task.Status.DONE, Task.Status.VERIFIED, Task.Status.CANCELLED])
def test_closed_tasks_get_no_due_or_overdue_reminders(db, status):
    world = w.build()
    TaskFactory(
        plan=world.plan, lead_organization=world.lead, due_date=DUE, assignee=world.seoul,
        status=status, at=w.CREATED,
    )  # fmt: skip
    for day in (DUE - dt.timedelta(days=1), DUE, DUE + dt.timedelta(days=20)):
        sweep_at(local(day, NEW_YORK))
    closed = Notification.objects.exclude(task=world.task)
    assert not closed.filter(kind__in=["due_soon", "due_today", "overdue"]).exists()
    assert Notification.objects.filter(task=world.task).exists()


def test_a_changed_due_date_gets_fresh_reminders(world):
    sweep_at(local(DUE - dt.timedelta(days=1), NEW_YORK))
    assert kinds_of(world.seoul) == {("due_soon", 1)}
    new_due = DUE + dt.timedelta(days=3)
    moved_at = local(DUE - dt.timedelta(days=1), SEOUL, hour=23)
    with time_machine.travel(moved_at, tick=False):
        plan_services.task_change_deadline(
            actor=system_user(), task=world.task, due_date=new_due, reason="Slipped.", at=moved_at
        )
    sweep_at(local(new_due - dt.timedelta(days=1), SEOUL))
    assert set(
        Notification.objects.filter(recipient=world.seoul).values_list("due_date", "step")
    ) == {(DUE, 1), (new_due, 1)}
    # The old due date's steps are not resent: the old due date passes without overdue.
    sweep_at(local(new_due, NEW_YORK))
    assert not Notification.objects.filter(kind="overdue").exists()


def test_the_sweep_run_twice_makes_the_same_rows(world):
    moment = local(DUE + dt.timedelta(days=20), NEW_YORK)
    first = sweep_at(moment)
    snapshot = sorted(Notification.objects.values_list("dedupe_key", "due_at"))
    second = sweep_at(moment)
    assert first.created == len(snapshot) > 0
    assert second.created == 0
    assert sorted(Notification.objects.values_list("dedupe_key", "due_at")) == snapshot
    # Concurrent sweeps: the rows computed by both are inserted once (the unique key).
    rows_again = services.reminders_due(now=moment)
    Notification.objects.bulk_create(rows_again, ignore_conflicts=True)
    assert Notification.objects.count() == len(snapshot)


def test_dedupe_key_is_unique_in_the_database(world):
    sweep_at(local(DUE, NEW_YORK))
    row = Notification.objects.first()
    row.pk = None
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        row.save()


def test_policy_days_and_recipients_come_from_the_plan(world):
    ReminderPolicy.objects.create(
        plan=world.plan, before_days=[3], due_to_lead_organization=False, due_to_assignee=True
    )
    sweep_at(local(DUE - dt.timedelta(days=3), NEW_YORK))
    assert rows() == {(world.seoul.username, "due_soon", 3)}


def _tasks(world, count):
    for _ in range(count):
        TaskFactory(
            plan=world.plan, lead_organization=world.lead, due_date=DUE, at=w.CREATED,
            assignee=world.seoul,
        )  # fmt: skip


def _sweep_queries(moment):
    Notification.objects.all().delete()
    with time_machine.travel(moment, tick=False), CaptureQueriesContext(connection) as ctx:
        result = services.reminders_sweep(enqueue=False)
    return len(ctx.captured_queries), result.created


def test_the_sweep_takes_the_same_queries_for_5_and_50_tasks(db):
    moment = local(DUE - dt.timedelta(days=1), NEW_YORK)
    small = w.build()
    ReminderPolicy.objects.create(plan=small.plan, due_to_lead_organization=False)
    _tasks(small, 4)
    queries_5, created_5 = _sweep_queries(moment)
    _tasks(small, 45)
    queries_50, created_50 = _sweep_queries(moment)
    assert (created_5, created_50) == (5, 50)
    assert queries_5 == queries_50


def test_whole_day_treats_todays_reminders_as_due_before_nine(world):
    """`send_reminders --now`: today's reminders (in each recipient's zone) go out at once."""
    day = DUE - dt.timedelta(days=1)
    early = local(day, NEW_YORK, hour=0, minute=1)  # 14:01 in Seoul on the same day
    with time_machine.travel(early, tick=False):
        services.reminders_sweep(enqueue=False)
        assert ("due_soon", 1) not in kinds_of(world.new_york)
        services.reminders_sweep(enqueue=False, whole_day=True)
    assert ("due_soon", 1) in kinds_of(world.new_york)
    # Not tomorrow's: the due-today reminder waits for its day.
    assert ("due_today", 0) not in kinds_of(world.new_york)


def test_a_user_in_a_zone_nobody_knows_is_skipped_not_everyone(world, caplog):
    """A zone the validator accepted may vanish with a tzdata update (or be unknown to the
    PostgreSQL server): that user is skipped and logged; the others get their reminders."""
    from tracker.models import User

    User.objects.filter(pk=world.seoul.pk).update(time_zone="Mars/Olympus")
    services._zone_known.cache_clear()
    sweep_at(local(DUE - dt.timedelta(days=1), NEW_YORK))
    assert not kinds_of(world.seoul)
    assert kinds_of(world.new_york) == {("due_soon", 1)}
    assert "Mars/Olympus" in caplog.text


def test_a_manager_who_left_the_task_organizations_is_reminded_no_more(world):
    """New York manages the task as a manager of its lead organization; moved to another
    organization, they no longer see the task and get none of its reminders (escalations
    included), while the task still names them."""
    from plans import services as plan_services
    from tests.factories import OrganizationFactory
    from tracker.models import Membership

    moment = local(DUE + dt.timedelta(days=20), NEW_YORK)

    def reminded(user):
        return {
            row.kind for row in services.reminders_due(now=moment) if row.recipient_id == user.pk
        }

    assert "escalation_manager" in reminded(world.new_york)  # the control
    plan_services.membership_create(
        actor=system_user(), user=world.new_york, organization=OrganizationFactory(),
        role=Membership.Role.MANAGER,
    )  # fmt: skip
    plan_services.membership_delete(
        actor=system_user(), membership=world.new_york.memberships.get(organization=world.lead)
    )
    assert Task.objects.get(pk=world.task.pk).manager == world.new_york
    assert reminded(world.new_york) == set()
    assert reminded(world.seoul)  # the assignee, still at the lead organization
    sweep_at(moment)
    assert not Notification.objects.filter(recipient=world.new_york).exists()
