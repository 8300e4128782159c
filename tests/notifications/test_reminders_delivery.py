"""Email delivery of notifications: once, in the recipient's language, with the task link and
a stable Message-ID; transient SMTP errors retried with backoff, permanent ones recorded; the
row leased while the email is sent (no transaction open), so a dead worker's reminder is sent
again after the lease and a stale attempt cannot stamp over a newer one; the recipient's
email preference honoured."""

import datetime as dt
import hashlib
import smtplib

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications import emails, services
from notifications.models import Notification, NotificationPreference
from notifications.tasks import deliver_notification_task, deliver_notifications_task
from tests.notifications import reminders_world as w
from tests.notifications.reminders_world import DUE, NEW_YORK, local

pytestmark = pytest.mark.django_db

MOMENT = local(DUE - dt.timedelta(days=1), NEW_YORK)

# How long a claim holds its rows (REMINDER_LEASE_SECONDS, 60 s by default).
LEASE = dt.timedelta(seconds=django_settings.REMINDER_LEASE_SECONDS)


@pytest.fixture
def world(settings):
    settings.SITE_URL = "https://tracker.example.org"
    return w.build()


@pytest.fixture
def enqueued(monkeypatch):
    calls = []

    def apply_async(args=None, kwargs=None, countdown=None, queue=None, **options):
        calls.extend((pk, countdown, queue) for pk in args[0])  # one message per batch

    monkeypatch.setattr(deliver_notifications_task, "apply_async", apply_async)
    return calls


def swept(world) -> dict:
    with time_machine.travel(MOMENT, tick=False):
        services.reminders_sweep(enqueue=False)
    return {n.recipient_id: n for n in Notification.objects.all()}


def deliver(notification, **kwargs):
    with time_machine.travel(MOMENT + dt.timedelta(minutes=1), tick=False):
        return services.notification_deliver(notification_id=notification.pk, **kwargs)


def test_the_sweep_enqueues_the_new_rows_after_commit(
    world, enqueued, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFICATION_QUEUE = "reminders-test"
    with (
        time_machine.travel(MOMENT, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = services.reminders_sweep()
    assert result.created == 2
    assert sorted(call[0] for call in enqueued) == sorted(result.notification_ids)
    assert {call[2] for call in enqueued} == {"reminders-test"}
    enqueued.clear()
    with (
        time_machine.travel(MOMENT, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert services.reminders_sweep().created == 0
    assert enqueued == []


def test_delivering_twice_sends_one_email(world, mailoutbox):
    notification = swept(world)[world.new_york.pk]
    assert deliver(notification).sent
    assert deliver(notification) is None
    deliver_notification_task.run(notification.pk)  # the task: returns quietly
    deliver_notification_task.run(10**9)  # gone
    assert len(mailoutbox) == 1
    notification.refresh_from_db()
    assert notification.email_sent_at is not None and notification.attempts == 1


def test_english_email_with_link_and_stable_message_id(world, mailoutbox):
    notification = swept(world)[world.new_york.pk]
    deliver(notification)
    (message,) = mailoutbox
    digest = hashlib.sha256(notification.dedupe_key.encode()).hexdigest()[:32]
    assert message.extra_headers["Message-ID"] == f"<{digest}@tracker.example.org>"
    assert message.extra_headers["Message-ID"] == emails.message_id(notification.dedupe_key)
    assert message.to == [world.new_york.email]
    assert message.subject == f"[{world.task.ref}] due in 1 days (2026-03-10)"
    task_url = f"https://tracker.example.org/admin/plans/task/{world.task.pk}/change/"
    plan_url = f"https://tracker.example.org/admin/plans/plan/{world.plan.pk}/change/"
    assert "is due in 1 days, on 2026-03-10" in message.body
    assert task_url in message.body and plan_url in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and f'href="{task_url}"' in html
    assert "America/New_York" in message.body


def test_korean_email_for_a_korean_user(world, mailoutbox):
    notification = swept(world)[world.seoul.pk]
    deliver(notification)
    (message,) = mailoutbox
    assert message.subject == f"[{world.task.ref}] 마감 1일 전 (2026-03-10)"
    assert "마감일(2026-03-10)이 1일 남았습니다" in message.body
    assert "과제 보기" in message.body
    html, _ = message.alternatives[0]
    assert '<html lang="ko">' in html and "과제 보기" in html
    assert "Dear" not in message.body


def test_a_transient_smtp_error_schedules_a_retry(
    world, monkeypatch, enqueued, mailoutbox, django_capture_on_commit_callbacks
):
    notification = swept(world)[world.new_york.pk]

    def fail(self, messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr(EmailBackend, "send_messages", fail)
    with django_capture_on_commit_callbacks(execute=True):
        result = deliver(notification)
    assert result.retry_in == services.REMINDER_RETRY_BASE_SECONDS
    assert enqueued == [(notification.pk, 60, "email")]
    notification.refresh_from_db()
    assert notification.attempts == 1 and notification.email_failed_at is None
    assert "SMTPServerDisconnected" in notification.failure_reason
    # Not due again before the backoff has passed; then it goes out once.
    assert deliver(notification) is None
    monkeypatch.undo()
    with time_machine.travel(MOMENT + dt.timedelta(minutes=2), tick=False):
        assert services.notification_deliver(notification_id=notification.pk).sent
    assert len(mail.outbox) == 1


def test_backoff_is_capped_below_the_visibility_timeout():
    delays = [services.reminder_retry_delay(n) for n in range(1, 12)]
    assert delays[:3] == [60, 120, 240]
    assert max(delays) < 3600


def test_a_permanent_refusal_is_recorded(world, monkeypatch, enqueued):
    notification = swept(world)[world.new_york.pk]

    def refuse(self, messages):
        raise smtplib.SMTPRecipientsRefused({world.new_york.email: (550, b"No such user")})

    monkeypatch.setattr(EmailBackend, "send_messages", refuse)
    result = deliver(notification)
    assert not result.sent and result.retry_in is None
    notification.refresh_from_db()
    assert notification.email_failed_at is not None
    assert "550" in notification.failure_reason and "Refused" in notification.failure_reason
    assert enqueued == []


def test_giving_up_after_the_last_attempt(world, monkeypatch, settings, enqueued):
    settings.REMINDER_MAX_ATTEMPTS = 1
    notification = swept(world)[world.new_york.pk]
    monkeypatch.setattr(
        EmailBackend, "send_messages", lambda self, m: (_ for _ in ()).throw(OSError("refused"))
    )
    deliver(notification)
    notification.refresh_from_db()
    assert notification.email_failed_at is not None
    assert notification.failure_reason.startswith("Gave up after 1 attempts")


def test_users_without_email_or_inactive_are_in_app_only(world, mailoutbox):
    world.new_york.email = ""
    world.new_york.save()
    world.seoul.is_active = False
    world.seoul.save()
    notifications = swept(world)
    for notification in notifications.values():
        assert not deliver(notification).sent
    assert mailoutbox == []
    reasons = dict(Notification.objects.values_list("recipient_id", "failure_reason"))
    assert reasons[world.new_york.pk] == services.NO_EMAIL_ADDRESS
    assert reasons[world.seoul.pk] == services.USER_INACTIVE


def test_email_turned_off_for_the_kind_is_in_app_only(world, mailoutbox):
    NotificationPreference.objects.create(user=world.new_york, email_due_soon=False)
    NotificationPreference.objects.create(user=world.seoul, email_overdue=False)
    notifications = swept(world)
    result = deliver(notifications[world.new_york.pk])
    assert not result.sent and result.reason == services.EMAIL_TURNED_OFF
    assert deliver(notifications[world.seoul.pk]).sent  # off for another kind only
    assert [message.to for message in mailoutbox] == [[world.seoul.email]]
    new_york = Notification.objects.get(pk=notifications[world.new_york.pk].pk)
    assert new_york.failure_reason == services.EMAIL_TURNED_OFF
    assert new_york.email_failed_at is not None and new_york.attempts == 0
    assert deliver(new_york) is None  # finished: not tried again


def test_the_claim_takes_the_same_queries_with_or_without_a_preference(world, mailoutbox):
    NotificationPreference.objects.create(user=world.seoul)  # all on; new_york has no row
    notifications = swept(world)
    counts = []
    for user in (world.new_york, world.seoul):
        with CaptureQueriesContext(connection) as queries:
            assert deliver(notifications[user.pk]).sent
        counts.append(len(queries))
    # Claim: savepoint, SELECT ... FOR UPDATE (with the preference), UPDATE (lease), release;
    # stamp: UPDATE.
    assert counts == [5, 5]
    assert len(mailoutbox) == 2


@pytest.mark.django_db(transaction=True)
def test_the_email_is_sent_with_no_transaction_open_and_the_row_leased(
    world, monkeypatch, settings
):
    settings.REMINDER_LEASE_SECONDS = 120
    notification = swept(world)[world.new_york.pk]
    seen = []
    send = EmailBackend.send_messages

    def spy(self, messages):
        row = Notification.objects.get(pk=notification.pk)  # what other workers see
        seen.append((connection.in_atomic_block, row.attempts, row.next_attempt_at))
        return send(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", spy)
    assert deliver(notification).sent
    claimed_at = MOMENT + dt.timedelta(minutes=1)
    assert seen == [(False, 1, claimed_at + dt.timedelta(seconds=120))]
    notification.refresh_from_db()
    assert notification.email_sent_at == claimed_at and notification.next_attempt_at is None


def test_a_worker_dying_mid_send_leaves_a_lease_then_the_sweep_sends_it_once(
    world, mailoutbox, enqueued, django_capture_on_commit_callbacks
):
    notifications = swept(world)
    assert deliver(notifications[world.seoul.pk]).sent  # out of the way
    mailoutbox.clear()
    notification = notifications[world.new_york.pk]
    claimed_at = MOMENT + dt.timedelta(minutes=1)
    with time_machine.travel(claimed_at, tick=False):
        dead = services._notification_claim(notification.pk)  # ...and the worker died
    lease_end = claimed_at + LEASE
    notification.refresh_from_db()
    assert notification.attempts == 1 and notification.next_attempt_at == lease_end

    # While the lease holds, nobody else sends it; the sweep leaves it alone.
    with time_machine.travel(lease_end - dt.timedelta(seconds=10), tick=False):
        assert services.notification_deliver(notification_id=notification.pk) is None
    with (
        time_machine.travel(lease_end + services.requeue_after() / 2, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert services.reminders_sweep().requeued == 0
    assert mailoutbox == [] and enqueued == []

    # Once the lease has run out for DELIVERY_REQUEUE_AFTER_SECONDS, the sweep enqueues it again.
    later = lease_end + services.requeue_after()
    with (
        time_machine.travel(later, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert services.reminders_sweep().requeued == 1
        assert services.notification_deliver(notification_id=notification.pk).sent
        assert services.notification_deliver(notification_id=notification.pk) is None
    assert enqueued == [(notification.pk, None, "email")]
    assert len(mailoutbox) == 1
    notification.refresh_from_db()
    assert notification.attempts == 2 and notification.email_sent_at == later

    # The first attempt was only slow, not dead: its late stamp changes nothing.
    with time_machine.travel(later + dt.timedelta(minutes=1), tick=False):
        services._notification_stamp(dead, OSError("too late"))
    again = Notification.objects.get(pk=notification.pk)
    assert (again.email_sent_at, again.email_failed_at, again.failure_reason) == (later, None, "")


def test_a_stale_attempt_cannot_stamp_over_a_newer_claim(world, mailoutbox, enqueued):
    notification = swept(world)[world.new_york.pk]
    first_at = MOMENT + dt.timedelta(minutes=1)
    with time_machine.travel(first_at, tick=False):
        first = services._notification_claim(notification.pk)
    second_at = first_at + LEASE
    with time_machine.travel(second_at, tick=False):
        second = services._notification_claim(notification.pk)
    assert (first.attempts, second.attempts) == (1, 2)

    # The first attempt reports after the second claimed the row: neither its success nor
    # its failure is recorded, and the second attempt's lease stays.
    with time_machine.travel(second_at + dt.timedelta(seconds=1), tick=False):
        services._notification_stamp(first, None)
        services._notification_stamp(first, OSError("refused"))
        services._notification_stamp(
            first, smtplib.SMTPRecipientsRefused({world.new_york.email: (550, b"No")})
        )
    notification.refresh_from_db()
    assert notification.email_sent_at is None and notification.email_failed_at is None
    assert notification.next_attempt_at == second_at + LEASE
    assert enqueued == []
    with time_machine.travel(second_at + dt.timedelta(seconds=2), tick=False):
        assert services._notification_stamp(second, None).sent
    notification.refresh_from_db()
    assert notification.email_sent_at == second_at + dt.timedelta(seconds=2)


def test_an_attempt_that_never_reported_back_counts_towards_giving_up(world, settings, mailoutbox):
    settings.REMINDER_MAX_ATTEMPTS = 2
    notification = swept(world)[world.new_york.pk]
    Notification.objects.filter(pk=notification.pk).update(
        attempts=2, failure_reason="", next_attempt_at=MOMENT
    )
    result = deliver(notification)
    assert not result.sent and result.retry_in is None
    notification.refresh_from_db()
    assert notification.email_failed_at is not None and notification.attempts == 2
    assert notification.failure_reason == services.GAVE_UP.format(
        attempts=2, error=services.LEASE_EXPIRED
    )
    assert mailoutbox == []
