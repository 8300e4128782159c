"""Every write of the webhooks: subscriptions, recording events, delivering them.

Subscriptions are written by the organization's coordinators and managers (and superusers),
as `plans.permissions` says; each service checks its actor.

Events (`plans.signals.task_changed`, after the plan's commit) become one WebhookDelivery row
per active subscription that listens to the event and whose organization may see the task
(`policy.organization_task_q`); the rows exist whether or not Celery runs. Delivery is
enqueued after commit and made by `webhook_deliver`:

    claim (row lock, skip locked; a lease keeps others off) -> commit -> POST, no lock held
    -> stamp (succeeded; or failed with the next attempt scheduled; or gave up)

A failed attempt is retried with exponential backoff; after WEBHOOK_MAX_ATTEMPTS the delivery
is given up, and WEBHOOK_DISABLE_AFTER given-up deliveries in a row disable the subscription.
`webhook_deliveries_requeue` (run by beat) re-enqueues what a lost message or a dead worker
left behind. Calling `webhook_deliver` again for a finished delivery sends nothing.
"""

import contextlib
import datetime as dt
import functools
import json
import logging
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import BooleanField, ExpressionWrapper
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy

from plans import permissions as policy
from plans import selectors as plan_selectors
from plans.api.serializers import StatusUpdateSerializer, TaskSerializer
from plans.exceptions import NotVisible
from plans.models import StatusUpdate, Task
from tracker import services as tracker_services
from tracker.models import Organization, User

from . import encryption, outbox, signing, webhook_http
from .exceptions import OrganizationNotManaged, WebhookDisabled
from .models import (
    PING_EVENT,
    Digest,
    Notification,
    NotificationKind,
    NotificationPreference,
    ReminderPolicy,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)

logger = logging.getLogger(__name__)

Status = WebhookDelivery.Status
OPEN = (Status.PENDING, Status.FAILED)

# Backoff after the n-th failed attempt: BASE * 2^(n-1), capped. The cap stays below the
# broker's visibility timeout (1 hour), so a countdown message is never delivered twice.
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 30 * 60
# While an attempt is in flight its row is leased: nobody else claims it until then.
CLAIM_LEASE = dt.timedelta(minutes=5)
REQUEUE_BATCH = 500
# Tolerated clock difference between the scheduling and the executing machine.
CLOCK_SLACK = outbox.CLOCK_SLACK
# After a rotation, the previous secret still signs (a second signature) this long.
ROTATION_GRACE = dt.timedelta(hours=24)
USER_AGENT = "JointPlanTracker-Webhooks/1.0"

DISABLED_BY = "Disabled by {actor}."
AUTO_DISABLED = "Disabled automatically after {count} deliveries in a row failed."
SUBSCRIPTION_DISABLED = "Not sent: the webhook was disabled."
NO_LONGER_VISIBLE = "Not sent: the organization can no longer see the task."
SECRET_UNREADABLE = (
    "Not sent: the signing secret cannot be decrypted (was WEBHOOK_ENCRYPTION_KEY or "
    "DJANGO_SECRET_KEY changed?). Rotate the secret."
)
LEASE_EXPIRED = "The attempt did not finish (worker stopped?)."

_UNSET = object()


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


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _lock(subscription: WebhookSubscription | int) -> WebhookSubscription:
    pk = subscription.pk if isinstance(subscription, WebhookSubscription) else subscription
    try:
        return (
            WebhookSubscription.objects.select_for_update(of=("self",))
            .select_related("organization")
            .get(pk=pk)
        )
    except (WebhookSubscription.DoesNotExist, ValueError, TypeError):
        raise NotVisible() from None


def _enqueue(delivery_ids: list[int], countdown: int | None = None) -> None:
    from .tasks import deliver_webhook_task

    for delivery_id in delivery_ids:
        deliver_webhook_task.apply_async(
            args=[delivery_id], countdown=countdown, queue=settings.WEBHOOK_QUEUE
        )


def _enqueue_on_commit(delivery_ids: list[int], countdown: int | None = None) -> None:
    # Robust: the data is committed; a broker outage must not turn the caller's success into
    # an error. The rows stay due and webhook_deliveries_requeue sends them later.
    def enqueue_deliveries():  # a named function: Django logs a robust hook's __qualname__
        _enqueue(delivery_ids, countdown)

    transaction.on_commit(enqueue_deliveries, robust=True)


# --- Subscriptions -------------------------------------------------------------------------


@transaction.atomic
def webhook_subscription_create(
    *,
    actor: User,
    organization: Organization,
    url: str,
    events: list[str],
    description: str = "",
) -> tuple[WebhookSubscription, str]:
    """Subscribe `organization`'s endpoint to `events`. Returns the subscription and its new
    signing secret: the only time the plaintext is available."""
    policy.ensure(actor, policy.ADD, WebhookSubscription)
    secret = signing.new_secret()
    subscription = WebhookSubscription(
        organization=organization,
        url=url.strip(),
        events=list(events),
        description=description.strip(),
        created_by=actor,
    )
    subscription.set_secret(secret)
    subscription.full_clean()
    webhook_url_validate(url=subscription.url)
    subscription.save()
    # The organization must be one the actor manages (NetBox's re-check after the write:
    # out of scope -> refuse, and the transaction rolls back).
    if not policy.can(actor, policy.ADD, subscription):
        raise OrganizationNotManaged(organization)
    return subscription, secret


@transaction.atomic
def webhook_subscription_update(
    *,
    actor: User,
    subscription: WebhookSubscription | int,
    url: str = _UNSET,  # type: ignore[assignment]
    events: list[str] = _UNSET,  # type: ignore[assignment]
    description: str = _UNSET,  # type: ignore[assignment]
    is_active: bool = _UNSET,  # type: ignore[assignment]
) -> WebhookSubscription:
    """Change the URL, events or description, or switch the subscription off or on.

    Switching it on clears the failure count, as `webhook_subscription_enable` does."""
    subscription = _lock(subscription)
    policy.ensure(actor, policy.CHANGE, subscription)
    fields = []
    if url is not _UNSET and url.strip() != subscription.url:
        subscription.url = url.strip()
        fields.append("url")
    if events is not _UNSET and list(events) != subscription.events:
        subscription.events = list(events)
        fields.append("events")
    if description is not _UNSET and description.strip() != subscription.description:
        subscription.description = description.strip()
        fields.append("description")
    if is_active is not _UNSET and is_active != subscription.is_active:
        if is_active:
            fields += _reactivate(subscription)
        else:
            fields += _deactivate(subscription, DISABLED_BY.format(actor=actor))
    subscription.full_clean()
    if "url" in fields:
        webhook_url_validate(url=subscription.url)
    if fields:
        subscription.save(update_fields=[*fields, "updated_at"])
    return subscription


def webhook_url_validate(*, url: str) -> None:
    """Refuse (ValidationError on `url`) a target the sender would refuse: the rules of
    webhook_http (https, public addresses only, no credentials). The admin's form asks it too,
    to show the error on the field."""
    try:
        webhook_http.target_validate(url)
    except ValidationError as exc:
        raise ValidationError({"url": exc.error_list}) from None


def _reactivate(subscription: WebhookSubscription) -> list[str]:
    subscription.is_active = True
    subscription.disabled_at = None
    subscription.disabled_reason = ""
    subscription.consecutive_failures = 0
    return ["is_active", "disabled_at", "disabled_reason", "consecutive_failures"]


def _deactivate(
    subscription: WebhookSubscription, reason: str, now: dt.datetime | None = None
) -> list[str]:
    subscription.is_active = False
    subscription.disabled_at = now or _now()
    subscription.disabled_reason = reason[:300]
    return ["is_active", "disabled_at", "disabled_reason"]


@transaction.atomic
def webhook_subscription_enable(
    *, actor: User, subscription: WebhookSubscription | int
) -> WebhookSubscription:
    """Switch a disabled subscription (by hand or after failures) back on, failures reset.
    Enabling an active one changes nothing."""
    subscription = _lock(subscription)
    policy.ensure(actor, policy.CHANGE, subscription)
    if not subscription.is_active:
        fields = _reactivate(subscription)
        subscription.full_clean()
        subscription.save(update_fields=[*fields, "updated_at"])
    return subscription


@transaction.atomic
def webhook_subscription_rotate_secret(
    *, actor: User, subscription: WebhookSubscription | int, keep_previous: bool = True
) -> tuple[WebhookSubscription, str]:
    """Give the subscription a new secret; returns it (shown once).

    With `keep_previous`, requests also carry a signature made with the old secret for
    ROTATION_GRACE, so the receiver can switch over without losing messages. Without it (the
    old secret leaked), the old secret stops signing at once."""
    subscription = _lock(subscription)
    policy.ensure(actor, policy.CHANGE, subscription)
    secret = signing.new_secret()
    if keep_previous:
        subscription.previous_secret_encrypted = subscription.secret_encrypted
        subscription.previous_secret_expires_at = _now() + ROTATION_GRACE
    else:
        subscription.previous_secret_encrypted = ""
        subscription.previous_secret_expires_at = None
    subscription.set_secret(secret)
    subscription.full_clean()
    subscription.save(
        update_fields=[
            "secret_encrypted",
            "previous_secret_encrypted",
            "previous_secret_expires_at",
            "updated_at",
        ]
    )
    return subscription, secret


@transaction.atomic
def webhook_subscription_delete(*, actor: User, subscription: WebhookSubscription | int) -> None:
    """Delete the subscription and its delivery log; messages in flight are dropped."""
    subscription = _lock(subscription)
    policy.ensure(actor, policy.DELETE, subscription)
    subscription.delete()


@transaction.atomic
def webhook_subscription_ping(
    *, actor: User, subscription: WebhookSubscription | int
) -> WebhookDelivery:
    """Send a `webhook.ping` to check the endpoint and its signature verification."""
    subscription = _lock(subscription)
    policy.ensure(actor, policy.CHANGE, subscription)
    if not subscription.is_active:
        raise WebhookDisabled()
    now = _now()
    payload = {
        "type": PING_EVENT,
        "timestamp": _iso(now),
        "data": {"webhook": subscription.pk, "organization": subscription.organization_id},
    }
    delivery = _new_delivery(subscription, PING_EVENT, None, payload, now)
    delivery.full_clean()
    delivery.save()
    _enqueue_on_commit([delivery.pk])
    return delivery


def _new_delivery(subscription, event, task_id, payload, now) -> WebhookDelivery:
    return WebhookDelivery(
        subscription=subscription,
        event=event,
        task_id=task_id,
        message_id=f"msg_{uuid.uuid4().hex}",
        payload=payload,
        status=Status.PENDING,
        next_attempt_at=now,
        created_at=now,
    )


# --- Events ----------------------------------------------------------------------------------


def organizations_seeing_task(task_id: int, organization_ids) -> set[int]:
    """Which of the organizations may see the task, by the policy, in ONE query."""
    organization_ids = sorted(set(organization_ids))
    if not organization_ids:
        return set()
    checks = {
        f"org_{org_id}": ExpressionWrapper(
            policy.organization_task_q(org_id), output_field=BooleanField()
        )
        for org_id in organization_ids
    }
    row = Task.objects.filter(pk=task_id).values(**checks).first()
    if row is None:
        return set()
    return {org_id for org_id in organization_ids if row[f"org_{org_id}"]}


def _event_payload(
    event: str, task_id: int, now: dt.datetime, extra: dict, organization_id: int
) -> dict | None:
    """The Standard Webhooks body: {"type", "timestamp", "data": {"task": ..., ...}}. The task
    is shown exactly as the API shows it to the receiving organization (related tasks and
    people it may not see left out); times in UTC whatever zone is active."""
    reader = plan_selectors.SeenBy(organization_id=organization_id)
    task = Task.objects.with_overdue(now).select_related("plan").filter(pk=task_id).first()
    if task is None:
        return None
    plan_selectors.task_attach_relations([task], reader=reader)
    # `title` and `description` in English (or Korean where there is no English) whoever
    # made the change; title_en / title_ko carry both versions.
    with timezone.override(dt.UTC), translation.override("en"):
        data = {"task": TaskSerializer(task).data}
        if event == WebhookEvent.TASK_STATUS_CHANGED:
            data["status_from"] = extra.get("status_from")
            data["status_to"] = extra.get("status_to")
        elif event == WebhookEvent.TASK_UPDATED and extra.get("fields") is not None:
            data["changed_fields"] = sorted(extra["fields"])
        elif event == WebhookEvent.STATUS_UPDATE_CREATED:
            update = StatusUpdate.objects.filter(
                pk=extra.get("status_update_id"), task_id=task_id
            ).first()
            if update is not None:
                plan_selectors.status_updates_attach_people([update], reader=reader)
            data["status_update"] = StatusUpdateSerializer(update).data if update else None
        payload = {"type": event, "timestamp": _iso(now), "data": data}
        # Plain JSON types, exactly as they will be stored and sent.
        return json.loads(json.dumps(payload, cls=DjangoJSONEncoder))


def webhook_events_record(
    *, event: str, task_id: int, now: dt.datetime | None = None, **extra
) -> list[WebhookDelivery]:
    """Record one delivery of `event` per active subscription listening to it whose
    organization may see the task, and enqueue them after commit. The payload is built once."""
    if event not in WebhookEvent.values:
        return []
    now = now or _now()
    listening = [
        subscription
        for subscription in WebhookSubscription.objects.filter(is_active=True).only(
            "pk", "organization", "events"
        )
        if subscription.listens_to(event)
    ]
    if not listening:
        return []
    seeing = organizations_seeing_task(task_id, [s.organization_id for s in listening])
    targets = [s for s in listening if s.organization_id in seeing]
    if not targets:
        return []
    # One body per receiving organization: each names only what it may see.
    payloads = {
        org_id: _event_payload(event, task_id, now, extra, org_id)
        for org_id in sorted({s.organization_id for s in targets})
    }
    if any(payload is None for payload in payloads.values()):
        return []
    with transaction.atomic():
        deliveries = WebhookDelivery.objects.bulk_create(
            [_new_delivery(s, event, task_id, payloads[s.organization_id], now) for s in targets]
        )
        _enqueue_on_commit([delivery.pk for delivery in deliveries])
    return deliveries


# --- Delivery ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claim:
    delivery_id: int
    subscription_id: int
    url: str
    message_id: str
    secrets: list[str]
    body: bytes
    claimed_at: dt.datetime
    lease_end: dt.datetime


@dataclass(frozen=True)
class _Outcome:
    status_code: int | None
    error: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def retry_delay(attempts: int) -> int:
    """Seconds to wait after the `attempts`-th failed attempt."""
    return min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS)


def _finish(delivery: WebhookDelivery, status: str, error: str) -> None:
    delivery.status = status
    delivery.last_error = error[:500]
    delivery.next_attempt_at = None
    delivery.save(update_fields=["status", "last_error", "next_attempt_at"])


def _count_failure(subscription: WebhookSubscription, now: dt.datetime) -> None:
    """One more delivery given up in a row; too many disable the subscription."""
    subscription.consecutive_failures += 1
    fields = ["consecutive_failures"]
    limit = settings.WEBHOOK_DISABLE_AFTER
    if subscription.is_active and subscription.consecutive_failures >= limit:
        fields += _deactivate(
            subscription, AUTO_DISABLED.format(count=subscription.consecutive_failures), now
        )
        logger.warning(
            "Webhook %s (%s) disabled after %s failed deliveries in a row.",
            subscription.pk,
            subscription.url,
            subscription.consecutive_failures,
        )
    subscription.save(update_fields=[*fields, "updated_at"])


def _claim(delivery_id: int) -> _Claim | None:
    """Take the delivery for one attempt if it is due and nobody holds it; None otherwise."""
    subscription_id = (
        WebhookDelivery.objects.filter(pk=delivery_id)
        .values_list("subscription_id", flat=True)
        .first()
    )
    if subscription_id is None:
        return None
    with transaction.atomic():
        now = _now()
        # Lock order everywhere: subscription, then delivery.
        subscription = (
            WebhookSubscription.objects.select_for_update(no_key=True)
            .filter(pk=subscription_id)
            .first()
        )
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(pk=delivery_id, status__in=OPEN, next_attempt_at__lte=now + CLOCK_SLACK)
            .first()
        )
        if subscription is None or delivery is None:
            return None
        if not subscription.is_active:
            _finish(delivery, Status.GAVE_UP, SUBSCRIPTION_DISABLED)
            return None
        if delivery.event != PING_EVENT and not organizations_seeing_task(
            delivery.task_id, [subscription.organization_id]
        ):
            _finish(delivery, Status.GAVE_UP, NO_LONGER_VISIBLE)
            return None
        if delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            # Earlier attempts never reported back (their worker died): stop here.
            _finish(delivery, Status.GAVE_UP, delivery.last_error or LEASE_EXPIRED)
            _count_failure(subscription, now)
            return None
        try:
            secrets = subscription.signing_secrets(now)
        except encryption.InvalidToken:
            logger.error("Webhook %s: the signing secret cannot be decrypted.", subscription.pk)
            _finish(delivery, Status.GAVE_UP, SECRET_UNREADABLE)
            return None
        delivery.attempts += 1
        delivery.next_attempt_at = now + CLAIM_LEASE
        delivery.save(update_fields=["attempts", "next_attempt_at"])
        body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
        return _Claim(
            delivery_id=delivery.pk,
            subscription_id=subscription.pk,
            url=subscription.url,
            message_id=delivery.message_id,
            secrets=secrets,
            body=body,
            claimed_at=now,
            lease_end=delivery.next_attempt_at,
        )


def _send(claim: _Claim) -> _Outcome:
    """POST the signed body. No database transaction is open here."""
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **signing.headers(claim.secrets, claim.message_id, int(time.time()), claim.body),
    }
    # The target is checked again here and the connection made to the address checked.
    result = webhook_http.post(claim.url, content=claim.body, headers=headers, timeout=timeout)
    return _Outcome(result.status_code, result.error)


def _stamp(claim: _Claim, outcome: _Outcome) -> WebhookDelivery | None:
    with transaction.atomic():
        now = _now()
        subscription = (
            WebhookSubscription.objects.select_for_update(no_key=True)
            .filter(pk=claim.subscription_id)
            .first()
        )
        delivery = WebhookDelivery.objects.select_for_update().filter(pk=claim.delivery_id).first()
        if subscription is None or delivery is None:
            return None  # deleted meanwhile
        if delivery.status not in OPEN:
            return delivery  # finished by another attempt after this one's lease ran out
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error[:500]
        fields = ["status", "last_status_code", "last_error", "next_attempt_at"]
        if outcome.ok:
            delivery.status = Status.SUCCEEDED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
            fields.append("delivered_at")
            if subscription.consecutive_failures:
                subscription.consecutive_failures = 0
                subscription.save(update_fields=["consecutive_failures", "updated_at"])
        elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            delivery.status = Status.GAVE_UP
            delivery.next_attempt_at = None
            _count_failure(subscription, now)
        else:
            delay = retry_delay(delivery.attempts)
            delivery.status = Status.FAILED
            delivery.next_attempt_at = now + dt.timedelta(seconds=delay)
            _enqueue_on_commit([delivery.pk], countdown=delay)
        delivery.save(update_fields=fields)
        return delivery


def webhook_deliver(*, delivery_id: int) -> WebhookDelivery | None:
    """Make one attempt at a due delivery; returns it stamped, or None when there was nothing
    to send (gone, finished, not yet due, or held by another worker)."""
    claim = _claim(delivery_id)
    if claim is None:
        return None
    outcome = _send(claim)
    if not outcome.ok:
        logger.info("Webhook delivery %s failed: %s", claim.delivery_id, outcome.error)
    # The POST happened: its outcome is recorded (a 2xx stamped, never posted again) even
    # through a short database outage, while the lease holds the row.
    return retry_db_write(
        lambda: _stamp(claim, outcome),
        until=_stamp_deadline(claim.lease_end, claim.claimed_at),
        what=f"Stamping webhook delivery {claim.delivery_id}",
    )


def webhook_deliveries_requeue(*, now: dt.datetime | None = None) -> int:
    """Enqueue deliveries that are due for longer than DELIVERY_REQUEUE_AFTER_SECONDS: their
    message was lost (broker down at commit) or their worker died mid-attempt. Returns how
    many."""
    now = now or _now()
    with transaction.atomic():
        ids = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(status__in=OPEN, next_attempt_at__lte=now - requeue_after())
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:REQUEUE_BATCH]
        )
        if ids:
            # Due now: the new message may claim them; the next sweep leaves them alone.
            WebhookDelivery.objects.filter(pk__in=ids).update(next_attempt_at=now)
            _enqueue_on_commit(ids)
    return len(ids)


# --- Reminders: the policy, the sweep, email delivery, read state ----------------------------
#
# The sweep (beat, every REMINDER_SWEEP_SECONDS) computes from the database which reminders
# are due now (notifications/schedule.py says when) and inserts one Notification per
# (recipient, task, kind, due date, step) under a unique dedupe key, in a fixed number of
# queries whatever the number of tasks. Rows that already exist are skipped by the database
# (ON CONFLICT DO NOTHING), so two sweeps at once create no duplicate. The new rows are
# enqueued for email after commit. `notification_deliver` sends one, like the webhooks:
#
#     claim (row lock, skip locked; unsent and due; attempts += 1 and a lease of
#     REMINDER_LEASE_SECONDS) -> commit -> SMTP, no transaction open
#     -> stamp (sent; or the failure with a retry, or given up), only if `attempts` is still
#        the claim's (the fencing token: a holder whose lease ran out and was claimed again
#        stamps nothing)
#
# A worker that dies mid-send leaves the row leased; once the lease runs out it is due again
# and the broker's redelivery (acks_late) or the sweep's requeue sends it, once. One window
# stays open: the SMTP server accepted the message and the worker died before the stamp
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


def reminder_policy_for(*, actor: User, plan) -> ReminderPolicy:
    """The plan's policy, created with the settings' defaults the first time (lazily).
    Creating it is part of changing it: the plan's coordinators only."""

    policy.ensure(actor, policy.VIEW, plan)
    existing = ReminderPolicy.objects.filter(plan=plan).first()
    if existing is not None:
        return existing
    policy.ensure(actor, policy.CHANGE, plan)
    with transaction.atomic():
        row = ReminderPolicy.defaults(plan.pk)
        row.full_clean(validate_unique=False)
        ReminderPolicy.objects.bulk_create([row], ignore_conflicts=True)
    return ReminderPolicy.objects.get(plan=plan)


@transaction.atomic
def reminder_policy_update(*, actor: User, reminder_policy, **fields) -> ReminderPolicy:
    """Change a plan's reminder policy (its coordinators)."""

    if reminder_policy.pk is None:
        policy.ensure(actor, policy.ADD, ReminderPolicy)
    policy.ensure(actor, policy.CHANGE, reminder_policy.plan)
    for name, value in fields.items():
        setattr(reminder_policy, name, value)
    reminder_policy.full_clean()
    reminder_policy.save()
    return reminder_policy


@dataclass
class SweepResult:
    created: int
    notification_ids: list[int]
    requeued: int


def _reminder_candidates(now: dt.datetime, horizon_days: int) -> list[dict]:
    """Tasks that may have a reminder due (one query): open tasks due within the horizon or
    past their deadline, and done tasks awaiting verification."""
    from django.db.models import Max, OuterRef, Q, Subquery

    from plans.models import StatusUpdate

    def sees(field):  # does the person the task names still see it (plans.permissions)?
        return ExpressionWrapper(policy.person_sees_task_q(field), output_field=BooleanField())

    last_move = (
        StatusUpdate.objects.filter(task=OuterRef("pk"), kind=StatusUpdate.Kind.DEADLINE_CHANGE)
        .order_by()
        .values("task")
        .annotate(at=Max("created_at"))
        .values("at")[:1]
    )
    horizon = now.date() + dt.timedelta(days=horizon_days + 2)
    return list(
        Task.objects.filter(
            Q(status__in=Task.OPEN_STATUSES, due_date__lte=horizon)
            | Q(status__in=Task.OPEN_STATUSES, deadline_at__lte=now)
            | Q(status=Task.Status.DONE, completed_at__isnull=False)
        )
        .annotate(
            last_move_at=Subquery(last_move),
            assignee_sees=sees("assignee_id"),
            manager_sees=sees("manager_id"),
        )
        .order_by()
        .values(
            "pk",
            "plan_id",
            "due_date",
            "deadline_at",
            "status",
            "completed_at",
            "created_at",
            "last_move_at",
            "assignee_id",
            "manager_id",
            "lead_organization_id",
            "assignee_sees",
            "manager_sees",
        )  # fmt: skip
    )


def _reminder_recipients(tasks: list[dict]) -> tuple[dict, dict]:
    """Lead-organization contributors and managers per organization, and coordinators per
    plan (two queries)."""
    from plans.models import PlanParticipant
    from tracker.models import Membership

    Role = Membership.Role
    lead: dict[int, set[int]] = {}
    for row in Membership.objects.filter(
        organization_id__in={t["lead_organization_id"] for t in tasks},
        role__in=[Role.CONTRIBUTOR, Role.MANAGER],
    ).values("organization_id", "user_id"):
        lead.setdefault(row["organization_id"], set()).add(row["user_id"])
    coordinators: dict[int, set[int]] = {}
    for row in PlanParticipant.objects.filter(
        plan_id__in={t["plan_id"] for t in tasks}, role=PlanParticipant.Role.COORDINATING
    ).values("plan_id", "organization__memberships__user_id", "organization__memberships__role"):
        user_id = row["organization__memberships__user_id"]
        if user_id is not None and row["organization__memberships__role"] == Role.COORDINATOR:
            coordinators.setdefault(row["plan_id"], set()).add(user_id)
    return lead, coordinators


def _who(kind: str, task: dict, rules, lead: dict, coordinators: dict) -> set[int]:
    from .schedule import (
        AWAITING_VERIFICATION,
        DUE_SOON,
        DUE_TODAY,
        ESCALATION_COORDINATORS,
        ESCALATION_MANAGER,
    )

    plan_coordinators = coordinators.get(task["plan_id"], set())
    # The assignee and manager are reminded only while they may still see the task.
    assignee = task["assignee_id"] if task["assignee_sees"] else None
    manager = task["manager_id"] if task["manager_sees"] else None
    if kind == ESCALATION_MANAGER:
        return {manager} - {None}
    if kind in (ESCALATION_COORDINATORS, AWAITING_VERIFICATION):
        return set(plan_coordinators)
    prefix = "due" if kind in (DUE_SOON, DUE_TODAY) else "overdue"
    users: set[int] = set()
    if getattr(rules, f"{prefix}_to_assignee") and assignee:
        users.add(assignee)
    if getattr(rules, f"{prefix}_to_manager") and manager:
        users.add(manager)
    if getattr(rules, f"{prefix}_to_lead_organization"):
        users |= lead.get(task["lead_organization_id"], set())
    if getattr(rules, f"{prefix}_to_coordinators"):
        users |= plan_coordinators
    return users


UNKNOWN_ZONE = "Reminders skip the users in time zone %r: %s does not know it."


@functools.lru_cache(maxsize=64)
def _zone_known(name: str) -> bool:
    """A user's zone this Python knows (the validator checks on write; a zone may still
    vanish with a tzdata update). One bad zone must not stop everyone's reminders."""
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        logger.warning(UNKNOWN_ZONE, name, "Python's tzdata")
        return False
    return True


@functools.lru_cache(maxsize=1)
def _postgresql_zones() -> frozenset[str]:
    """The zone names the PostgreSQL server knows (its tzdata may be older than Python's)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_timezone_names")
        return frozenset(row[0] for row in cursor.fetchall())


def _sweep_zones() -> list[str]:
    """The recipients' zones PostgreSQL can compute in; users in others are skipped, logged."""
    names = set(
        User.objects.filter(is_system=False)
        .order_by()
        .values_list("time_zone", flat=True)
        .distinct()
    )
    known = names & _postgresql_zones()
    for name in sorted(names - known):
        logger.warning(UNKNOWN_ZONE, name, "the PostgreSQL server")
    return sorted(known)


def reminders_due(*, now: dt.datetime, whole_day: bool = False) -> list[Notification]:
    """The Notification rows due at `now` (unsaved), in a fixed number of queries: policies,
    candidate tasks, lead organizations' members, plans' coordinators, users."""
    from .schedule import Policy, TaskFacts, due_reminders, zone

    policies = {row.plan_id: row for row in ReminderPolicy.objects.all()}
    default = ReminderPolicy.defaults()
    horizon = max([max(p.before_days or [0]) for p in [default, *policies.values()]], default=0)
    tasks = _reminder_candidates(now, horizon)
    if not tasks:
        return []
    lead, coordinators = _reminder_recipients(tasks)

    wanted: list[tuple[dict, object, set[int]]] = []
    user_ids: set[int] = set()
    for task in tasks:
        rules = policies.get(task["plan_id"], default)
        recipients = {
            kind: _who(kind, task, rules, lead, coordinators) for kind in Notification.Kind.values
        }
        wanted.append((task, rules, recipients))
        for users in recipients.values():
            user_ids |= users
    users = {
        row["pk"]: row
        for row in User.objects.filter(pk__in=user_ids, is_system=False).values("pk", "time_zone")
        if _zone_known(row["time_zone"])
    }

    created_at = _now()
    rows: list[Notification] = []
    for task, rules, recipients in wanted:
        facts = TaskFacts(
            due_date=task["due_date"],
            deadline_at=task["deadline_at"],
            status=task["status"],
            completed_at=task["completed_at"],
            anchor_at=max(filter(None, (task["created_at"], task["last_move_at"]))),
        )
        schedule_policy = Policy.of(rules)
        by_zone: dict[str, list] = {}
        for kind, user_set in recipients.items():
            for user_id in user_set:
                user = users.get(user_id)
                if user is None:
                    continue
                tz_name = user["time_zone"]
                if tz_name not in by_zone:
                    by_zone[tz_name] = due_reminders(
                        facts, schedule_policy, zone(tz_name), now, whole_day
                    )
                for due in by_zone[tz_name]:
                    if due.kind != kind:
                        continue
                    rows.append(
                        Notification(
                            recipient_id=user_id,
                            task_id=task["pk"],
                            kind=kind,
                            due_date=task["due_date"],
                            step=due.step,
                            dedupe_key=Notification.key(
                                user_id, task["pk"], kind, task["due_date"], due.step
                            ),
                            created_at=created_at,
                            due_at=due.due_at,
                            next_attempt_at=created_at,
                        )
                    )
    return rows


# The same reminders as `reminders_due`, computed by PostgreSQL in ONE statement that also
# inserts them (the sweep at scale: a million tasks). Time zones are PostgreSQL's
# `AT TIME ZONE`; the tests run every rule against both paths. Parameters: %(name)s.
REMINDERS_INSERT_SQL = """
WITH pol AS (
    SELECT p.id AS plan_id,
           COALESCE(rp.before_days, %(before_days)s::jsonb) AS before_days,
           COALESCE(rp.overdue_every_days, %(every)s) AS every,
           CASE WHEN rp.id IS NULL THEN %(esc_manager)s
                ELSE rp.escalate_manager_after_days END AS esc_manager,
           CASE WHEN rp.id IS NULL THEN %(esc_coordinators)s
                ELSE rp.escalate_coordinators_after_days END AS esc_coordinators,
           CASE WHEN rp.id IS NULL THEN %(verify)s
                ELSE rp.verification_reminder_after_days END AS verify,
           COALESCE(rp.due_to_assignee, %(due_to_assignee)s) AS due_assignee,
           COALESCE(rp.due_to_lead_organization, %(due_to_lead)s) AS due_lead,
           COALESCE(rp.due_to_manager, %(due_to_manager)s) AS due_manager,
           COALESCE(rp.due_to_coordinators, %(due_to_coordinators)s) AS due_coordinator,
           COALESCE(rp.overdue_to_assignee, %(overdue_to_assignee)s) AS overdue_assignee,
           COALESCE(rp.overdue_to_lead_organization, %(overdue_to_lead)s) AS overdue_lead,
           COALESCE(rp.overdue_to_manager, %(overdue_to_manager)s) AS overdue_manager,
           COALESCE(rp.overdue_to_coordinators, %(overdue_to_coordinators)s)
               AS overdue_coordinator
    FROM plans_plan p
    LEFT JOIN notifications_reminderpolicy rp ON rp.plan_id = p.id
),
cand AS (
    SELECT t.id, t.plan_id, t.due_date, t.deadline_at, t.status, t.completed_at, t.created_at,
           t.assignee_id, t.manager_id, t.lead_organization_id, t.visibility,
           t.status <> 'done' AND t.deadline_at > %(now)s AS before_due
    FROM plans_task t
    WHERE (t.status IN ('planned', 'in_progress', 'at_risk', 'blocked')
           AND t.due_date <= %(last_day)s)
       OR (t.status = 'done' AND t.completed_at IS NOT NULL)
),
-- The assignee and manager are reminded only while they may still see the task
-- (plans.permissions.person_sees_task_q): a superuser, or a member of its lead, a supporting
-- or a coordinating organization, or of any participant when it is visible plan-wide.
held AS (
    SELECT c.id AS task_id, c.assignee_id AS user_id, 'assignee' AS via, c.*
    FROM cand c WHERE c.assignee_id IS NOT NULL AND c.status <> 'done'
    UNION ALL
    SELECT c.id, c.manager_id, 'manager', c.*
    FROM cand c WHERE c.manager_id IS NOT NULL AND c.status <> 'done'
),
rcpt AS (
    SELECT h.task_id, h.user_id, h.via
    FROM held h
    WHERE EXISTS (SELECT 1 FROM tracker_user su WHERE su.id = h.user_id AND su.is_superuser)
       OR EXISTS (
           SELECT 1 FROM tracker_membership m
           WHERE m.user_id = h.user_id AND (
               m.organization_id = h.lead_organization_id
               OR m.organization_id IN (SELECT so.organization_id
                                        FROM plans_task_supporting_organizations so
                                        WHERE so.task_id = h.task_id)
               OR m.organization_id IN (SELECT pp.organization_id
                                        FROM plans_planparticipant pp
                                        WHERE pp.plan_id = h.plan_id
                                          AND (pp.role = 'coordinating'
                                               OR h.visibility = 'plan'))))
    UNION ALL
    SELECT c.id, m.user_id, 'lead'
    FROM cand c
    JOIN tracker_membership m ON m.organization_id = c.lead_organization_id
                             AND m.role IN ('contributor', 'manager')
    WHERE c.status <> 'done'
    UNION ALL
    SELECT c.id, m.user_id, 'coordinator'
    FROM cand c
    JOIN plans_planparticipant pp ON pp.plan_id = c.plan_id AND pp.role = 'coordinating'
    JOIN tracker_membership m ON m.organization_id = pp.organization_id
                             AND m.role = 'coordinator'
),
base AS (
    SELECT c.*, r.user_id, r.via, u.time_zone AS tz, pol.*,
           (%(now)s AT TIME ZONE u.time_zone)::date
               - CASE WHEN %(whole_day)s OR (%(now)s AT TIME ZONE u.time_zone)::time >= '09:00'
                      THEN 0 ELSE 1 END AS cutoff
    FROM cand c
    JOIN rcpt r ON r.task_id = c.id
    JOIN tracker_user u ON u.id = r.user_id AND NOT u.is_system
                       AND u.time_zone = ANY(%(zones)s)
    JOIN pol ON pol.plan_id = c.plan_id
),
-- Before the deadline: the most recent step whose day has come (its 09:00 before the
-- deadline), unless that day came before the task took its due date.
before_due AS (
    SELECT b.*, (
        SELECT MIN(d.value::int)
        FROM jsonb_array_elements_text(b.before_days) AS d(value)
        WHERE b.due_date - d.value::int <= b.cutoff
          AND ((b.due_date - d.value::int) + time '09:00') AT TIME ZONE b.tz < b.deadline_at
    ) AS step
    FROM base b
    WHERE b.before_due AND (
        (b.via = 'assignee' AND b.due_assignee) OR (b.via = 'manager' AND b.due_manager)
        OR (b.via = 'lead' AND b.due_lead) OR (b.via = 'coordinator' AND b.due_coordinator))
),
-- Past the deadline: day 0 is the day of the first 09:00 at or after it.
past AS (
    SELECT b.*,
           CASE WHEN (b.deadline_at AT TIME ZONE b.tz)::time <= '09:00'
                THEN (b.deadline_at AT TIME ZONE b.tz)::date
                ELSE (b.deadline_at AT TIME ZONE b.tz)::date + 1 END AS day0
    FROM base b
    WHERE b.status <> 'done' AND NOT b.before_due
),
due AS (
    SELECT user_id, id AS task_id,
           CASE WHEN step = 0 THEN 'due_today' ELSE 'due_soon' END AS kind,
           due_date, step, due_date - step AS day, tz
    FROM before_due
    WHERE step IS NOT NULL
      AND due_date - step >= (GREATEST(created_at, (
              SELECT MAX(su.created_at) FROM plans_statusupdate su
              WHERE su.task_id = before_due.id AND su.kind = 'deadline_change'
          )) AT TIME ZONE tz)::date
    UNION ALL
    SELECT user_id, id, 'overdue', due_date, period + 1, day0 + period * every, tz
    FROM (
        SELECT past.*,
               CASE WHEN every > 0 THEN (cutoff - day0) / every ELSE 0 END AS period
        FROM past
        WHERE day0 <= cutoff AND (
            (via = 'assignee' AND overdue_assignee) OR (via = 'manager' AND overdue_manager)
            OR (via = 'lead' AND overdue_lead)
            OR (via = 'coordinator' AND overdue_coordinator))
    ) AS overdue
    UNION ALL
    SELECT user_id, id, 'escalation_manager', due_date, esc_manager, day0 + esc_manager, tz
    FROM past
    WHERE via = 'manager' AND esc_manager IS NOT NULL AND day0 + esc_manager <= cutoff
    UNION ALL
    SELECT user_id, id, 'escalation_coordinators', due_date, esc_coordinators,
           day0 + esc_coordinators, tz
    FROM past
    WHERE via = 'coordinator' AND esc_coordinators IS NOT NULL
      AND day0 + esc_coordinators <= cutoff
    UNION ALL
    SELECT user_id, id, 'awaiting_verification', due_date, verify, day, tz
    FROM (
        SELECT b.*,
               CASE WHEN (b.completed_at AT TIME ZONE b.tz)::time <= '09:00'
                    THEN (b.completed_at AT TIME ZONE b.tz)::date
                    ELSE (b.completed_at AT TIME ZONE b.tz)::date + 1 END + b.verify AS day
        FROM base b
        WHERE b.status = 'done' AND b.via = 'coordinator' AND b.verify IS NOT NULL
    ) AS done
    WHERE day <= cutoff
)
INSERT INTO notifications_notification (
    recipient_id, task_id, kind, due_date, step, dedupe_key, created_at, due_at,
    email_sent_at, email_failed_at, failure_reason, attempts, next_attempt_at, read_at
)
SELECT user_id, task_id, kind, due_date, step,
       user_id || ':' || task_id || ':' || kind || ':' || to_char(due_date, 'YYYY-MM-DD')
           || ':' || step,
       %(created_at)s, (day + time '09:00') AT TIME ZONE tz,
       NULL, NULL, '', 0, %(created_at)s, NULL
FROM due
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id, task_id, kind, due_date, step
"""


def _reminders_insert_sql(now: dt.datetime, whole_day: bool, created_at: dt.datetime) -> list:
    """Insert the reminders due at `now` in one PostgreSQL statement; the new rows as
    (id, task_id, kind, due_date, step)."""
    from django.db import connection

    default = ReminderPolicy.defaults()
    # The horizon as a literal, not a subquery over the policies: the planner then sees how
    # few tasks are candidates (a subquery made it expect ~100k of a million and JIT-compile).
    policies_days = ReminderPolicy.objects.values_list("before_days", flat=True)
    horizon = max(day for days in [default.before_days, *policies_days] for day in [0, *days])
    params = {
        "now": now,
        "zones": _sweep_zones(),
        "last_day": now.astimezone(dt.UTC).date() + dt.timedelta(days=horizon + 2),
        "whole_day": whole_day,
        "created_at": created_at,
        "before_days": json.dumps(default.before_days),
        "every": default.overdue_every_days,
        "esc_manager": default.escalate_manager_after_days,
        "esc_coordinators": default.escalate_coordinators_after_days,
        "verify": default.verification_reminder_after_days,
        "due_to_assignee": default.due_to_assignee,
        "due_to_lead": default.due_to_lead_organization,
        "due_to_manager": default.due_to_manager,
        "due_to_coordinators": default.due_to_coordinators,
        "overdue_to_assignee": default.overdue_to_assignee,
        "overdue_to_lead": default.overdue_to_lead_organization,
        "overdue_to_manager": default.overdue_to_manager,
        "overdue_to_coordinators": default.overdue_to_coordinators,
    }
    with connection.cursor() as cursor:
        # A short OLTP statement: JIT compilation costs more than it saves (~1 s at 1M tasks).
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(REMINDERS_INSERT_SQL, params)
        return sorted(cursor.fetchall())


def _reminders_insert_python(now: dt.datetime, whole_day: bool) -> list:
    """The embedded (SQLite) path: `reminders_due` computes, bulk_create inserts; the new rows
    as (id, task_id, kind, due_date, step)."""
    rows = reminders_due(now=now, whole_day=whole_day)
    if not rows:
        return []
    keys = [row.dedupe_key for row in rows]
    existing = set(
        Notification.objects.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True)
    )
    fresh = [row for row in rows if row.dedupe_key not in existing]
    if not fresh:
        return []
    # A concurrent sweep may have inserted some meanwhile: the unique key wins.
    Notification.objects.bulk_create(fresh, ignore_conflicts=True)
    return list(
        Notification.objects.filter(
            dedupe_key__in=[row.dedupe_key for row in fresh], created_at=fresh[0].created_at
        )
        .order_by("pk")
        .values_list("pk", "task_id", "kind", "due_date", "step")
    )


# Reminder kinds that are also webhook events (once per task step, not per recipient).
REMINDER_EVENTS = {
    "due_soon": WebhookEvent.TASK_DUE_SOON,
    "due_today": WebhookEvent.TASK_DUE_SOON,
    "overdue": WebhookEvent.TASK_OVERDUE,
}


def reminder_webhooks_record(
    created, *, now: dt.datetime, enqueue: bool = True
) -> list[WebhookDelivery]:
    """task.due_soon / task.overdue deliveries for the reminder steps a sweep just created
    (`created`: rows of (id, task_id, kind, due_date, step)), to the active subscriptions
    listening whose organization may see the task, enqueued after commit (`enqueue=False`:
    recorded only; `webhook_deliveries_requeue`, run by beat, sends them).

    One delivery per (subscription, task, kind, due date, step) however many recipients or
    sweeps reach that step: its webhook-id is derived from them and unique. A fixed number of
    queries whatever the number of tasks: subscriptions, then the tasks with every
    organization's visibility, their relations as each organization may see them (one per
    organization), the inserted ids."""
    import hashlib

    steps = sorted(
        {(row[1], row[2], row[3], row[4]) for row in created if row[2] in REMINDER_EVENTS}
    )
    if not steps:
        return []
    events = set(REMINDER_EVENTS.values())
    listening = [
        subscription
        for subscription in WebhookSubscription.objects.filter(is_active=True).only(
            "pk", "organization", "events"
        )
        if any(subscription.listens_to(event) for event in events)
    ]
    if not listening:
        return []
    organization_ids = sorted({s.organization_id for s in listening})
    checks = {
        f"sees_{org_id}": ExpressionWrapper(
            policy.organization_task_q(org_id), output_field=BooleanField()
        )
        for org_id in organization_ids
    }
    tasks = {
        task.pk: task
        for task in Task.objects.with_overdue(now)
        .select_related("plan")
        .filter(pk__in={step[0] for step in steps})
        .annotate(**checks)
    }
    deliveries = []
    represented = {}  # (organization, task) -> the task as that organization may see it
    for org_id in organization_ids:
        plan_selectors.task_attach_relations(
            list(tasks.values()), reader=plan_selectors.SeenBy(organization_id=org_id)
        )
        with timezone.override(dt.UTC), translation.override("en"):
            represented.update(
                {(org_id, pk): TaskSerializer(task).data for pk, task in tasks.items()}
            )
    for task_id, kind, due_date, step in steps:
        task = tasks.get(task_id)
        if task is None:
            continue
        event = REMINDER_EVENTS[kind]
        for subscription in listening:
            if not subscription.listens_to(event):
                continue
            if not getattr(task, f"sees_{subscription.organization_id}"):
                continue
            payload = json.loads(
                json.dumps(
                    {
                        "type": event,
                        "timestamp": _iso(now),
                        "data": {
                            "task": represented[(subscription.organization_id, task_id)],
                            "reminder": {"kind": kind, "due_date": due_date, "step": step},
                        },
                    },
                    cls=DjangoJSONEncoder,
                )
            )
            delivery = _new_delivery(subscription, event, task_id, payload, now)
            key = f"{subscription.pk}:{event}:{task_id}:{kind}:{due_date.isoformat()}:{step}"
            delivery.message_id = "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]
            deliveries.append(delivery)
    if not deliveries:
        return []
    with transaction.atomic():
        WebhookDelivery.objects.bulk_create(deliveries, ignore_conflicts=True)
        inserted = list(
            WebhookDelivery.objects.filter(
                message_id__in=[d.message_id for d in deliveries], created_at=now
            ).order_by("pk")
        )
        if enqueue:
            _enqueue_on_commit([delivery.pk for delivery in inserted])
    return inserted


def reminders_sweep(
    *, now: dt.datetime | None = None, whole_day: bool = False, enqueue: bool = True
) -> SweepResult:
    """Insert the reminders due at `now` that do not exist yet (one statement on PostgreSQL,
    `reminders_due` elsewhere), record their webhook events, enqueue their emails after
    commit (`enqueue=False`: the caller delivers them), and re-enqueue emails whose message
    was lost."""

    from django.db import connection

    now = now or _now()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            created = _reminders_insert_sql(now, whole_day, _now())
        else:
            created = _reminders_insert_python(now, whole_day)
        new_ids = [row[0] for row in created]
        reminder_webhooks_record(created, now=now, enqueue=enqueue)
        requeue_ids = _notifications_lost(now) if enqueue else []
        if enqueue and (new_ids or requeue_ids):
            _enqueue_notifications_on_commit(new_ids + requeue_ids)
    return SweepResult(len(new_ids), new_ids, len(requeue_ids))


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


@dataclass(frozen=True)
class RequeueResult:
    notifications: int
    digests: int
    webhooks: int


def deliveries_requeue(*, now: dt.datetime | None = None) -> RequeueResult:
    """Enqueue again every reminder email, digest and webhook delivery whose message was lost
    (due for longer than DELIVERY_REQUEUE_AFTER_SECONDS). Beat runs it every
    DELIVERY_REQUEUE_EVERY_SECONDS on HOUSEKEEPING_QUEUE; a run that meets a database or
    broker outage fails and the next one catches up."""
    now = now or _now()
    with transaction.atomic():
        notification_ids = _notifications_lost(now)
        if notification_ids:
            _enqueue_notifications_on_commit(notification_ids)
        digest_ids = _digests_lost(now)
        if digest_ids:
            _enqueue_digests_on_commit(digest_ids)
    webhooks = webhook_deliveries_requeue(now=now)
    return RequeueResult(len(notification_ids), len(digest_ids), webhooks)


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
    import smtplib

    from celery.exceptions import SoftTimeLimitExceeded

    try:
        message = build()
        message.message()  # renders every header: a newline in the subject fails here
    except (*DB_OUTAGE_ERRORS, SoftTimeLimitExceeded):
        raise
    except Exception as exc:  # noqa: BLE001 - whatever breaks the build is permanent
        return _not_built(exc, "Could not build an email.")
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
    try:
        for index, claim in enumerate(leases):
            if index and _now() >= deadline:
                _notifications_give_back(leases[index:], schedule_retry)
                break
            _mail_connection_open(connection)
            error = _notification_send(claim, connection)
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


@transaction.atomic
def notification_mark_read(*, user: User, notification, now: dt.datetime | None = None):
    """Mark one of the user's own notifications read (again: unchanged)."""

    if notification.recipient_id != user.pk:
        raise NotVisible(obj=notification)
    if notification.read_at is None:
        notification.read_at = now or _now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=notification.read_at
        )
    return notification


@transaction.atomic
def notifications_mark_all_read(*, user: User, now: dt.datetime | None = None) -> int:
    """Mark all of the user's unread notifications read; returns how many."""

    return Notification.objects.filter(recipient=user, read_at__isnull=True).update(
        read_at=now or _now()
    )


# --- Preferences and the daily digest --------------------------------------------------------
#
# Preferences: what a person wants by email (their NotificationPreference row, created the
# first time they change something; until then every email and no digest) together with their
# language and time zone (on the user, written by tracker.services.user_update_preferences),
# read and changed in one place, by the person themself only.
#
# The digest: `digests_sweep` (beat, every REMINDER_SWEEP_SECONDS) creates one Digest per
# opted-in user and local day once 08:00 has passed in the user's zone, in a fixed number of
# queries (users grouped by zone, each zone's day computed in Python); (user, day) is unique,
# so however often or concurrently it runs a digest exists once. `digest_deliver` follows the
# webhooks' and reminders' pattern: claim (row lock, skip locked; attempts += 1 and a lease of
# REMINDER_LEASE_SECONDS) -> commit -> compute the content and send, no transaction open ->
# stamp, only while `attempts` is still the claim's (sent; empty: nothing to report, not
# emailed; failed with the next attempt scheduled; or not sent, with the reason).


PREFERENCE_EMAIL_FIELDS = tuple(
    NotificationPreference.field_for(kind) for kind in NotificationKind.values
)
PREFERENCE_FIELDS = (*PREFERENCE_EMAIL_FIELDS, "digest")
PREFERENCE_USER_FIELDS = ("language", "time_zone")
PREFERENCE_UNKNOWN = gettext_lazy("Unknown preference.")
PREFERENCE_NOT_BOOLEAN = gettext_lazy("Must be true or false.")


def notification_preferences_get(*, user: User) -> NotificationPreference:
    """The user's preferences: their row, or (none yet) an unsaved one with the defaults,
    every email on and no digest. Reading never writes. Language and time zone are
    `.user.language` and `.user.time_zone`."""

    row = NotificationPreference.objects.filter(user=user).first()
    if row is None:
        return NotificationPreference(user=user)
    row.user = user
    return row


def notification_preferences_update(*, actor: User, user: User, **fields) -> NotificationPreference:
    """Change a person's preferences: `email_<kind>` and `digest` (their row, created on the
    first change) and `language` and `time_zone` (their user), in one transaction. Who may is
    the policy's (`plans.permissions`): the person themself, and superusers; anyone else's
    preferences are out of sight (NotVisible)."""

    policy.ensure(actor, policy.ADD, NotificationPreference)
    known = {*PREFERENCE_FIELDS, *PREFERENCE_USER_FIELDS}
    errors = {name: [PREFERENCE_UNKNOWN] for name in sorted(set(fields) - known)}
    errors |= {
        name: [PREFERENCE_NOT_BOOLEAN]
        for name in PREFERENCE_FIELDS
        if name in fields and not isinstance(fields[name], bool)
    }
    if errors:
        raise ValidationError(errors)
    own = {name: value for name, value in fields.items() if name in PREFERENCE_FIELDS}
    on_user = {name: value for name, value in fields.items() if name in PREFERENCE_USER_FIELDS}
    with transaction.atomic():
        # Created with the defaults the first time (a concurrent first change: the unique
        # user wins), then checked against the policy under a row lock: someone else's row
        # rolls back (NetBox's re-check after the write).
        NotificationPreference.objects.bulk_create(
            [NotificationPreference(user=user)], ignore_conflicts=True
        )
        row = NotificationPreference.objects.select_for_update().get(user=user)
        policy.ensure(actor, policy.CHANGE, row)
        if on_user:
            # A locked copy: a refusal leaves the caller's user object as it was.
            locked = User.objects.select_for_update().get(pk=user.pk)
            tracker_services.user_update_preferences(user=locked, **on_user)
            for name in on_user:
                setattr(user, name, getattr(locked, name))
        changed = [name for name, value in own.items() if getattr(row, name) != value]
        for name in changed:
            setattr(row, name, own[name])
        row.full_clean(exclude=["user"], validate_unique=False)
        if changed:
            row.save(update_fields=[*changed, "updated_at"])
        row.user = user
        return row


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
