"""The outbox shared by the deliveries: one message per batch of ids, a batch claimed in one
statement, stamps fenced by the attempt number, and time limits inside the lease."""

import datetime as dt

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.mail.backends.locmem import EmailBackend
from django.db import transaction

from notifications import outbox, services
from notifications.models import Notification
from notifications.tasks import (
    EMAIL_HARD_LIMIT,
    EMAIL_SOFT_LIMIT,
    deliver_digests_task,
    deliver_notifications_task,
)
from tests.factories import TaskFactory
from tests.notifications import reminders_world as w
from tests.notifications.reminders_world import CREATED, DUE, NEW_YORK, local

pytestmark = pytest.mark.django_db

MOMENT = local(DUE - dt.timedelta(days=1), NEW_YORK)

# How long a claim holds its rows (REMINDER_LEASE_SECONDS, 60 s by default).
LEASE = dt.timedelta(seconds=django_settings.REMINDER_LEASE_SECONDS)


@pytest.fixture
def messages(monkeypatch):
    """apply_async of the batch task (the broker, mocked out): one list of ids per message."""
    sent = []

    def apply_async(args=None, kwargs=None, countdown=None, queue=None, **_options):
        sent.append(list(args[0]))

    monkeypatch.setattr(deliver_notifications_task, "apply_async", apply_async)
    return sent


@pytest.fixture
def world(settings):
    settings.SITE_URL = "https://tracker.example.org"
    world = w.build()
    for _ in range(4):  # five tasks, two recipients each: ten reminders
        TaskFactory(
            plan=world.plan,
            lead_organization=world.lead,
            due_date=DUE,
            assignee=world.seoul,
            manager=world.new_york,
            at=CREATED,
        )
    return world


def sweep(capture):
    with time_machine.travel(MOMENT, tick=False), capture(execute=True):
        return services.reminders_sweep()


@pytest.mark.parametrize(("size", "expected"), [(200, [10]), (4, [4, 4, 2]), (1, [1] * 10)])
def test_the_sweep_enqueues_one_message_per_batch_of_ids(
    world, messages, settings, django_capture_on_commit_callbacks, size, expected
):
    settings.DELIVERY_BATCH_SIZE = size
    result = sweep(django_capture_on_commit_callbacks)
    assert result.created == 10
    assert [len(batch) for batch in messages] == expected
    assert sorted(pk for batch in messages for pk in batch) == sorted(result.notification_ids)


def test_a_batch_is_claimed_once_and_a_second_claim_gets_nothing(world, messages, mailoutbox):
    with time_machine.travel(MOMENT, tick=False):
        services.reminders_sweep(enqueue=False)
    ids = sorted(Notification.objects.values_list("pk", flat=True))
    claimed_at = MOMENT + dt.timedelta(minutes=1)
    with time_machine.travel(claimed_at, tick=False):
        first = services._notifications_claim(ids)
        second = services._notifications_claim(ids)
    assert sorted(lease.notification.pk for lease in first) == ids
    assert second == []
    lease_end = claimed_at + LEASE
    rows = Notification.objects.filter(pk__in=ids)
    assert set(rows.values_list("attempts", "next_attempt_at")) == {(1, lease_end)}


def test_a_stamp_after_a_lost_lease_records_nothing(world, messages, mailoutbox):
    with time_machine.travel(MOMENT, tick=False):
        services.reminders_sweep(enqueue=False)
    ids = sorted(Notification.objects.values_list("pk", flat=True))
    first_at = MOMENT + dt.timedelta(minutes=1)
    with time_machine.travel(first_at, tick=False):
        stale = services._notifications_claim(ids)  # this worker then hangs past its lease
    second_at = first_at + LEASE
    with time_machine.travel(second_at, tick=False):
        results = services.notifications_deliver_batch(notification_ids=ids)
    assert [r.sent for r in results] == [True] * len(ids)
    with time_machine.travel(second_at + dt.timedelta(seconds=5), tick=False):
        for lease in stale:  # the hung worker wakes up: neither outcome is recorded
            services._notification_stamp(lease, OSError("late failure"))
            services._notification_stamp(lease, None)
    rows = Notification.objects.filter(pk__in=ids)
    assert set(rows.values_list("attempts", "email_sent_at", "failure_reason")) == {
        (2, second_at, "")
    }
    assert len(mailoutbox) == len(ids) and messages == []


def test_a_batch_sends_over_one_connection(world, monkeypatch, mailoutbox):
    with time_machine.travel(MOMENT, tick=False):
        services.reminders_sweep(enqueue=False)
    connections = []
    send = EmailBackend.send_messages

    def spy(self, batch):
        connections.append(id(self))
        return send(self, batch)

    monkeypatch.setattr(EmailBackend, "send_messages", spy)
    ids = list(Notification.objects.values_list("pk", flat=True))
    with time_machine.travel(MOMENT + dt.timedelta(minutes=1), tick=False):
        results = services.notifications_deliver_batch(notification_ids=ids)
    assert len(results) == len(ids) == len(mailoutbox) == 10
    assert len(connections) == 10 and len(set(connections)) == 1


def test_a_batch_gives_back_what_its_lease_has_no_time_left_for(
    world, messages, monkeypatch, settings, mailoutbox
):
    """Each send takes 40 s here: after the lease's usable part (300 s - 5 s - EMAIL_TIMEOUT
    - 10 s) no new send starts; the rest is released (attempt not counted, due now) and
    enqueued again."""
    settings.EMAIL_TIMEOUT = 30
    settings.REMINDER_LEASE_SECONDS = 300
    with time_machine.travel(MOMENT, tick=False):
        services.reminders_sweep(enqueue=False)
    ids = sorted(Notification.objects.values_list("pk", flat=True))
    send = EmailBackend.send_messages
    claimed_at = MOMENT + dt.timedelta(minutes=1)
    with time_machine.travel(claimed_at, tick=False) as traveller:

        def slow(self, batch):
            traveller.shift(dt.timedelta(seconds=40))
            return send(self, batch)

        monkeypatch.setattr(EmailBackend, "send_messages", slow)
        results = services.notifications_deliver_batch(notification_ids=ids)
    sent = [r.notification_id for r in results if r.sent]
    # Sends start at 0, 40, ..., 240 s (before 255 s): 7 of them.
    assert len(sent) == 7 == len(mailoutbox)
    rest = Notification.objects.filter(pk__in=ids).exclude(pk__in=sent)
    assert set(rest.values_list("attempts", "email_sent_at")) == {(0, None)}
    assert set(rest.values_list("next_attempt_at", flat=True)) == {
        claimed_at + dt.timedelta(seconds=280)
    }


def test_the_delivery_tasks_end_inside_the_lease(settings):
    lease = settings.REMINDER_LEASE_SECONDS
    assert EMAIL_SOFT_LIMIT < EMAIL_HARD_LIMIT < lease
    for task in (deliver_notifications_task, deliver_digests_task):
        assert (task.soft_time_limit, task.time_limit) == (EMAIL_SOFT_LIMIT, EMAIL_HARD_LIMIT)
    claimed = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    deadline = outbox.send_deadline(claimed, dt.timedelta(seconds=lease), settings.EMAIL_TIMEOUT)
    assert claimed < deadline <= claimed + dt.timedelta(seconds=lease) - outbox.CLOCK_SLACK
    assert outbox.time_limits(10) == (8, 9)
    assert outbox.send_deadline(claimed, dt.timedelta(seconds=10), 30) == claimed + dt.timedelta(
        seconds=5
    )


# --- The enqueue after commit ---------------------------------------------------------------


class _Publisher:
    """A task whose publish raises `error`."""

    def __init__(self, error: Exception):
        self.error = error

    def apply_async(self, **_kwargs):
        raise self.error


@pytest.mark.django_db
def test_a_broker_error_in_the_enqueue_after_commit_is_logged_not_raised(
    django_capture_on_commit_callbacks, caplog
):
    from kombu.exceptions import OperationalError as BrokerError

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        outbox.enqueue_batches_on_commit(_Publisher(BrokerError("down")), [1, 2], queue="q")
    assert "the requeue will send them" in caplog.text


@pytest.mark.django_db
def test_a_soft_time_limit_in_the_enqueue_after_commit_stops_the_task(
    django_capture_on_commit_callbacks,
):
    """The soft time limit striking while a retry is enqueued after its stamp committed must
    stop the task (it was swallowed: the task reported success); the row is due in the
    database and the requeue sends it at its time."""
    from celery.exceptions import SoftTimeLimitExceeded

    with (
        pytest.raises(SoftTimeLimitExceeded),
        django_capture_on_commit_callbacks(execute=True),
        transaction.atomic(),
    ):
        outbox.enqueue_batches_on_commit(_Publisher(SoftTimeLimitExceeded()), [1], queue="q")
