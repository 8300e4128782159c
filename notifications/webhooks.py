"""Every write of the webhooks: subscriptions, recording events, delivering them.

Subscriptions are written by the organization's coordinators and managers (and superusers),
as `plans.permissions` says; each service checks its actor.

Events (`plans.signals.task_changed`, after the plan's commit) become one WebhookDelivery row
per active subscription that listens to the event and whose organization may see the task
(`policy.organization_task_q`); the rows exist whether or not Celery runs. Delivery is
enqueued after commit, one message per batch of ids, and made by `webhooks_deliver_batch`
through the outbox (see "Delivery" below):

    claim (one statement, skip locked; a lease keeps others off) -> POST each, no lock held
    -> stamp each, fenced on its attempt number (succeeded; or failed with the next attempt
    scheduled; or gave up)

A failed attempt is retried with exponential backoff; after WEBHOOK_MAX_ATTEMPTS the delivery
is given up, and WEBHOOK_DISABLE_AFTER given-up deliveries in a row disable the subscription.
`webhook_deliveries_requeue` (run by beat) re-enqueues what a lost message or a dead worker
left behind. Calling `webhook_deliver` (a batch of one) again for a finished delivery sends
nothing.
"""

import datetime as dt
import json
import logging
import operator
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass
from functools import reduce

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, F, Q
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
    """One message per batch of at most `batch_size()` ids (notifications.deliver_webhooks)."""
    from .tasks import deliver_webhooks_task

    outbox.enqueue_batches(
        deliver_webhooks_task,
        delivery_ids,
        queue=settings.WEBHOOK_QUEUE,
        countdown=countdown,
        size=batch_size(),
    )


def _enqueue_on_commit(delivery_ids: list[int], countdown: int | None = None) -> None:
    """After commit, as `_enqueue` (outbox.enqueue_batches_on_commit): a broker outage is
    logged, not raised (the rows stay due and the requeue sends them); a task's soft time
    limit is not swallowed."""
    from .tasks import deliver_webhooks_task

    outbox.enqueue_batches_on_commit(
        deliver_webhooks_task,
        delivery_ids,
        queue=settings.WEBHOOK_QUEUE,
        countdown=countdown,
        size=batch_size(),
    )


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
#
# Through the outbox (notifications.outbox), in batches. `webhook_events_record`, the ping, a
# retry and the requeue enqueue one message per batch of at most `batch_size()` ids on
# WEBHOOK_QUEUE (task notifications.deliver_webhooks). A worker runs `webhooks_deliver_batch`:
#
#     claim:  one UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n)
#             RETURNING (open and due; attempts += 1, leased for CLAIM_LEASE), then the rows
#             with their subscriptions (one query) and the tasks' visibility to those
#             subscriptions' organizations (one query). Rows not to be sent (subscription
#             disabled, task no longer visible, attempts used up, secret unreadable) are
#             finished together, their attempt not counted.
#     send:   one POST at a time, no transaction open, in one lane per subscription, the
#             lanes taken in turn (round robin); a receiver that did not answer (connection
#             failure or timeout) has its lane moved behind every lane still answering, so a
#             hanging receiver costs the others at most one timeout per batch.
#     stamp:  each outcome right after its send, only while the claim's attempt number is
#             still the row's (the fence: a worker whose lease ran out and whose row was
#             claimed again records nothing); retries are enqueued after the batch, one
#             message per delay.
#     give back: no send starts after `_send_deadline` (inside the lease and the task's soft
#             time limit); the rows left are given back (due now, attempt not counted) and
#             enqueued again.
#
# HTTP connections are not reused inside a batch: webhook_http.post resolves and checks the
# target at every send and connects to the address it checked; a pooled connection is keyed
# on that address, not on the TLS name it was verified for, so reusing it could carry another
# host name's request over it.
#
# Lock order: a transaction that writes delivery rows after the claim first locks their
# subscriptions (FOR NO KEY UPDATE, in pk order), as a subscription's update or delete locks
# the subscription before touching its deliveries. The claim locks only delivery rows and
# skips locked ones (it never waits), and the give-back writes one row per autocommit
# statement (one lock at a time): neither can close a cycle of waits.

# A webhook batch is smaller than an email batch: each POST may take up to
# WEBHOOK_TIMEOUT_SECONDS, and smaller batches spread the subscriptions' deliveries over more
# messages (and workers) and give a batch's last rows less time to wait.
WEBHOOK_BATCH_MAX = 50

DELIVERY_OPEN_SQL = "status IN ('pending', 'failed')"

# The delivery tasks' limits, inside the lease: no second claimer starts while one still runs.
SOFT_TIME_LIMIT, HARD_TIME_LIMIT = outbox.time_limits(int(CLAIM_LEASE.total_seconds()))


def batch_size() -> int:
    """Ids per message of notifications.deliver_webhooks."""
    return min(outbox.batch_size(), WEBHOOK_BATCH_MAX)


@dataclass(frozen=True)
class _Claim:
    """A delivery leased for one attempt. `attempts`, the row's count after the claim, is the
    fencing token: the outcome is stamped only while the row still has it."""

    delivery: WebhookDelivery
    attempts: int
    url: str
    secrets: list[str]
    body: bytes
    claimed_at: dt.datetime
    lease_end: dt.datetime

    @property
    def delivery_id(self) -> int:
        return self.delivery.pk

    @property
    def subscription_id(self) -> int:
        return self.delivery.subscription_id

    @property
    def message_id(self) -> str:
        return self.delivery.message_id


@dataclass(frozen=True)
class _Outcome:
    status_code: int | None
    error: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def answered(self) -> bool:
        return self.status_code is not None


def retry_delay(attempts: int) -> int:
    """Seconds to wait after the `attempts`-th failed attempt."""
    return outbox.retry_delay(attempts, base=RETRY_BASE_SECONDS, cap=RETRY_MAX_SECONDS)


def _count_failure(subscription: WebhookSubscription, now: dt.datetime, count: int = 1) -> None:
    """`count` more deliveries given up in a row; too many disable the subscription. The
    caller holds the subscription's lock."""
    subscription.consecutive_failures += count
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


def _lock_subscriptions(subscription_ids) -> dict[int, WebhookSubscription]:
    """Lock the subscriptions (FOR NO KEY UPDATE, in pk order: two batches lock a shared
    pair in the same order)."""
    return {
        subscription.pk: subscription
        for subscription in WebhookSubscription.objects.select_for_update(no_key=True)
        .filter(pk__in=sorted(set(subscription_ids)))
        .order_by("pk")
    }


def _visible(deliveries: list[WebhookDelivery]) -> set[tuple[int, int]]:
    """(task id, organization id) of the deliveries' tasks their subscription's organization
    may still see, by the policy, in ONE query."""
    pairs = {
        (delivery.task_id, delivery.subscription.organization_id)
        for delivery in deliveries
        if delivery.event != PING_EVENT and delivery.task_id is not None
    }
    if not pairs:
        return set()
    organization_ids = sorted({org_id for _task_id, org_id in pairs})
    checks = {
        f"org_{org_id}": ExpressionWrapper(
            policy.organization_task_q(org_id), output_field=BooleanField()
        )
        for org_id in organization_ids
    }
    rows = Task.objects.filter(pk__in=sorted({task_id for task_id, _org in pairs})).values(
        "pk", **checks
    )
    return {
        (row["pk"], org_id) for row in rows for org_id in organization_ids if row[f"org_{org_id}"]
    }


def _claims(delivery_ids: list[int]) -> list[_Claim]:
    """Lease the claimable ones of `delivery_ids` for one attempt each (outbox.claim: one
    statement), load them with their subscriptions (one query) and check their tasks'
    visibility (one query). Those not to be sent are finished without an attempt."""
    ids = list(dict.fromkeys(int(pk) for pk in delivery_ids))
    if not ids:
        return []
    now = _now()
    claimed = outbox.claim(
        WebhookDelivery,
        ids,
        open_sql=DELIVERY_OPEN_SQL,
        now=now,
        lease=CLAIM_LEASE,
        limit=len(ids),
    )
    if not claimed:
        return []
    deliveries = list(
        WebhookDelivery.objects.select_related("subscription").filter(pk__in=claimed).order_by("pk")
    )
    visible = _visible(deliveries)
    claims, unsent = [], []
    for delivery in deliveries:
        attempts = claimed[delivery.pk]
        delivery.attempts = attempts
        delivery.next_attempt_at = now + CLAIM_LEASE
        subscription = delivery.subscription
        reason, failure, secrets = "", False, []
        if not subscription.is_active:
            reason = SUBSCRIPTION_DISABLED
        elif (
            delivery.event != PING_EVENT
            and (delivery.task_id, subscription.organization_id) not in visible
        ):
            reason = NO_LONGER_VISIBLE
        elif attempts - 1 >= settings.WEBHOOK_MAX_ATTEMPTS:
            # Earlier attempts never reported back (their worker died): stop here.
            reason, failure = delivery.last_error or LEASE_EXPIRED, True
        else:
            try:
                secrets = subscription.signing_secrets(now)
            except encryption.InvalidToken:
                logger.error("Webhook %s: the signing secret cannot be decrypted.", subscription.pk)
                reason = SECRET_UNREADABLE
        if reason:
            unsent.append((delivery, attempts, reason, failure))
            continue
        body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
        claims.append(
            _Claim(
                delivery=delivery,
                attempts=attempts,
                url=subscription.url,
                secrets=secrets,
                body=body,
                claimed_at=now,
                lease_end=now + CLAIM_LEASE,
            )
        )
    if unsent:
        _finish_unsent(unsent, now)
    return claims


def _finish_unsent(unsent: list[tuple], now: dt.datetime) -> None:
    """Give up (delivery, attempts, reason, counts as a failure) rows this attempt does not
    send, their attempt not counted, if the attempt still holds them. One transaction: the
    subscriptions locked first, one UPDATE per reason (one per row only for rows whose
    attempts ran out: each counts a failure of its subscription)."""
    with transaction.atomic():
        subscriptions = _lock_subscriptions(delivery.subscription_id for delivery, *_ in unsent)
        groups: dict[str, list] = defaultdict(list)
        failed: dict[int, int] = defaultdict(int)
        for delivery, attempts, reason, failure in unsent:
            if failure:
                if outbox.held(WebhookDelivery, delivery.pk, attempts, status__in=OPEN).update(
                    status=Status.GAVE_UP,
                    last_error=reason[:500],
                    next_attempt_at=None,
                    attempts=attempts - 1,
                ):
                    failed[delivery.subscription_id] += 1
            else:
                groups[reason].append(Q(pk=delivery.pk, attempts=attempts))
        for reason, fences in groups.items():
            WebhookDelivery.objects.filter(reduce(operator.or_, fences), status__in=OPEN).update(
                status=Status.GAVE_UP,
                last_error=reason[:500],
                next_attempt_at=None,
                attempts=F("attempts") - 1,
            )
        for subscription_id, count in failed.items():
            if subscription_id in subscriptions:
                _count_failure(subscriptions[subscription_id], now, count)


def _claim(delivery_id: int) -> _Claim | None:
    """Take one delivery for one attempt if it is due and nobody holds it (a batch of one)."""
    claims = _claims([delivery_id])
    return claims[0] if claims else None


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


def _lease_lost(delivery_id: int) -> None:
    logger.warning(
        "Webhook delivery %s: a newer attempt claimed it after this one's lease ran out (or it "
        "was deleted); this attempt's outcome is not recorded.",
        delivery_id,
    )


def _stamp(claim: _Claim, outcome: _Outcome) -> WebhookDelivery | None:
    """Record the attempt's outcome if its lease still holds the row (the claim's attempt
    number is the row's, the row still open); the delivery as stamped (its `subscription`
    as locked and updated here), or None when a newer attempt took it over or it is gone.
    A retry's message is the caller's to enqueue."""
    delivery = claim.delivery
    with transaction.atomic():
        now = _now()
        # Lock order: subscription, then delivery.
        subscription = (
            WebhookSubscription.objects.select_for_update(no_key=True)
            .filter(pk=claim.subscription_id)
            .first()
        )
        if subscription is None:
            _lease_lost(claim.delivery_id)
            return None  # deleted meanwhile, with its deliveries
        fields = {"last_status_code": outcome.status_code, "last_error": outcome.error[:500]}
        if outcome.ok:
            fields.update(status=Status.SUCCEEDED, delivered_at=now, next_attempt_at=None)
        elif claim.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            fields.update(status=Status.GAVE_UP, next_attempt_at=None)
        else:
            delay = retry_delay(claim.attempts)
            fields.update(status=Status.FAILED, next_attempt_at=now + dt.timedelta(seconds=delay))
        held = outbox.held(WebhookDelivery, claim.delivery_id, claim.attempts, status__in=OPEN)
        if not held.update(**fields):
            _lease_lost(claim.delivery_id)
            return None
        if outcome.ok and subscription.consecutive_failures:
            subscription.consecutive_failures = 0
            subscription.save(update_fields=["consecutive_failures", "updated_at"])
        elif fields["status"] == Status.GAVE_UP:
            _count_failure(subscription, now)
    for name, value in fields.items():
        setattr(delivery, name, value)
    delivery.subscription = subscription
    return delivery


def _send_deadline(claimed_at: dt.datetime) -> dt.datetime:
    """Until when a batch claimed at `claimed_at` may start another send: a send and its
    stamp end inside the lease (outbox.send_deadline) and before the task's soft limit."""
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    by_limit = claimed_at + dt.timedelta(seconds=SOFT_TIME_LIMIT - timeout) - CLOCK_SLACK
    return min(outbox.send_deadline(claimed_at, CLAIM_LEASE, timeout), by_limit)


def _give_back(claims: list[_Claim]) -> list[int]:
    """Rows the batch has no time left for: due now, attempt not counted (fenced), enqueued
    again."""
    released = outbox.release(
        WebhookDelivery,
        {claim.delivery_id: claim.attempts for claim in claims},
        now=_now(),
        status__in=OPEN,
    )
    logger.info("Lease nearly over: %s webhook deliveries given back.", len(released))
    if released:
        _enqueue_on_commit(released)
    return released


def webhooks_deliver_batch(*, delivery_ids: list[int]) -> list[WebhookDelivery]:
    """Make one attempt at each due delivery of `delivery_ids` nobody else holds; the
    deliveries this call stamped (in the order sent). See the comment above `_Claim`: one
    claim statement, sends with no transaction open in round-robin lanes per subscription
    (one that did not answer goes behind the others), each outcome stamped fenced right
    after its send, the rest given back when the lease runs short."""
    claims = _claims(delivery_ids)
    if not claims:
        return []
    deadline = _send_deadline(claims[0].claimed_at)
    answering: dict[int, deque] = {}
    for claim in claims:
        answering.setdefault(claim.subscription_id, deque()).append(claim)
    silent: dict[int, deque] = {}  # lanes of receivers that did not answer in this batch
    results: list[WebhookDelivery] = []
    retries: dict[int, list[int]] = defaultdict(list)
    sent = 0
    try:
        while answering or silent:
            lanes = answering or silent
            subscription_id = next(iter(lanes))
            lane = lanes.pop(subscription_id)
            if sent and _now() >= deadline:
                rest = [lane, *answering.values(), *silent.values()]
                _give_back([claim for left in rest for claim in left])
                break
            claim = lane.popleft()
            outcome = _send(claim)
            sent += 1
            if not outcome.ok:
                logger.info("Webhook delivery %s failed: %s", claim.delivery_id, outcome.error)
            # The POST happened: its outcome is recorded (a 2xx stamped, never posted again)
            # even through a short database outage, while the lease holds the row.
            stamped = retry_db_write(
                lambda claim=claim, outcome=outcome: _stamp(claim, outcome),
                until=_stamp_deadline(claim.lease_end, claim.claimed_at),
                what=f"Stamping webhook delivery {claim.delivery_id}",
            )
            if stamped is not None:
                results.append(stamped)
                if stamped.status == Status.FAILED:
                    retries[retry_delay(stamped.attempts)].append(stamped.pk)
                if not stamped.subscription.is_active and lane:
                    # Disabled meanwhile (by hand, or after this failure): the rest stays unsent.
                    unsent = [(c.delivery, c.attempts, SUBSCRIPTION_DISABLED, False) for c in lane]
                    _finish_unsent(unsent, _now())
                    lane.clear()
            if lane:
                # Round robin: to the back of its lanes, or behind every answering lane.
                (lanes if outcome.answered or lanes is silent else silent)[subscription_id] = lane
    finally:
        for delay, ids in sorted(retries.items()):
            _enqueue_on_commit(ids, countdown=delay)
    return results


def webhook_deliver(*, delivery_id: int) -> WebhookDelivery | None:
    """Make one attempt at a due delivery (a batch of one); returns it stamped, or None when
    there was nothing to send (gone, finished, not yet due, or held by another worker)."""
    results = webhooks_deliver_batch(delivery_ids=[delivery_id])
    return results[0] if results else None


def webhook_deliveries_requeue(*, now: dt.datetime | None = None) -> int:
    """Enqueue deliveries that are due for longer than DELIVERY_REQUEUE_AFTER_SECONDS: their
    message was lost (broker down at commit) or their worker died mid-attempt. Returns how
    many (enqueued one message per batch)."""
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
