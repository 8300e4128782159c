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

import datetime as dt
import json
import logging
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper
from django.utils import timezone, translation

from plans import permissions as policy
from plans import selectors as plan_selectors
from plans.api.serializers import StatusUpdateSerializer, TaskSerializer
from plans.exceptions import NotVisible
from plans.models import StatusUpdate, Task
from tracker.models import Organization, User

from . import encryption, outbox, signing, webhook_http
from .exceptions import OrganizationNotManaged, WebhookDisabled
from .models import (
    PING_EVENT,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from .outbox import CLOCK_SLACK, LEASE_EXPIRED, _now, _stamp_deadline, requeue_after, retry_db_write

logger = logging.getLogger(__name__)


Status = WebhookDelivery.Status

OPEN = (Status.PENDING, Status.FAILED)


# Backoff after the n-th failed attempt: BASE * 2^(n-1), capped. The cap stays below the
# broker's visibility timeout (1 hour), so a countdown message is never delivered twice.
RETRY_BASE_SECONDS = 30

RETRY_MAX_SECONDS = 30 * 60

# While an attempt is in flight its row is leased: nobody else claims it until then.
CLAIM_LEASE = dt.timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)

REQUEUE_BATCH = 500

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


_UNSET = object()


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
    return outbox.retry_delay(attempts, base=RETRY_BASE_SECONDS, cap=RETRY_MAX_SECONDS)


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
        # Due now: the new message may claim them; the next sweep leaves them alone (and
        # none is requeued while WEBHOOK_QUEUE still holds messages: see outbox.requeue_lost).
        ids = outbox.requeue_lost(
            WebhookDelivery.objects.filter(status__in=OPEN),
            now=now,
            after=requeue_after(),
            limit=REQUEUE_BATCH,
            queue=settings.WEBHOOK_QUEUE,
        )
        if ids:
            _enqueue_on_commit(ids)
    return len(ids)
