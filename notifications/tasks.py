"""Celery entry points of the notifications app. They take ids and call the services, where
claiming, idempotency and retry scheduling live (see notifications/services.py).

Outages: a database error (PostgreSQL down or restarting) or a broker error inside a task
makes Celery retry it with exponential backoff (a new message with a countdown) instead of
acknowledging it away; if even that new message cannot be published, the original message is
given back to the broker. Whatever is lost on the way, the rows stay due in the database and
`notifications.requeue_deliveries` (beat, HOUSEKEEPING_QUEUE) enqueues them again."""

from celery import Task, shared_task
from celery.exceptions import Reject
from django.conf import settings
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

from . import outbox, services, webhooks

# Deliveries end inside their rows' lease (REMINDER_LEASE_SECONDS; webhooks: their limits in
# webhooks.py from WEBHOOK_LEASE_SECONDS): no second attempt starts while the first still runs,
# and a dead or cut-off worker's rows are free again at the lease's end.
EMAIL_SOFT_LIMIT, EMAIL_HARD_LIMIT = outbox.time_limits(settings.REMINDER_LEASE_SECONDS)

# A database or broker that is down, restarting or unreachable.
OUTAGE_ERRORS = (OperationalError, InterfaceError, BrokerError)
# Retries after an outage: 1, 2, 4 ... s (full jitter), at most 60 s apart, 12 times (several
# minutes); after that the requeue of lost rows takes over.
OUTAGE_RETRY = {
    "autoretry_for": OUTAGE_ERRORS,
    "retry_backoff": 1,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 12,
}


class OutageRetryingTask(Task):
    """Celery drops a message whose retry cannot be published (Reject without requeue);
    here it goes back to the broker instead."""

    abstract = True

    def retry(self, *args, **kwargs):
        try:
            return super().retry(*args, **kwargs)
        except Reject as reject:
            if reject.requeue:
                raise
            raise Reject(reject.reason, requeue=True) from reject


# A batch of POSTs, each stamped after its send; the batch stops starting sends before its
# lease (webhooks.CLAIM_LEASE) runs short, and the limits, inside the lease, only stop a task
# that hangs, so no second attempt starts while this one still runs.
@shared_task(
    name="notifications.deliver_webhooks",
    base=OutageRetryingTask,
    soft_time_limit=webhooks.SOFT_TIME_LIMIT,
    time_limit=webhooks.HARD_TIME_LIMIT,
    **OUTAGE_RETRY,
)
def deliver_webhooks_task(delivery_ids: list[int]) -> int:
    """One attempt at each webhook delivery of a batch (one message per batch of ids).
    Skips those gone, finished, not yet due or held by another worker; transient failures
    are recorded and retried by the service (a new message with a countdown), so nothing
    here raises for them. Returns how many deliveries this batch stamped."""
    return len(services.webhooks_deliver_batch(delivery_ids=list(delivery_ids)))


# Kept for messages queued before batches (one id per message): a batch of one.
@shared_task(
    name="notifications.deliver_webhook",
    base=OutageRetryingTask,
    soft_time_limit=webhooks.SOFT_TIME_LIMIT,
    time_limit=webhooks.HARD_TIME_LIMIT,
    **OUTAGE_RETRY,
)
def deliver_webhook_task(delivery_id: int) -> None:
    """One attempt at one webhook delivery (a batch of one)."""
    services.webhook_deliver(delivery_id=delivery_id)


@shared_task(name="notifications.requeue_webhooks", soft_time_limit=60, time_limit=90)
def requeue_webhooks_task() -> int:
    """Re-enqueue webhook deliveries whose message was lost or whose worker died (kept for
    messages already queued; beat now runs notifications.requeue_deliveries)."""
    return services.webhook_deliveries_requeue()


@shared_task(name="notifications.requeue_deliveries", soft_time_limit=60, time_limit=90)
def requeue_deliveries_task() -> dict:
    """Periodic (beat, DELIVERY_REQUEUE_EVERY_SECONDS): re-enqueue reminder emails, digests
    and webhook deliveries whose message was lost. During an outage it fails; the next run
    catches up."""
    result = services.deliveries_requeue()
    return {
        "notifications": result.notifications,
        "digests": result.digests,
        "webhooks": result.webhooks,
    }


@shared_task(name="notifications.sweep_reminders", soft_time_limit=240, time_limit=300)
def sweep_reminders_task() -> int:
    """Periodic (beat, REMINDER_SWEEP_SECONDS): insert the reminders due now; their emails
    are enqueued after commit. Returns how many were created."""
    return services.reminders_sweep().created


# A batch of SMTP exchanges over one connection, each stamped after its send; the batch
# stops starting sends before its lease ends and the limits (inside the lease) only stop a
# task that hangs.
@shared_task(
    name="notifications.deliver_notifications",
    base=OutageRetryingTask,
    soft_time_limit=EMAIL_SOFT_LIMIT,
    time_limit=EMAIL_HARD_LIMIT,
    **OUTAGE_RETRY,
)
def deliver_notifications_task(notification_ids: list[int]) -> int:
    """Email a batch of notifications (sweeps send one message per DELIVERY_BATCH_SIZE ids).
    Skips those gone, sent, failed or held by another worker; transient failures are
    rescheduled by the service, so nothing here raises for them. An outage is retried
    (OUTAGE_RETRY). Returns how many rows this batch claimed."""
    return len(services.notifications_deliver_batch(notification_ids=list(notification_ids)))


# Kept for messages queued before batches (one id per message).
@shared_task(
    name="notifications.deliver_notification",
    base=OutageRetryingTask,
    soft_time_limit=EMAIL_SOFT_LIMIT,
    time_limit=EMAIL_HARD_LIMIT,
    **OUTAGE_RETRY,
)
def deliver_notification_task(notification_id: int) -> None:
    """Email one notification (a batch of one)."""
    services.notification_deliver(notification_id=notification_id)


@shared_task(name="notifications.sweep_digests", soft_time_limit=240, time_limit=300)
def sweep_digests_task() -> int:
    """Periodic (beat, REMINDER_SWEEP_SECONDS): create today's digest of every opted-in user
    whose 08:00 has passed; their emails are enqueued after commit. Returns how many were
    created."""
    return services.digests_sweep().created


@shared_task(
    name="notifications.deliver_digests",
    base=OutageRetryingTask,
    soft_time_limit=EMAIL_SOFT_LIMIT,
    time_limit=EMAIL_HARD_LIMIT,
    **OUTAGE_RETRY,
)
def deliver_digests_task(digest_ids: list[int]) -> int:
    """Email a batch of digests over one SMTP connection (as deliver_notifications_task).
    Returns how many this batch claimed."""
    return len(services.digests_deliver_batch(digest_ids=list(digest_ids)))


# Kept for messages queued before batches (one id per message).
@shared_task(
    name="notifications.deliver_digest",
    base=OutageRetryingTask,
    soft_time_limit=EMAIL_SOFT_LIMIT,
    time_limit=EMAIL_HARD_LIMIT,
    **OUTAGE_RETRY,
)
def deliver_digest_task(digest_id: int) -> None:
    """Email one digest (or record it as empty). Returns quietly when it is gone, finished,
    not yet due or held by another worker; transient failures are rescheduled by the service
    (a new message with a countdown), so nothing here raises for them. An outage is retried
    (OUTAGE_RETRY)."""
    services.digest_deliver(digest_id=digest_id)
