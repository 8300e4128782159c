"""The daily digest: the sweep that creates each opted-in user's digest once their 08:00
has passed, its content (only tasks the user may see), and its delivery through the outbox."""

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from plans import permissions as policy
from plans import selectors as plan_selectors
from plans.models import Task
from tracker.models import User

from . import outbox
from .email_delivery import (
    GAVE_UP,
    NOT_BUILT,
    REFUSED,
    EmailNotBuilt,
    _deliver_over_one_connection,
    _error_text,
    _mail_connection_open,
    _permanent,
    _requeue_lost,
    _send_email,
    reminder_retry_delay,
)
from .models import (
    Digest,
    Notification,
    ReminderPolicy,
)
from .outbox import CLOCK_SLACK, LEASE_EXPIRED, _now, _stamp_deadline, retry_db_write

logger = logging.getLogger(__name__)


@transaction.atomic
def notifications_mark_all_read(*, user: User, now: dt.datetime | None = None) -> int:
    """Mark all of the user's unread notifications read; returns how many."""

    return Notification.objects.filter(recipient=user, read_at__isnull=True).update(
        read_at=now or _now()
    )


DIGEST_HOUR = dt.time(8)

# Open tasks due within this many days are "due soon" in a digest, or within the plan's largest
# reminder day (ReminderPolicy.before_days) when that is further ahead.
DIGEST_DUE_WITHIN_DAYS = 7


DIGEST_SWITCHED_OFF = "Not sent: the daily digest was switched off."

DIGEST_NO_EMAIL_ADDRESS = "Not sent: the user has no email address."

DIGEST_USER_INACTIVE = "Not sent: the user account is inactive."


DigestStatus = Digest.Status


def digest_day(now: dt.datetime, tz, whole_day: bool = False) -> dt.date | None:
    """The local day in `tz` whose digest is due at `now`: today once its 08:00 has passed
    (`whole_day`: today in any case), otherwise None."""

    today = now.astimezone(tz).date()
    if whole_day or dt.datetime.combine(today, DIGEST_HOUR, tzinfo=tz) <= now:
        return today
    return None


@dataclass
class DigestSweepResult:
    created: int
    digest_ids: list[int]
    requeued: int


def digests_sweep(
    *, now: dt.datetime | None = None, whole_day: bool = False, enqueue: bool = True
) -> DigestSweepResult:
    """Create today's digest of every opted-in active user with an email address whose 08:00
    has passed (`whole_day`: as if it had), unless it exists; enqueue the new ones after
    commit (`enqueue=False`: the caller delivers them) and re-enqueue digests whose message
    was lost. A fixed number of queries whatever the number of users: the users, the
    existing digests, the insert (ON CONFLICT DO NOTHING), the new ids, the lost ones."""

    from .schedule import zone

    now = now or _now()
    created_at = _now()
    opted_in = (
        User.objects.filter(notification_preference__digest=True, is_active=True, is_system=False)
        .exclude(email="")
        .order_by()
    )
    by_zone: dict[str, list[int]] = {}
    for user_id, tz_name in opted_in.values_list("pk", "time_zone"):
        by_zone.setdefault(tz_name, []).append(user_id)
    wanted: dict[int, tuple[dt.date, dt.datetime]] = {}
    for tz_name, user_ids in by_zone.items():
        try:
            tz = zone(tz_name)
        except (ValueError, LookupError):  # ZoneInfoNotFoundError is a KeyError
            logger.warning("Digest: unknown time zone %r of users %s.", tz_name, user_ids)
            continue
        day = digest_day(now, tz, whole_day)
        if day is None:
            continue
        due_at = dt.datetime.combine(day, DIGEST_HOUR, tzinfo=tz).astimezone(dt.UTC)
        for user_id in user_ids:
            wanted[user_id] = (day, due_at)

    new_ids: list[int] = []
    with transaction.atomic():
        if wanted:
            days = {day for day, _due_at in wanted.values()}
            existing = set(
                Digest.objects.filter(day__in=days, user__in=opted_in.values("pk")).values_list(
                    "user_id", "day"
                )
            )
            fresh = [
                Digest(
                    user_id=user_id,
                    day=day,
                    due_at=due_at,
                    created_at=created_at,
                    next_attempt_at=created_at,
                )
                for user_id, (day, due_at) in wanted.items()
                if (user_id, day) not in existing
            ]
            if fresh:
                # A concurrent sweep may have inserted some meanwhile: the unique key wins.
                Digest.objects.bulk_create(fresh, ignore_conflicts=True)
                new_ids = list(
                    Digest.objects.filter(
                        user_id__in=[digest.user_id for digest in fresh], created_at=created_at
                    )
                    .order_by("pk")
                    .values_list("pk", flat=True)
                )
        requeue_ids = _digests_lost(now) if enqueue else []
        if enqueue and (new_ids or requeue_ids):
            _enqueue_digests_on_commit(new_ids + requeue_ids)
    return DigestSweepResult(len(new_ids), new_ids, len(requeue_ids))


def _digests_lost(now: dt.datetime) -> list[int]:
    return _requeue_lost(Digest.objects.filter(status=DigestStatus.PENDING), now)


def _enqueue_digests_on_commit(ids: list[int], countdown: int | None = None) -> None:
    """After commit, one message per batch of DELIVERY_BATCH_SIZE ids on NOTIFICATION_QUEUE."""
    from .tasks import deliver_digests_task

    outbox.enqueue_batches_on_commit(
        deliver_digests_task, ids, queue=settings.NOTIFICATION_QUEUE, countdown=countdown
    )


@dataclass(frozen=True)
class DigestContent:
    """What a digest reports, computed when it is sent: only tasks the user may see."""

    due_soon: list
    overdue: list
    awaiting_verification: list

    @property
    def task_count(self) -> int:
        return len(self.due_soon) + len(self.overdue) + len(self.awaiting_verification)

    @property
    def is_empty(self) -> bool:
        return self.task_count == 0


def digest_content(*, user: User, day: dt.date, now: dt.datetime) -> DigestContent:
    """The user's open tasks ("My tasks": assigned, managed, or of their organizations) due
    within DIGEST_DUE_WITHIN_DAYS of `day` (or the plan's largest reminder day), their open
    tasks past the deadline at `now`, and, for coordinators, the tasks done but not verified
    in the plans they coordinate. Three queries: policies, the user's tasks, the tasks
    awaiting verification."""

    from django.db.models import Q

    from plans.models import PlanParticipant
    from tracker.models import Membership

    default_days = ReminderPolicy.defaults().before_days or []
    horizons = {
        row.plan_id: max([DIGEST_DUE_WITHIN_DAYS, *(row.before_days or [])])
        for row in ReminderPolicy.objects.only("plan_id", "before_days")
    }
    default_horizon = max([DIGEST_DUE_WITHIN_DAYS, *default_days])
    furthest = max([default_horizon, *horizons.values()])
    mine = list(
        plan_selectors.task_mine(user=user)
        .filter(Q(deadline_at__lte=now) | Q(due_date__lte=day + dt.timedelta(days=furthest)))
        .select_related("plan")
        .order_by("deadline_at", "ref", "pk")
    )
    overdue = [task for task in mine if task.deadline_at <= now]
    due_soon = [
        task
        for task in mine
        if task.deadline_at > now
        and task.due_date <= day + dt.timedelta(days=horizons.get(task.plan_id, default_horizon))
    ]
    coordinated = PlanParticipant.objects.filter(
        role=PlanParticipant.Role.COORDINATING,
        organization__memberships__user=user,
        organization__memberships__role=Membership.Role.COORDINATOR,
    ).values("plan_id")
    awaiting = list(
        policy.for_user(user, policy.VERIFY, Task)
        .filter(status=Task.Status.DONE, plan_id__in=coordinated)
        .select_related("plan")
        .order_by("completed_at", "ref", "pk")
    )
    return DigestContent(due_soon=due_soon, overdue=overdue, awaiting_verification=awaiting)


@dataclass(frozen=True)
class DigestResult:
    digest_id: int
    status: str
    retry_in: int | None = None
    reason: str = ""

    @property
    def sent(self) -> bool:
        return self.status == DigestStatus.SENT


@dataclass(frozen=True)
class _DigestClaim:
    """A digest claimed for one attempt (its user loaded). `attempts`, the row's count after
    the claim, is the fencing token: the outcome is stamped only while the row still has it."""

    digest: Digest
    attempts: int
    claimed_at: dt.datetime


@dataclass(frozen=True)
class _DigestOutcome:
    status: str  # sent, empty, not_sent (the message could not be built), or pending (failed)
    task_count: int
    error: str = ""
    permanent: bool = False


def _digest_finish(
    digest: Digest, reason: str, now: dt.datetime, *, fence: int | None = None
) -> DigestResult | None:
    """Record the digest as not sent. `fence`: only while the attempt numbered so still
    holds the row (a claim that made no attempt: `digest.attempts` is the count to store);
    None when it no longer does."""
    digest.status = DigestStatus.NOT_SENT
    digest.email_failed_at = now
    digest.failure_reason = reason[:500]
    digest.next_attempt_at = None
    if fence is not None:
        finished = outbox.held(Digest, digest.pk, fence, status=DigestStatus.PENDING).update(
            status=digest.status,
            email_failed_at=now,
            failure_reason=digest.failure_reason,
            next_attempt_at=None,
            attempts=digest.attempts,
        )
        if not finished:
            return None
    else:
        digest.save(
            update_fields=[
                "status", "task_count", "email_failed_at", "failure_reason", "next_attempt_at",
            ]
        )  # fmt: skip
    logger.warning("Digest %s not emailed: %s", digest.pk, reason)
    return DigestResult(digest.pk, digest.status, reason=digest.failure_reason)


DIGEST_OPEN_SQL = "status = %s"


def _digests_claim(digest_ids: list[int]) -> list["_DigestClaim | DigestResult"]:
    """Take the due digests of `digest_ids` that nobody holds for one attempt each (a lease
    of REMINDER_LEASE_SECONDS, one UPDATE ... RETURNING), then load them with their users
    (one query). A digest finished here without sending is a DigestResult."""
    now = _now()
    lease = dt.timedelta(seconds=settings.REMINDER_LEASE_SECONDS)
    claimed = outbox.claim(
        Digest,
        list(dict.fromkeys(digest_ids)),
        open_sql=DIGEST_OPEN_SQL,
        open_params=(DigestStatus.PENDING,),
        now=now,
        lease=lease,
    )
    if not claimed:
        return []
    out = []
    rows = (
        Digest.objects.select_related("user", "user__notification_preference")
        .filter(pk__in=claimed)
        .order_by("pk")
    )
    for digest in rows:
        attempts = claimed[digest.pk]
        user = digest.user
        preference = getattr(user, "notification_preference", None)
        reason = ""
        if not user.is_active:
            reason = DIGEST_USER_INACTIVE
        elif not user.email:
            reason = DIGEST_NO_EMAIL_ADDRESS
        elif preference is None or not preference.digest:
            reason = DIGEST_SWITCHED_OFF
        elif attempts - 1 >= settings.REMINDER_MAX_ATTEMPTS:
            # Earlier attempts never reported back (their worker died): stop here.
            reason = digest.failure_reason or LEASE_EXPIRED
        if reason:
            digest.attempts = attempts - 1  # no attempt was made
            finished = _digest_finish(digest, reason, now, fence=attempts)
            if finished is not None:
                out.append(finished)
            continue
        digest.attempts = attempts
        digest.next_attempt_at = now + lease
        out.append(_DigestClaim(digest=digest, attempts=attempts, claimed_at=now))
    return out


def _digest_claim(digest_id: int) -> _DigestClaim | DigestResult | None:
    """Take one digest for one attempt (a batch of one)."""
    claimed = _digests_claim([digest_id])
    return claimed[0] if claimed else None


def _digest_send(claim: _DigestClaim, content: DigestContent, connection=None) -> _DigestOutcome:
    """Email the digest. No database transaction is open here."""
    from . import emails

    error = _send_email(lambda: emails.build_digest(claim.digest, content, connection=connection))
    if error is None:
        return _DigestOutcome(DigestStatus.SENT, content.task_count)
    text = _error_text(error)
    if isinstance(error, EmailNotBuilt):
        # Permanent, and recorded as it is (not as a refusal of the mail server).
        return _DigestOutcome(
            DigestStatus.NOT_SENT, content.task_count, NOT_BUILT.format(error=text), True
        )
    return _DigestOutcome(DigestStatus.PENDING, content.task_count, text, _permanent(error))


def _digest_stamp(
    claim: _DigestClaim, outcome: _DigestOutcome, schedule_retry: bool = True
) -> DigestResult | None:
    with transaction.atomic():
        now = _now()
        digest = Digest.objects.select_for_update().filter(pk=claim.digest.pk).first()
        if digest is None:
            return None  # deleted meanwhile (the user was)
        if digest.status != DigestStatus.PENDING or digest.attempts != claim.attempts:
            # This attempt's lease ran out and a newer one took the digest over: it stamps.
            logger.warning(
                "Digest %s: a newer attempt claimed it after this one's lease ran out; this "
                "attempt's outcome is not recorded.",
                digest.pk,
            )
            return DigestResult(digest.pk, digest.status, reason=digest.failure_reason)
        digest.task_count = outcome.task_count
        if outcome.status in (DigestStatus.SENT, DigestStatus.EMPTY):
            digest.status = outcome.status
            digest.email_sent_at = now if outcome.status == DigestStatus.SENT else None
            digest.next_attempt_at = None
            digest.failure_reason = ""
            digest.save(
                update_fields=[
                    "status", "task_count", "email_sent_at", "next_attempt_at", "failure_reason",
                ]
            )  # fmt: skip
            return DigestResult(digest.pk, digest.status)
        if outcome.status == DigestStatus.NOT_SENT:
            return _digest_finish(digest, outcome.error, now)
        if outcome.permanent:
            return _digest_finish(digest, REFUSED.format(error=outcome.error), now)
        if digest.attempts >= settings.REMINDER_MAX_ATTEMPTS:
            return _digest_finish(
                digest, GAVE_UP.format(attempts=digest.attempts, error=outcome.error), now
            )
        delay = reminder_retry_delay(digest.attempts)
        digest.failure_reason = outcome.error[:500]
        digest.next_attempt_at = now + dt.timedelta(seconds=delay)
        digest.save(update_fields=["task_count", "failure_reason", "next_attempt_at"])
        if schedule_retry:
            _enqueue_digests_on_commit([digest.pk], countdown=delay)
        logger.info("Digest %s failed (%s); retry in %s s.", digest.pk, outcome.error, delay)
        return DigestResult(digest.pk, digest.status, retry_in=delay, reason=outcome.error)


def digest_deliver(
    *, digest_id: int, connection=None, schedule_retry: bool = True
) -> DigestResult | None:
    """Make one attempt at a due digest (a batch of one: see `digests_deliver_batch`).
    Returns None when there is nothing to do (gone, finished, not yet due, or held by
    another worker)."""
    results = digests_deliver_batch(
        digest_ids=[digest_id], connection=connection, schedule_retry=schedule_retry
    )
    return results[0] if results else None


def digests_deliver_batch(
    *, digest_ids: list[int], connection=None, schedule_retry: bool = True
) -> list[DigestResult]:
    """One attempt at each due digest of the batch, over one SMTP connection: its content
    computed now, emailed unless there is nothing to report (then recorded as empty). A
    transient failure (SMTP, connection) is retried with backoff (`schedule_retry=False`:
    the next run picks it up); after REMINDER_MAX_ATTEMPTS, on a permanent refusal, or when
    the user opted out, has no address or is inactive, it is recorded as not sent with the
    reason. Claim, lease end and give-back as for reminders (outbox)."""
    from django.core.mail import get_connection

    claimed = _digests_claim(digest_ids)
    results = [claim for claim in claimed if isinstance(claim, DigestResult)]
    claims = [claim for claim in claimed if isinstance(claim, _DigestClaim)]
    if not claims:
        return results
    lease = dt.timedelta(seconds=settings.REMINDER_LEASE_SECONDS)
    deadline = outbox.send_deadline(claims[0].claimed_at, lease, settings.EMAIL_TIMEOUT)
    own_connection = connection is None
    if own_connection:
        connection = get_connection()
    try:
        for index, claim in enumerate(claims):
            if index and _now() >= deadline:
                released = outbox.release(
                    Digest,
                    {c.digest.pk: c.attempts for c in claims[index:]},
                    now=_now(),
                    status=DigestStatus.PENDING,
                )
                if released and schedule_retry:
                    with transaction.atomic():
                        _enqueue_digests_on_commit(released)
                break
            digest = claim.digest
            content = digest_content(user=digest.user, day=digest.day, now=_now())
            if content.is_empty:
                outcome = _DigestOutcome(DigestStatus.EMPTY, 0)
            else:
                _mail_connection_open(connection)
                outcome = _digest_send(claim, content, connection)
                if outcome.status == DigestStatus.PENDING:
                    with contextlib.suppress(Exception):
                        connection.close()  # the next send opens a new one
            # As for reminders: a digest the server accepted is stamped, never sent again.
            result = retry_db_write(
                lambda claim=claim, outcome=outcome: _digest_stamp(claim, outcome, schedule_retry),
                until=_stamp_deadline(digest.next_attempt_at, claim.claimed_at),
                what=f"Stamping digest {digest.pk}",
            )
            if result is not None:
                results.append(result)
    finally:
        if own_connection:
            with contextlib.suppress(Exception):
                connection.close()
    return sorted(results, key=lambda result: result.digest_id)


def digests_deliver_pending(*, now: dt.datetime | None = None) -> list[DigestResult]:
    """Deliver every due pending digest over one SMTP connection, in the foreground
    (`send_reminders`). Failures wait for the next run or a worker."""

    now = now or _now()
    ids = list(
        Digest.objects.filter(status=DigestStatus.PENDING, next_attempt_at__lte=now + CLOCK_SLACK)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return _deliver_over_one_connection(
        list(outbox.chunks(ids)),
        lambda batch, connection: digests_deliver_batch(
            digest_ids=batch, connection=connection, schedule_retry=False
        ),
    )
