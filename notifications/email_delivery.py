"""Email delivery of reminders (notifications) through the outbox: a batch claimed in one
statement, mailed over one SMTP connection, each row stamped (fenced) right after its send;
retries with backoff; give-back of what a batch had no lease time left for. Users without an
email address, inactive ones and those who turned email off keep the in-app notification."""

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from . import outbox
from .models import (
    Notification,
)
from .outbox import (
    CLOCK_SLACK,
    DB_OUTAGE_ERRORS,
    LEASE_EXPIRED,
    _now,
    _stamp_deadline,
    requeue_after,
    retry_db_write,
)

logger = logging.getLogger(__name__)


# The sweep (notifications.reminders) inserts the due reminders and enqueues their ids after
# commit, one message per DELIVERY_BATCH_SIZE ids. A worker mails a batch:
#
#     claim (one UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n)
#     RETURNING: unsent and due; attempts += 1 and a lease of REMINDER_LEASE_SECONDS)
#     -> for each row, no transaction open: SMTP over the batch's one connection
#        -> stamp (sent; or the failure with a retry, or given up), only if `attempts` is
#           still the claim's (the fencing token: a holder whose lease ran out and was
#           claimed again stamps nothing)
#     -> what the lease leaves no time for is given back (due now) and enqueued again
#
# A worker that dies mid-batch leaves its unsent rows leased; once the lease runs out they
# are due again and the broker's redelivery (acks_late) or the requeue sends them, once. One
# window stays open: the SMTP server accepted a message and the worker died before its stamp
# committed; the next attempt sends it again, with the same Message-ID.

REMINDER_RETRY_BASE_SECONDS = 60

# Below the broker's 1-hour visibility timeout: a countdown message is never redelivered.
REMINDER_RETRY_MAX_SECONDS = 30 * 60

# Unsent notifications due for longer than DELIVERY_REQUEUE_AFTER_SECONDS (a lease that ran
# out counts from its end) lost their message: `deliveries_requeue` enqueues them again.
REMINDER_REQUEUE_BATCH = 1000


NO_EMAIL_ADDRESS = "Not emailed: the user has no email address (in-app only)."

USER_INACTIVE = "Not emailed: the user account is inactive (in-app only)."

EMAIL_TURNED_OFF = "Not emailed: the recipient turned off email for this kind (in-app only)."

GAVE_UP = "Gave up after {attempts} attempts: {error}"

REFUSED = "Refused by the mail server: {error}"

NOT_BUILT = "Not emailed: the message could not be built ({error})."


class EmailNotBuilt(Exception):
    """Building the email failed (a header with a newline, a broken template, a bad address):
    no retry will change that, so it is recorded as permanent."""


def _requeue_lost(unsent, now: dt.datetime) -> list[int]:
    """Rows of `unsent` (reminders or digests not yet emailed) due for longer than
    DELIVERY_REQUEUE_AFTER_SECONDS: the broker was down at commit, a message was dropped, or a
    worker died and its lease ran out that long ago. They are made due now, to be enqueued
    (not while NOTIFICATION_QUEUE still holds messages: see outbox.requeue_lost)."""
    return outbox.requeue_lost(
        unsent,
        now=now,
        after=requeue_after(),
        limit=REMINDER_REQUEUE_BATCH,
        queue=settings.NOTIFICATION_QUEUE,
    )


def _notifications_lost(now: dt.datetime) -> list[int]:
    return _requeue_lost(
        Notification.objects.filter(email_sent_at__isnull=True, email_failed_at__isnull=True), now
    )


def _enqueue_notifications_on_commit(ids: list[int], countdown: int | None = None) -> None:
    """After commit, one message per batch of DELIVERY_BATCH_SIZE ids on NOTIFICATION_QUEUE.
    Robust: a broker outage is caught up by the requeue (the rows stay due)."""
    from .tasks import deliver_notifications_task

    outbox.enqueue_batches_on_commit(
        deliver_notifications_task, ids, queue=settings.NOTIFICATION_QUEUE, countdown=countdown
    )


def reminder_retry_delay(attempts: int) -> int:
    return outbox.retry_delay(
        attempts, base=REMINDER_RETRY_BASE_SECONDS, cap=REMINDER_RETRY_MAX_SECONDS
    )


def _permanent(exc: Exception) -> bool:
    """A refusal no retry will change: every recipient refused with a 5xx code."""
    import smtplib

    if isinstance(exc, EmailNotBuilt):
        return True
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _message in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    return False


def _error_text(exc: Exception) -> str:
    if isinstance(exc, EmailNotBuilt) and exc.__cause__ is not None:
        exc = exc.__cause__
    return f"{type(exc).__name__}: {exc}"[:400]


def _not_built(exc: Exception, what: str) -> EmailNotBuilt:
    logger.exception(what)
    wrapped = EmailNotBuilt(str(exc))
    wrapped.__cause__ = exc
    return wrapped


def _send_email(build) -> Exception | None:
    """Build the message with `build()` and send it; the error of a failed attempt: an
    EmailNotBuilt (permanent) when building or rendering it failed, else the SMTP or
    connection error (transient unless the server refused for good). A database outage and
    a task's time limit are not the message's fault: they propagate."""
    message = _build_email(build)
    if isinstance(message, Exception):
        return message
    return _send_built(message)


def _build_email(build):
    """The message `build()` makes, every header rendered (a newline in the subject fails
    here), or the EmailNotBuilt error."""
    from celery.exceptions import SoftTimeLimitExceeded

    try:
        message = build()
        message.message()
    except (*DB_OUTAGE_ERRORS, SoftTimeLimitExceeded):
        raise
    except Exception as exc:  # noqa: BLE001 - whatever breaks the build is permanent
        return _not_built(exc, "Could not build an email.")
    return message


def _send_built(message) -> Exception | None:
    """Send a built message; the error of a failed attempt."""
    import smtplib

    from celery.exceptions import SoftTimeLimitExceeded

    try:
        message.send()
    except (smtplib.SMTPException, OSError) as exc:
        return exc
    except (*DB_OUTAGE_ERRORS, SoftTimeLimitExceeded):
        raise
    except Exception as exc:  # noqa: BLE001 - the backend refused what it was given
        return _not_built(exc, "The mail backend could not send an email.")
    return None


@dataclass(frozen=True)
class DeliveryResult:
    notification_id: int
    sent: bool
    retry_in: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class _Lease:
    """A notification claimed for one attempt (recipient, its preference, task and plan
    loaded). `attempts`, the row's count after the claim, is the fencing token: the outcome
    is stamped only while the row still has it."""

    notification: Notification
    attempts: int
    claimed_at: dt.datetime


def notification_deliver(
    *, notification_id: int, connection=None, schedule_retry: bool = True
) -> DeliveryResult | None:
    """Email one notification if it is still unsent, due and nobody else holds it (a batch
    of one: see `notifications_deliver_batch`). None when there is nothing to do (gone,
    already sent or failed, not yet due, or leased to another attempt)."""
    results = notifications_deliver_batch(
        notification_ids=[notification_id], connection=connection, schedule_retry=schedule_retry
    )
    return results[0] if results else None


def notifications_deliver_batch(
    *, notification_ids: list[int], connection=None, schedule_retry: bool = True
) -> list[DeliveryResult]:
    """Email a batch of notifications over one SMTP connection; the results of the rows this
    call claimed (in id order).

    The rows still unsent, due and held by nobody are claimed and leased in one statement
    (outbox.claim), each email is sent with no lock or transaction held, and each outcome is
    stamped right after its send, only if no newer claim took the row over meanwhile (the
    attempt number is the fence). A transient failure (SMTP error, connection) schedules the
    next attempt with backoff (`schedule_retry=False`: the next sweep re-enqueues it); after
    REMINDER_MAX_ATTEMPTS, or on a permanent refusal, the failure is recorded. Users without
    an email address, inactive ones and those who turned email off for the notification's
    kind keep the in-app notification. A batch starts no send once too little of its lease
    is left: the rest is given back (due now) and enqueued again.
    """
    from django.core.mail import get_connection

    claimed = _notifications_claim(notification_ids)
    results = [claim for claim in claimed if isinstance(claim, DeliveryResult)]
    leases = [claim for claim in claimed if isinstance(claim, _Lease)]
    if not leases:
        return results
    lease = dt.timedelta(seconds=settings.REMINDER_LEASE_SECONDS)
    deadline = outbox.send_deadline(leases[0].claimed_at, lease, settings.EMAIL_TIMEOUT)
    own_connection = connection is None
    if own_connection:
        connection = get_connection()
    from . import emails

    builder = emails.ReminderBuilder([claim.notification for claim in leases], connection)
    try:
        for index, claim in enumerate(leases):
            if index and _now() >= deadline:
                _notifications_give_back(leases[index:], schedule_retry)
                break
            message = _build_email(lambda claim=claim: builder.build(claim.notification))
            if isinstance(message, Exception):
                error = message
            else:
                _mail_connection_open(connection)
                error = _send_built(message)
                if error is not None and not isinstance(error, EmailNotBuilt):
                    with contextlib.suppress(Exception):
                        connection.close()  # a broken connection: the next send opens a new one
            # The attempt happened: its outcome is recorded even through a short database
            # outage (an email the server accepted is stamped sent, never sent again), while
            # the lease holds.
            results.append(
                retry_db_write(
                    lambda claim=claim, error=error: _notification_stamp(
                        claim, error, schedule_retry=schedule_retry
                    ),
                    until=_stamp_deadline(claim.notification.next_attempt_at, claim.claimed_at),
                    what=f"Stamping notification {claim.notification.pk}",
                )
            )
    finally:
        if own_connection:
            with contextlib.suppress(Exception):
                connection.close()
    return sorted(results, key=lambda result: result.notification_id)


def _mail_connection_open(connection) -> None:
    """Open the batch's mail connection if it is not (first send, or closed after an error),
    so that the sends share it (a backend's send_messages closes a connection it opened
    itself). A failure to connect is left to the send, which reports it."""
    if getattr(connection, "connection", True) is None:
        with contextlib.suppress(Exception):
            connection.open()


def _notifications_give_back(leases: list["_Lease"], schedule_retry: bool) -> None:
    now = _now()
    released = outbox.release(
        Notification,
        {claim.notification.pk: claim.attempts for claim in leases},
        now=now,
        email_sent_at__isnull=True,
        email_failed_at__isnull=True,
    )
    logger.info("Lease nearly over: %s notifications given back for another batch.", len(released))
    if released and schedule_retry:
        with transaction.atomic():
            _enqueue_notifications_on_commit(released)


NOTIFICATION_OPEN_SQL = "email_sent_at IS NULL AND email_failed_at IS NULL"


def _notifications_claim(notification_ids: list[int]) -> list["_Lease | DeliveryResult"]:
    """Lease the claimable ones of `notification_ids` for one attempt each (one UPDATE ...
    RETURNING), then load them with their recipient, preference, task and plan (one query).
    A row finished without an attempt (in-app only, or given up) is a DeliveryResult, its
    attempt number put back."""
    now = _now()
    lease = dt.timedelta(seconds=settings.REMINDER_LEASE_SECONDS)
    claimed = outbox.claim(
        Notification,
        list(dict.fromkeys(notification_ids)),
        open_sql=NOTIFICATION_OPEN_SQL,
        now=now,
        lease=lease,
        limit=max(len(notification_ids), 1),
    )
    if not claimed:
        return []
    rows = (
        Notification.objects.select_related(
            "recipient", "recipient__notification_preference", "task", "task__plan"
        )
        .filter(pk__in=claimed)
        .order_by("pk")
    )
    out = []
    for notification in rows:
        attempts = claimed[notification.pk]
        notification.attempts = attempts
        notification.next_attempt_at = now + lease
        recipient = notification.recipient
        # Loaded by select_related (None when the user has no row: every email is on).
        preference = getattr(recipient, "notification_preference", None)
        reason = ""
        if not recipient.is_active:
            reason = USER_INACTIVE
        elif not recipient.email:
            reason = NO_EMAIL_ADDRESS
        elif preference is not None and not preference.emails(notification.kind):
            reason = EMAIL_TURNED_OFF
        elif attempts - 1 >= settings.REMINDER_MAX_ATTEMPTS:
            # The last attempt never reported back (its worker died): stop here.
            reason = GAVE_UP.format(
                attempts=attempts - 1,
                error=notification.failure_reason or LEASE_EXPIRED,
            )
        if reason:
            _notification_finish(
                notification.pk,
                attempts=attempts,
                failed_at=now,
                reason=reason,
                attempts_to=attempts - 1,  # no attempt was made
            )
            out.append(DeliveryResult(notification.pk, sent=False, reason=reason[:500]))
        else:
            out.append(_Lease(notification, attempts, now))
    return out


def _notification_claim(notification_id: int) -> "_Lease | DeliveryResult | None":
    """Lease one notification for one attempt (a batch of one)."""
    claimed = _notifications_claim([notification_id])
    return claimed[0] if claimed else None


def _notification_send(lease: _Lease, connection=None) -> Exception | None:
    """Send the email (the caller holds no lock); the error of a failed attempt."""
    from . import emails

    return _send_email(lambda: emails.build(lease.notification, connection=connection))


def _notification_held(notification_id: int, attempts: int):
    """The row, while it is unsent and the attempt numbered `attempts` still holds it."""
    return Notification.objects.filter(
        pk=notification_id,
        attempts=attempts,
        email_sent_at__isnull=True,
        email_failed_at__isnull=True,
    )


def _lease_lost(notification_id: int) -> None:
    logger.warning(
        "Notification %s: a newer attempt claimed it after this one's lease ran out; this "
        "attempt's outcome is not recorded.",
        notification_id,
    )


def _notification_stamp(
    lease: _Lease, error: Exception | None, *, schedule_retry: bool = True
) -> DeliveryResult:
    """Record the attempt's outcome, if its lease still holds the row."""
    pk, attempts = lease.notification.pk, lease.attempts
    now = _now()
    if error is None:
        stamped = _notification_held(pk, attempts).update(
            email_sent_at=now, next_attempt_at=None, failure_reason=""
        )
        if not stamped:
            _lease_lost(pk)
        return DeliveryResult(pk, sent=True)
    text = _error_text(error)
    if isinstance(error, EmailNotBuilt):
        reason = NOT_BUILT.format(error=text)
    elif _permanent(error):
        reason = REFUSED.format(error=text)
    elif attempts >= settings.REMINDER_MAX_ATTEMPTS:
        reason = GAVE_UP.format(attempts=attempts, error=text)
    else:
        delay = reminder_retry_delay(attempts)
        with transaction.atomic():
            held = _notification_held(pk, attempts).update(
                failure_reason=text, next_attempt_at=now + dt.timedelta(seconds=delay)
            )
            if held and schedule_retry:
                _enqueue_notifications_on_commit([pk], countdown=delay)
        if not held:
            _lease_lost(pk)
        logger.info("Email of notification %s failed (%s); retry in %s s.", pk, text, delay)
        return DeliveryResult(pk, sent=False, retry_in=delay, reason=text)
    _notification_finish(pk, attempts=attempts, failed_at=now, reason=reason)
    return DeliveryResult(pk, sent=False, reason=reason[:500])


def Q_due(now: dt.datetime):  # noqa: N802 - reads as a Q object
    from django.db.models import Q

    return Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + CLOCK_SLACK)


def _notification_finish(
    notification_id: int,
    *,
    attempts: int,
    failed_at: dt.datetime,
    reason: str,
    attempts_to: int | None = None,
) -> bool:
    """Record that the email will not be sent (in-app only, refused, given up), if the
    attempt numbered `attempts` still holds the row (`attempts_to`: the count to store)."""
    finished = _notification_held(notification_id, attempts).update(
        email_failed_at=failed_at,
        failure_reason=reason[:500],
        next_attempt_at=None,
        attempts=attempts if attempts_to is None else attempts_to,
    )
    if finished:
        logger.warning("Notification %s not emailed: %s", notification_id, reason)
    else:
        _lease_lost(notification_id)
    return bool(finished)


def notifications_deliver_pending(*, now: dt.datetime | None = None) -> list[DeliveryResult]:
    """Deliver every unsent notification that is due, over one SMTP connection, in the
    foreground (`send_reminders`). Failures wait for the next run or a worker."""

    now = now or _now()
    ids = list(
        Notification.objects.filter(
            Q_due(now), email_sent_at__isnull=True, email_failed_at__isnull=True
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    from django.core.mail import get_connection

    results = []
    if not ids:
        return results
    connection = get_connection()
    try:
        for batch in outbox.chunks(ids):
            results += notifications_deliver_batch(
                notification_ids=batch, connection=connection, schedule_retry=False
            )
    finally:
        with contextlib.suppress(Exception):
            connection.close()
    return results


def _deliver_over_one_connection(ids: list[int], deliver) -> list:
    """`deliver(pk, connection)` for each id over one mail connection (the foreground batch
    of `send_reminders`); the results of those that did something."""
    from django.core.mail import get_connection

    results = []
    if not ids:
        return results
    connection = get_connection()
    try:
        connection.open()
    except Exception as exc:  # noqa: BLE001 - any backend: fall back per message
        logger.warning("Could not open the mail connection: %s", exc)
    try:
        for pk in ids:
            try:
                result = deliver(pk, connection)
            except DB_OUTAGE_ERRORS:
                raise  # the database is gone: the rest would fail too
            except Exception:  # noqa: BLE001 - one row never stops the batch
                logger.exception("Delivery of %s failed; the batch goes on.", pk)
                continue
            if isinstance(result, list):
                results.extend(result)
            elif result is not None:
                results.append(result)
    finally:
        connection.close()
    return results
