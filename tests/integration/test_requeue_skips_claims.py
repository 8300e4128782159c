"""The sweeps' requeue of lost emails (reminders and digests) on PostgreSQL, with a second
connection in the middle of a claim: the row it holds is skipped, so its fresh lease is not
reset to "due now" (which would let a second worker send it while the first still is)."""

import datetime as dt
import threading

import pytest
from django.db import connection, transaction

from notifications import services
from notifications.models import Digest, Notification
from tests.factories import UserFactory
from tests.notifications import reminders_world as w

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

NOW = dt.datetime(2026, 3, 9, 12, tzinfo=dt.UTC)
STALE = NOW - services.requeue_after() - dt.timedelta(minutes=1)


def hold_lock(model, pk, locked: threading.Event, release: threading.Event):
    """Another worker's claim: the row locked in an open transaction until `release`."""
    try:
        with transaction.atomic():
            model.objects.select_for_update().get(pk=pk)
            locked.set()
            release.wait(timeout=30)
    finally:
        connection.close()


def requeue_while_held(model, held_pk, free_pk, requeue):
    locked, release = threading.Event(), threading.Event()
    worker = threading.Thread(target=hold_lock, args=(model, held_pk, locked, release))
    worker.start()
    try:
        assert locked.wait(timeout=30)
        ids = requeue(NOW)
    finally:
        release.set()
        worker.join(timeout=30)
    return ids


def test_the_reminder_requeue_skips_a_row_being_claimed():
    world = w.build()
    rows = [
        Notification.objects.create(
            recipient=user,
            task=world.task,
            kind="overdue",
            due_date=world.task.due_date,
            step=1,
            dedupe_key=f"{user.pk}:requeue",
            created_at=STALE,
            due_at=STALE,
            next_attempt_at=STALE,
        )
        for user in (world.seoul, world.new_york)
    ]
    held, free = rows
    ids = requeue_while_held(Notification, held.pk, free.pk, services._notifications_lost)
    assert ids == [free.pk]
    held.refresh_from_db()
    free.refresh_from_db()
    assert held.next_attempt_at == STALE
    assert free.next_attempt_at == NOW


def test_the_digest_requeue_skips_a_row_being_claimed():
    digests = [
        Digest.objects.create(
            user=UserFactory(),
            day=NOW.date(),
            created_at=STALE,
            due_at=STALE,
            next_attempt_at=STALE,
        )  # fmt: skip
        for _ in range(2)
    ]
    held, free = digests
    ids = requeue_while_held(Digest, held.pk, free.pk, services._digests_lost)
    assert ids == [free.pk]
    held.refresh_from_db()
    free.refresh_from_db()
    assert held.next_attempt_at == STALE
    assert free.next_attempt_at == NOW
