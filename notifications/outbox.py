"""The outbox shared by every delivery (reminder emails, digests, webhooks): rows in the
database are the source of truth; a broker message only says "look at these ids".

    enqueue: one message per batch of ids, after commit (`enqueue_batches_on_commit`)
    claim:   one `UPDATE ... SET attempts = attempts + 1, next_attempt_at = <lease end>
             WHERE id IN (SELECT id ... FOR UPDATE SKIP LOCKED LIMIT n) RETURNING id,
             attempts` (`claim`): two claimers never get the same row, and a row is leased
             even when the claimer dies right after (or never learns whether its COMMIT
             went through): it is claimable again when the lease ends
    send:    outside any transaction (the caller; a batch over one connection)
    stamp:   fenced on the attempt number (`held`): a claimer whose lease ran out and whose
             row a newer claim took over records nothing
    retry:   `retry_delay` (exponential backoff, capped), `next_attempt_at` in the row
    requeue: `requeue_lost` makes rows that were due for too long (5 s by default) due
             now, skipping rows locked by a claim, and not while the delivery queue still
             holds messages (rows backed up behind a long queue are not lost); beat runs it
             on the housekeeping queue every DELIVERY_REQUEUE_EVERY_SECONDS.

The row model needs `attempts` and `next_attempt_at` columns; what "open" means (unsent,
pending) is passed in as SQL.
"""

import contextlib
import datetime as dt
import logging
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

# Tolerated clock difference between the scheduling and the executing machine.
CLOCK_SLACK = dt.timedelta(seconds=5)


def batch_size() -> int:
    return settings.DELIVERY_BATCH_SIZE


def chunks(ids: list[int], size: int | None = None):
    size = size or batch_size()
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _adapt(moment: dt.datetime):
    return connection.ops.adapt_datetimefield_value(moment)


def claim(
    model,
    ids: list[int],
    *,
    open_sql: str,
    open_params: tuple = (),
    now: dt.datetime,
    lease: dt.timedelta,
    limit: int | None = None,
) -> dict[int, int]:
    """Lease the open, due rows of `ids` that no other claim holds (at most `limit`), in one
    statement; {id: attempt number after this claim}. On PostgreSQL the inner SELECT locks
    with SKIP LOCKED, so concurrent claimers split the rows between them; SQLite serializes
    writers (IMMEDIATE transactions), so the same statement is safe there without it."""
    if not ids:
        return {}
    table = connection.ops.quote_name(model._meta.db_table)
    skip_locked = (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )
    marks = ", ".join(["%s"] * len(ids))
    sql = (
        f"UPDATE {table} SET attempts = attempts + 1, next_attempt_at = %s "
        f"WHERE id IN (SELECT id FROM {table} WHERE id IN ({marks}) AND ({open_sql}) "
        "AND (next_attempt_at IS NULL OR next_attempt_at <= %s) "
        f"ORDER BY id LIMIT %s{skip_locked}) RETURNING id, attempts"
    )
    params = [
        _adapt(now + lease),
        *[int(pk) for pk in ids],
        *open_params,
        _adapt(now + CLOCK_SLACK),
        int(limit or len(ids)),
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


def held(model, pk: int, attempts: int, **open_filter):
    """The row while the attempt numbered `attempts` still holds it (the fence of a stamp)."""
    return model.objects.filter(pk=pk, attempts=attempts, **open_filter)


def release(model, claimed: dict[int, int], *, now: dt.datetime, **open_filter) -> list[int]:
    """Give back claimed rows this attempt did not get to (the batch ran out of lease time):
    their attempt is not counted and they are due now. Fenced like a stamp."""
    released = []
    for pk, attempts in claimed.items():
        if held(model, pk, attempts, **open_filter).update(
            attempts=attempts - 1, next_attempt_at=now
        ):
            released.append(pk)
    return released


def retry_delay(attempts: int, *, base: int, cap: int) -> int:
    """Backoff after the n-th failed attempt: base * 2^(n-1), capped."""
    return min(base * 2 ** max(attempts - 1, 0), cap)


def send_deadline(claimed_at: dt.datetime, lease: dt.timedelta, send_timeout: float):
    """Until when a batch may start another send: a send (its timeout) plus its stamp must
    end inside the lease; at least half the lease is usable."""
    reserve = CLOCK_SLACK + dt.timedelta(seconds=send_timeout + 10)
    return claimed_at + max(lease / 2, lease - reserve)


def time_limits(lease_seconds: int) -> tuple[int, int]:
    """Soft and hard time limits of a delivery task whose rows are leased for
    `lease_seconds`: both end inside the lease, so no second claimer starts while the first
    still runs."""
    soft = max(1, int(lease_seconds * 0.8))
    hard = max(soft + 1, int(lease_seconds * 0.9))
    return soft, hard


# --- Enqueueing ---------------------------------------------------------------------------


def enqueue_batches(
    task, ids: list[int], *, queue: str, countdown: int | None = None, size: int | None = None
) -> int:
    """One message per batch of ids (at most `size`, default DELIVERY_BATCH_SIZE); how many
    messages were sent."""
    sent = 0
    for batch in chunks(list(ids), size):
        task.apply_async(args=[batch], countdown=countdown, queue=queue)
        sent += 1
    return sent


def enqueue_batches_on_commit(
    task, ids: list[int], *, queue: str, countdown: int | None = None, size: int | None = None
) -> None:
    """After commit, one message per batch of ids. A broker error is logged, not raised:
    the data is committed, a broker outage must not turn the caller's success into an error
    (the rows stay due and the housekeeping requeue sends them). A task's soft time limit
    that strikes meanwhile is not swallowed (it was, with Django's robust hooks: the task
    then reported success): it goes on up and stops the task."""
    from celery.exceptions import SoftTimeLimitExceeded

    ids = list(ids)

    def enqueue_batches_after_commit():
        try:
            enqueue_batches(task, ids, queue=queue, countdown=countdown, size=size)
        except SoftTimeLimitExceeded:
            raise
        except Exception:  # noqa: BLE001 - the requeue catches up whatever was not sent
            logger.exception(
                "Could not enqueue %s ids on %s; the requeue will send them.", len(ids), queue
            )

    transaction.on_commit(enqueue_batches_after_commit)


def queue_backlog(queue: str) -> int:
    """How many messages wait in `queue` on the broker (0 when the broker cannot say)."""
    from tracker.celery import app

    if settings.CELERY_TASK_ALWAYS_EAGER:
        return 0
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            channel = conn.default_channel
            with contextlib.suppress(Exception):
                return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except Exception as exc:  # noqa: BLE001 - a broker that cannot answer hides no backlog
        logger.info("Could not read the length of queue %s: %s", queue, exc)
    return 0


def requeue_lost(
    unsent, *, now: dt.datetime, after: dt.timedelta, limit: int, queue: str | None = None
) -> list[int]:
    """Rows of `unsent` due for longer than `after` (the broker was down at commit, a
    message was dropped, or a worker died and its lease ran out that long ago), made due now,
    to be enqueued. Rows locked by a claim right now are skipped (resetting a fresh lease
    would let a second worker send the row while the first still is). While `queue` still
    holds messages nothing is requeued: rows backed up behind it are on their way, and the
    next run after the queue drained catches up what was really lost."""
    if queue and queue_backlog(queue):
        return []
    with transaction.atomic():
        ids = list(
            unsent.select_for_update(skip_locked=True)
            .filter(next_attempt_at__lte=now - after)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            unsent.model.objects.filter(pk__in=ids).update(next_attempt_at=now)
    return ids


LEASE_EXPIRED = "The attempt did not finish (worker stopped?)."


# --- Outages: one helper for "retry this database write until a deadline" -------------------

# Errors of a database that is down, restarting or unreachable (not of a bad query): a task
# meeting one is retried later, and a stamp after a completed send is retried on the spot.
DB_OUTAGE_ERRORS = (OperationalError, InterfaceError)

# Pauses between tries of a write after a completed send: from the first, doubling, capped.
WRITE_RETRY_FIRST_PAUSE = 0.25

WRITE_RETRY_MAX_PAUSE = 2.0

# The longest a stamp is retried (the lease may allow more): below the delivery tasks' soft
# time limit, so the loop ends by itself and not by a killed task.
STAMP_RETRY_FOR = dt.timedelta(seconds=150)


def requeue_after() -> dt.timedelta:
    """How long a row is due before the requeue enqueues it again (its message was lost)."""
    return dt.timedelta(seconds=settings.DELIVERY_REQUEUE_AFTER_SECONDS)


def retry_db_write(write, *, until: dt.datetime, what: str):
    """`write()` (which opens its own transaction), tried again after a database outage error
    until it succeeds or `until` passes (then the error is raised). Each new try runs on a
    fresh connection. Used to record what already happened outside (an email the SMTP
    server accepted, a webhook answered 2xx): recording it late beats doing it twice."""
    from django.db import connection

    pause = WRITE_RETRY_FIRST_PAUSE
    while True:
        try:
            return write()
        except DB_OUTAGE_ERRORS as exc:
            # Inside a caller's transaction a new connection cannot help: the caller decides.
            if connection.in_atomic_block or _now() + dt.timedelta(seconds=pause) >= until:
                raise
            logger.warning("%s failed (%s); trying again in %.2f s.", what, exc, pause)
        with contextlib.suppress(*DB_OUTAGE_ERRORS):
            connection.close()  # the next try connects afresh
        time.sleep(pause)
        pause = min(pause * 2, WRITE_RETRY_MAX_PAUSE)


def _stamp_deadline(lease_end: dt.datetime, claimed_at: dt.datetime) -> dt.datetime:
    """Until when an attempt may retry its stamp: while its lease holds the row (after that
    another attempt may take it over), at most STAMP_RETRY_FOR after the claim."""
    return min(lease_end - CLOCK_SLACK, claimed_at + STAMP_RETRY_FOR)


def _now() -> dt.datetime:
    return timezone.now()
