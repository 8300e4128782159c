"""Delivery that survives bad rows and lost messages (issue 9, items 2 and 5).

- An email that cannot be built (a task ref with a newline, stored before refs were
  validated, makes the subject header invalid) is recorded on its row as failed for good,
  with the reason, and the rest of the batch (`send_reminders`: the other reminders and the
  digests) is sent; the worker's task returns normally instead of crashing.
- A row whose message was lost is enqueued again once it has been due for
  DELIVERY_REQUEUE_AFTER_SECONDS, by `notifications.requeue_deliveries`, which beat runs every
  DELIVERY_REQUEUE_EVERY_SECONDS on the housekeeping queue.
- A real database error inside a delivery task makes Celery retry it (state RETRY), not
  swallow or drop it.
"""

import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from notifications import emails, services
from notifications.models import Digest, Notification
from notifications.tasks import (
    deliver_digest_task,
    deliver_digests_task,
    deliver_notification_task,
    deliver_notifications_task,
    deliver_webhook_task,
    deliver_webhooks_task,
)
from plans.models import Task
from tests.factories import TaskFactory
from tests.notifications import reminders_world as w
from tests.notifications.reminders_world import CREATED, DUE, NEW_YORK, local

MOMENT = local(DUE - dt.timedelta(days=1), NEW_YORK)  # 09:00 in New York, the day before


@pytest.fixture
def world(settings):
    settings.SITE_URL = "https://tracker.example.org"
    return w.build()


@pytest.fixture
def enqueued(monkeypatch):
    """Calls to the delivery tasks' apply_async (the broker, mocked out): (task, id, queue)."""
    calls = []
    batches = (deliver_notifications_task, deliver_digests_task, deliver_webhooks_task)
    for task in (*batches, deliver_digest_task, deliver_webhook_task):

        def apply_async(args=None, kwargs=None, countdown=None, queue=None, _task=task, **_opts):
            ids = args[0] if isinstance(args[0], list) else [args[0]]  # a batch: one per id
            calls.extend((_task.name, pk, queue) for pk in ids)

        monkeypatch.setattr(task, "apply_async", apply_async)
    return calls


def break_ref(task: Task) -> None:
    """A ref with a newline, as rows stored before refs rejected control characters hold."""
    Task.objects.filter(pk=task.pk).update(ref="EN-07\nBcc: victim@example.org")


# --- Email build failures ------------------------------------------------------------------


@pytest.mark.django_db
def test_a_newline_in_a_ref_fails_that_email_for_good_and_the_batch_goes_on(world, mailoutbox):
    other = TaskFactory(
        plan=world.plan,
        lead_organization=world.lead,
        due_date=DUE,
        assignee=world.seoul,
        manager=world.new_york,
        at=CREATED,
    )
    break_ref(world.task)
    services.notification_preferences_update(actor=world.new_york, user=world.new_york, digest=True)

    out = StringIO()
    with time_machine.travel(MOMENT, tick=False):
        call_command("send_reminders", stdout=out)

    bad = Notification.objects.filter(task=world.task)
    good = Notification.objects.filter(task=other)
    assert bad.count() == 2 and good.count() == 2
    for notification in bad:
        assert notification.email_sent_at is None and notification.email_failed_at is not None
        assert notification.next_attempt_at is None and notification.attempts == 1
        assert notification.failure_reason.startswith(services.NOT_BUILT.split("(")[0])
        assert "BadHeaderError" in notification.failure_reason
    assert all(n.email_sent_at is not None for n in good)
    digest = Digest.objects.get(user=world.new_york)
    assert digest.status == Digest.Status.SENT
    sent_ids = sorted(m.extra_headers["Message-ID"] for m in mailoutbox)
    assert sent_ids == sorted(
        [emails.message_id(n.dedupe_key) for n in good] + [emails.message_id(digest.dedupe_key)]
    )
    assert "2 not emailed" in out.getvalue()

    # The next run leaves the failed rows alone and sends nothing again.
    with time_machine.travel(MOMENT + dt.timedelta(minutes=5), tick=False):
        call_command("send_reminders", stdout=StringIO())
    assert len(mailoutbox) == 3


@pytest.mark.django_db
def test_the_worker_task_records_a_build_failure_and_returns(world, mailoutbox):
    break_ref(world.task)
    with time_machine.travel(MOMENT, tick=False):
        services.reminders_sweep(enqueue=False)
        notification = Notification.objects.filter(task=world.task).first()
        result = deliver_notification_task.apply(args=[notification.pk])
    assert result.state == "SUCCESS"
    notification.refresh_from_db()
    assert notification.email_failed_at is not None
    assert "BadHeaderError" in notification.failure_reason
    assert mailoutbox == []


@pytest.mark.django_db
def test_a_digest_that_cannot_be_built_is_recorded_as_not_sent(world, mailoutbox, monkeypatch):
    services.notification_preferences_update(actor=world.new_york, user=world.new_york, digest=True)
    # A subject template broken in a translation: the build fails, whatever the cause.
    monkeypatch.setattr(emails, "DIGEST_SUBJECT", "Digest {day}\n{count}")
    with time_machine.travel(MOMENT, tick=False):
        services.digests_sweep(enqueue=False)
        (result,) = services.digests_deliver_pending()
    digest = Digest.objects.get(user=world.new_york)
    assert result.status == digest.status == Digest.Status.NOT_SENT
    assert digest.failure_reason.startswith(services.NOT_BUILT.split("(")[0])
    assert digest.next_attempt_at is None
    assert mailoutbox == []


# --- Requeue of lost rows ------------------------------------------------------------------


@pytest.mark.django_db
def test_a_lost_reminder_and_digest_are_requeued_after_the_configured_time(
    world, settings, enqueued, django_capture_on_commit_callbacks
):
    settings.DELIVERY_REQUEUE_AFTER_SECONDS = 40
    services.notification_preferences_update(actor=world.new_york, user=world.new_york, digest=True)
    with time_machine.travel(MOMENT, tick=False):
        # Created, but their messages never reach the broker (enqueue=False: lost).
        services.reminders_sweep(enqueue=False)
        services.digests_sweep(enqueue=False)
    assert Notification.objects.count() == 2 and Digest.objects.count() == 1

    with (
        time_machine.travel(MOMENT + dt.timedelta(seconds=39), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert services.deliveries_requeue() == services.RequeueResult(0, 0, 0)
    assert enqueued == []

    with (
        time_machine.travel(MOMENT + dt.timedelta(seconds=41), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert services.deliveries_requeue() == services.RequeueResult(2, 1, 0)
    notification_ids = set(Notification.objects.values_list("pk", flat=True))
    digest_id = Digest.objects.get().pk
    assert sorted(enqueued) == sorted(
        [("notifications.deliver_notifications", pk, "email") for pk in notification_ids]
        + [("notifications.deliver_digests", digest_id, "email")]
    )

    # Made due at the requeue: not enqueued again before another full wait.
    enqueued.clear()
    with (
        time_machine.travel(MOMENT + dt.timedelta(seconds=70), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert services.deliveries_requeue() == services.RequeueResult(0, 0, 0)
    assert enqueued == []


def test_beat_requeues_every_interval_so_a_lost_row_goes_out_within_two_minutes(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["notifications.requeue_deliveries"]
    assert entry["task"] == "notifications.requeue_deliveries"
    assert entry["schedule"] == settings.DELIVERY_REQUEUE_EVERY_SECONDS
    assert entry["options"] == {"queue": settings.HOUSEKEEPING_QUEUE}
    assert "notifications.requeue_deliveries" in settings.BEAT_RUN_AT_START
    # The defaults: a lost message costs at most AFTER + EVERY seconds after its row fell
    # due; a dead or cut-off worker's rows fall due at most a lease after the fault, and are
    # then sent within seconds: all inside 2 minutes with room for the send (docs/deploy.md).
    from tracker import settings as defaults

    requeue = defaults.DELIVERY_REQUEUE_AFTER_SECONDS + defaults.DELIVERY_REQUEUE_EVERY_SECONDS
    assert requeue <= 40
    assert defaults.REMINDER_LEASE_SECONDS + requeue <= 100
    assert defaults.WEBHOOK_LEASE_SECONDS + requeue <= 100
    # A live attempt ends inside its lease: the tasks' hard limits, and a send started at the
    # batch's last moment plus its stamp.
    from notifications import tasks, webhooks

    assert tasks.EMAIL_HARD_LIMIT < defaults.REMINDER_LEASE_SECONDS
    assert webhooks.HARD_TIME_LIMIT < defaults.WEBHOOK_LEASE_SECONDS
    assert defaults.REMINDER_LEASE_SECONDS >= 3 * defaults.EMAIL_TIMEOUT


# --- A database error in a task: retried --------------------------------------------------


@pytest.mark.django_db
@pytest.mark.skipif(
    connection.vendor != "sqlite",
    reason="a renamed table is an OperationalError on SQLite only (PostgreSQL: ProgrammingError); "
    "the PostgreSQL outage itself is tested for real in tests/integration/"
    "test_delivery_faults.py::test_postgresql_restarted_during_delivery",
)
def test_a_database_error_in_the_delivery_task_retries_it(world, mailoutbox, caplog):
    """A real error of the database (its table is gone for a while: SQLite raises
    OperationalError, the class a PostgreSQL outage raises) makes the task retry with backoff,
    a bounded number of times (run eagerly here, the retries follow each other at once; a
    worker publishes each with its countdown)."""
    import re

    from notifications.tasks import OUTAGE_RETRY

    with time_machine.travel(MOMENT, tick=False):
        services.reminders_sweep(enqueue=False)
    notification = Notification.objects.first()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE notifications_notification RENAME TO notifications_gone")
    try:
        with time_machine.travel(MOMENT, tick=False), caplog.at_level("INFO", "celery"):
            result = deliver_notification_task.apply(args=[notification.pk])
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE notifications_gone RENAME TO notifications_notification")
    countdowns = [
        int(n) for n in re.findall(r"retry: Retry in (\d+)s: OperationalError", caplog.text)
    ]
    assert len(countdowns) == OUTAGE_RETRY["max_retries"]
    assert max(countdowns) <= OUTAGE_RETRY["retry_backoff_max"]
    assert result.state == "FAILURE"  # bounded; the requeue of lost rows takes over
    assert mailoutbox == []
    notification.refresh_from_db()
    assert notification.attempts == 0 and notification.email_sent_at is None
