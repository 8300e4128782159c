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

import httpx
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper
from django.utils import timezone

from plans import permissions as policy
from plans import selectors as plan_selectors
from plans.api.serializers import StatusUpdateSerializer, TaskSerializer
from plans.exceptions import NotVisible
from plans.models import StatusUpdate, Task
from tracker.models import Organization, User

from . import encryption, signing
from .exceptions import OrganizationNotManaged, WebhookDisabled
from .models import (
    PING_EVENT,
    Notification,
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
# A delivery due this long ago without an attempt lost its message: requeue it.
REQUEUE_AFTER = dt.timedelta(minutes=5)
REQUEUE_BATCH = 500
# Tolerated clock difference between the scheduling and the executing machine.
CLOCK_SLACK = dt.timedelta(seconds=5)
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
TIMED_OUT = "Timed out after {seconds} s."
HTTP_ERROR = "HTTP {code} {reason}"

_UNSET = object()


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
    if fields:
        subscription.save(update_fields=[*fields, "updated_at"])
    return subscription


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


def _event_payload(event: str, task_id: int, now: dt.datetime, extra: dict) -> dict | None:
    """The Standard Webhooks body: {"type", "timestamp", "data": {"task": ..., ...}}. The task
    is shown exactly as the API shows it; times in UTC whatever zone is active."""
    task = Task.objects.with_overdue(now).select_related("plan").filter(pk=task_id).first()
    if task is None:
        return None
    plan_selectors.task_attach_relations([task])
    with timezone.override(dt.UTC):
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
    payload = _event_payload(event, task_id, now, extra)
    if payload is None:
        return []
    with transaction.atomic():
        deliveries = WebhookDelivery.objects.bulk_create(
            [_new_delivery(s, event, task_id, payload, now) for s in targets]
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
        )


def _send(claim: _Claim) -> _Outcome:
    """POST the signed body. No database transaction is open here."""
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **signing.headers(claim.secrets, claim.message_id, int(time.time()), claim.body),
    }
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            # Streamed and never read: a receiver's body is not ours to download.
            client.stream("POST", claim.url, content=claim.body, headers=headers) as response,
        ):
            code, reason = response.status_code, response.reason_phrase
    except httpx.TimeoutException:
        return _Outcome(None, TIMED_OUT.format(seconds=timeout))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return _Outcome(None, f"{type(exc).__name__}: {exc}")
    if 200 <= code < 300:
        return _Outcome(code, "")
    return _Outcome(code, HTTP_ERROR.format(code=code, reason=reason).strip())


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
    return _stamp(claim, outcome)


def webhook_deliveries_requeue(*, now: dt.datetime | None = None) -> int:
    """Enqueue deliveries that are due for longer than REQUEUE_AFTER: their message was lost
    (broker down at commit) or their worker died mid-attempt. Returns how many."""
    now = now or _now()
    with transaction.atomic():
        ids = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(status__in=OPEN, next_attempt_at__lte=now - REQUEUE_AFTER)
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
# enqueued for email after commit; `notification_deliver` claims a row (unsent, row lock,
# skip locked), sends it and stamps it, in one transaction, so delivering twice sends once.

REMINDER_RETRY_BASE_SECONDS = 60
# Below the broker's 1-hour visibility timeout: a countdown message is never redelivered.
REMINDER_RETRY_MAX_SECONDS = 30 * 60
# Unsent notifications due this long ago lost their message: the sweep enqueues them again.
REMINDER_REQUEUE_AFTER = dt.timedelta(minutes=10)
REMINDER_REQUEUE_BATCH = 1000

NO_EMAIL_ADDRESS = "Not emailed: the user has no email address (in-app only)."
USER_INACTIVE = "Not emailed: the user account is inactive (in-app only)."
GAVE_UP = "Gave up after {attempts} attempts: {error}"
REFUSED = "Refused by the mail server: {error}"


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
        .annotate(last_move_at=Subquery(last_move))
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
    if kind == ESCALATION_MANAGER:
        return {task["manager_id"]} - {None}
    if kind in (ESCALATION_COORDINATORS, AWAITING_VERIFICATION):
        return set(plan_coordinators)
    prefix = "due" if kind in (DUE_SOON, DUE_TODAY) else "overdue"
    users: set[int] = set()
    if getattr(rules, f"{prefix}_to_assignee") and task["assignee_id"]:
        users.add(task["assignee_id"])
    if getattr(rules, f"{prefix}_to_manager") and task["manager_id"]:
        users.add(task["manager_id"])
    if getattr(rules, f"{prefix}_to_lead_organization"):
        users |= lead.get(task["lead_organization_id"], set())
    if getattr(rules, f"{prefix}_to_coordinators"):
        users |= plan_coordinators
    return users


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


def reminders_sweep(
    *, now: dt.datetime | None = None, whole_day: bool = False, enqueue: bool = True
) -> SweepResult:
    """Insert the reminders due at `now` that do not exist yet; enqueue their emails after
    commit (`enqueue=False`: the caller delivers them), and re-enqueue emails whose message
    was lost."""

    now = now or _now()
    rows = reminders_due(now=now, whole_day=whole_day)
    new_ids: list[int] = []
    with transaction.atomic():
        if rows:
            keys = [row.dedupe_key for row in rows]
            existing = set(
                Notification.objects.filter(dedupe_key__in=keys).values_list(
                    "dedupe_key", flat=True
                )
            )
            fresh = [row for row in rows if row.dedupe_key not in existing]
            if fresh:
                # A concurrent sweep may have inserted some meanwhile: the unique key wins.
                Notification.objects.bulk_create(fresh, ignore_conflicts=True)
                new_ids = list(
                    Notification.objects.filter(
                        dedupe_key__in=[row.dedupe_key for row in fresh],
                        created_at=fresh[0].created_at,
                    )
                    .order_by("pk")
                    .values_list("pk", flat=True)
                )
        requeue_ids = _notifications_lost(now) if enqueue else []
        if enqueue and (new_ids or requeue_ids):
            _enqueue_notifications_on_commit(new_ids + requeue_ids)
    return SweepResult(len(new_ids), new_ids, len(requeue_ids))


def _notifications_lost(now: dt.datetime) -> list[int]:
    """Unsent notifications due for longer than REMINDER_REQUEUE_AFTER (broker down at
    commit, worker died): due again now, to be enqueued."""

    ids = list(
        Notification.objects.filter(
            email_sent_at__isnull=True,
            email_failed_at__isnull=True,
            next_attempt_at__lte=now - REMINDER_REQUEUE_AFTER,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:REMINDER_REQUEUE_BATCH]
    )
    if ids:
        Notification.objects.filter(pk__in=ids).update(next_attempt_at=now)
    return ids


def _enqueue_notifications(ids: list[int], countdown: int | None = None) -> None:
    from .tasks import deliver_notification_task

    for notification_id in ids:
        deliver_notification_task.apply_async(
            args=[notification_id], countdown=countdown, queue=settings.NOTIFICATION_QUEUE
        )


def _enqueue_notifications_on_commit(ids: list[int], countdown: int | None = None) -> None:
    def enqueue_notifications():  # robust: a broker outage is caught up by the next sweep
        _enqueue_notifications(ids, countdown)

    transaction.on_commit(enqueue_notifications, robust=True)


def reminder_retry_delay(attempts: int) -> int:
    return min(REMINDER_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), REMINDER_RETRY_MAX_SECONDS)


def _permanent(exc: Exception) -> bool:
    """A refusal no retry will change: every recipient refused with a 5xx code."""
    import smtplib

    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _message in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    return False


def _error_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:400]


@dataclass(frozen=True)
class DeliveryResult:
    notification_id: int
    sent: bool
    retry_in: int | None = None
    reason: str = ""


def notification_deliver(
    *, notification_id: int, connection=None, schedule_retry: bool = True
) -> DeliveryResult | None:
    """Email one notification if it is still unsent and nobody else holds it.

    Returns None when there is nothing to do (gone, already sent or failed, not yet due, or
    claimed by another worker). A transient failure (SMTP error, connection) counts an
    attempt and schedules the next one with backoff (`schedule_retry=False`: the next sweep
    re-enqueues it); after REMINDER_MAX_ATTEMPTS, or on a permanent refusal, the failure is
    recorded. Users without an email address or inactive ones keep the in-app notification.
    """
    import smtplib

    from . import emails

    with transaction.atomic():
        now = _now()
        notification = (
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("recipient", "task", "task__plan")
            .filter(
                pk=notification_id,
                email_sent_at__isnull=True,
                email_failed_at__isnull=True,
            )
            .filter(Q_due(now))
            .first()
        )
        if notification is None:
            return None
        recipient = notification.recipient
        reason = ""
        if not recipient.is_active:
            reason = USER_INACTIVE
        elif not recipient.email:
            reason = NO_EMAIL_ADDRESS
        if reason:
            _notification_finish(notification, failed_at=now, reason=reason)
            return DeliveryResult(notification.pk, sent=False, reason=reason)
        notification.attempts += 1
        try:
            emails.build(notification, connection=connection).send()
        except (smtplib.SMTPException, OSError) as exc:
            error = _error_text(exc)
            if _permanent(exc):
                _notification_finish(
                    notification, failed_at=now, reason=REFUSED.format(error=error)
                )
                return DeliveryResult(
                    notification.pk, sent=False, reason=notification.failure_reason
                )
            if notification.attempts >= settings.REMINDER_MAX_ATTEMPTS:
                _notification_finish(
                    notification,
                    failed_at=now,
                    reason=GAVE_UP.format(attempts=notification.attempts, error=error),
                )
                return DeliveryResult(
                    notification.pk, sent=False, reason=notification.failure_reason
                )
            delay = reminder_retry_delay(notification.attempts)
            notification.failure_reason = error
            notification.next_attempt_at = now + dt.timedelta(seconds=delay)
            notification.save(update_fields=["attempts", "failure_reason", "next_attempt_at"])
            if schedule_retry:
                _enqueue_notifications_on_commit([notification.pk], countdown=delay)
            logger.info(
                "Email of notification %s failed (%s); retry in %s s.",
                notification.pk,
                error,
                delay,
            )
            return DeliveryResult(notification.pk, sent=False, retry_in=delay, reason=error)
        notification.email_sent_at = now
        notification.next_attempt_at = None
        notification.failure_reason = ""
        notification.save(
            update_fields=["attempts", "email_sent_at", "next_attempt_at", "failure_reason"]
        )
        return DeliveryResult(notification.pk, sent=True)


def Q_due(now: dt.datetime):  # noqa: N802 - reads as a Q object
    from django.db.models import Q

    return Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + CLOCK_SLACK)


def _notification_finish(notification, *, failed_at: dt.datetime, reason: str) -> None:
    notification.email_failed_at = failed_at
    notification.failure_reason = reason[:500]
    notification.next_attempt_at = None
    notification.save(
        update_fields=["attempts", "email_failed_at", "failure_reason", "next_attempt_at"]
    )
    logger.warning("Notification %s not emailed: %s", notification.pk, reason)


def notifications_deliver_pending(*, now: dt.datetime | None = None) -> list[DeliveryResult]:
    """Deliver every unsent notification that is due, over one SMTP connection, in the
    foreground (`send_reminders`). Failures wait for the next run or a worker."""
    from django.core.mail import get_connection

    now = now or _now()
    ids = list(
        Notification.objects.filter(
            Q_due(now), email_sent_at__isnull=True, email_failed_at__isnull=True
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    results = []
    if not ids:
        return results
    connection = get_connection()
    try:
        connection.open()
    except (OSError, Exception) as exc:  # noqa: BLE001 - any backend: fall back per message
        logger.warning("Could not open the mail connection: %s", exc)
    try:
        for notification_id in ids:
            result = notification_deliver(
                notification_id=notification_id, connection=connection, schedule_retry=False
            )
            if result is not None:
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
