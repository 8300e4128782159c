"""The outbox on PostgreSQL and a real SMTP server: concurrent batch claims split the rows
(never one row to two claimers), a batch goes over one SMTP connection (counted at the
aiosmtpd server), and the requeue leaves rows alone while their queue still holds messages."""

import datetime as dt
import threading
import uuid

import pytest
import time_machine
from django.db import connection, transaction

from notifications import outbox, services
from notifications.models import Notification
from tests.factories import TaskFactory, UserFactory
from tests.notifications import reminders_world as w
from tests.notifications.reminders_world import CREATED, DUE, NEW_YORK, local

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MOMENT = local(DUE - dt.timedelta(days=1), NEW_YORK)
OPEN = services.NOTIFICATION_OPEN_SQL
LEASE = dt.timedelta(seconds=300)


def make_rows(count: int) -> list[int]:
    world = w.build()
    users = [UserFactory() for _ in range(count // 10)]
    now = dt.datetime.now(dt.UTC)
    rows = Notification.objects.bulk_create(
        Notification(
            recipient=users[n % len(users)],
            task=world.task,
            kind="due_soon",
            due_date=world.task.due_date,
            step=n,
            dedupe_key=f"outbox-test:{n}",
            created_at=now,
            due_at=now,
            next_attempt_at=now,
        )
        for n in range(count)
    )
    return [row.pk for row in rows]


def test_two_claimers_holding_their_transactions_never_get_the_same_row():
    ids = make_rows(100)
    first_claimed, release = threading.Event(), threading.Event()
    got = {}

    def first():
        try:
            with transaction.atomic():  # the claim's locks are held until this commits
                got["first"] = outbox.claim(
                    Notification, ids, open_sql=OPEN, now=dt.datetime.now(dt.UTC), lease=LEASE,
                    limit=60,
                )  # fmt: skip
                first_claimed.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert first_claimed.wait(timeout=30)
        # Concurrently, while the first claim is not committed yet: its rows are skipped.
        got["second"] = outbox.claim(
            Notification, ids, open_sql=OPEN, now=dt.datetime.now(dt.UTC), lease=LEASE
        )
    finally:
        release.set()
        thread.join(timeout=30)
    assert len(got["first"]) == 60 and len(got["second"]) == 40
    assert not set(got["first"]) & set(got["second"])
    assert set(got["first"]) | set(got["second"]) == set(ids)
    assert set(Notification.objects.values_list("attempts", flat=True)) == {1}


def test_many_concurrent_claimers_split_the_rows_between_them():
    ids = make_rows(400)
    claims: list[dict] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def claimer():
        try:
            start.wait(timeout=30)
            while True:
                got = outbox.claim(
                    Notification, ids, open_sql=OPEN, now=dt.datetime.now(dt.UTC), lease=LEASE,
                    limit=25,
                )  # fmt: skip
                if not got:
                    return
                with lock:
                    claims.append(got)
        finally:
            connection.close()

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    claimed = [pk for got in claims for pk in got]
    assert len(claimed) == len(set(claimed)) == len(ids)  # each row exactly once
    assert set(Notification.objects.values_list("attempts", flat=True)) == {1}


def test_a_batch_is_mailed_over_one_smtp_connection(smtp_server, settings):
    inbox, port = smtp_server
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.SITE_URL = "https://tracker.example.org"
    world = w.build()
    for _ in range(14):
        TaskFactory(
            plan=world.plan,
            lead_organization=world.lead,
            due_date=DUE,
            assignee=world.seoul,
            manager=world.new_york,
            at=CREATED,
        )
    with time_machine.travel(MOMENT, tick=False):
        ids = services.reminders_sweep(enqueue=False).notification_ids
    assert len(ids) == 30
    with time_machine.travel(MOMENT + dt.timedelta(minutes=1), tick=False):
        results = services.notifications_deliver_batch(notification_ids=ids)
    assert [r.sent for r in results] == [True] * 30
    assert len(inbox.message_ids()) == 30
    assert len(set(inbox.peers)) == 1  # one connection for the whole batch


def test_the_requeue_leaves_rows_alone_while_their_queue_still_holds_messages(settings):
    from tracker.celery import app

    queue = f"test-backlog-{uuid.uuid4().hex[:10]}"
    settings.NOTIFICATION_QUEUE = queue
    ids = make_rows(10)
    stale = dt.datetime.now(dt.UTC) - services.requeue_after() - dt.timedelta(minutes=1)
    Notification.objects.update(next_attempt_at=stale)
    now = dt.datetime.now(dt.UTC)
    # A message still waiting in the queue (a backlog): those rows are on their way.
    app.send_task("notifications.deliver_notifications", args=[ids[:5]], queue=queue)
    try:
        assert outbox.queue_backlog(queue) == 1
        assert services._notifications_lost(now) == []
        assert set(Notification.objects.values_list("next_attempt_at", flat=True)) == {stale}
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)
    # The queue drained and the rows are still due: lost; made due now, to be enqueued.
    assert outbox.queue_backlog(queue) == 0
    assert sorted(services._notifications_lost(now)) == sorted(ids)
