"""Celery entry points of the notifications app. They take ids and call the services, where
claiming, idempotency and retry scheduling live (see notifications/services.py)."""

from celery import shared_task

from . import services


# The HTTP call has its own timeout (WEBHOOK_TIMEOUT_SECONDS); the limits only stop a task
# that hangs, well inside the delivery's lease (services.CLAIM_LEASE).
@shared_task(name="notifications.deliver_webhook", soft_time_limit=90, time_limit=120)
def deliver_webhook_task(delivery_id: int) -> None:
    """One attempt at one webhook delivery. Returns quietly when the delivery is gone,
    already delivered, not yet due or held by another worker. Transient failures are
    recorded and retried by the service (a new message with a countdown), so nothing here
    raises for them."""
    services.webhook_deliver(delivery_id=delivery_id)


@shared_task(name="notifications.requeue_webhooks", soft_time_limit=60, time_limit=90)
def requeue_webhooks_task() -> int:
    """Periodic (beat): re-enqueue deliveries whose message was lost or whose worker died."""
    return services.webhook_deliveries_requeue()


@shared_task(name="notifications.sweep_reminders", soft_time_limit=240, time_limit=300)
def sweep_reminders_task() -> int:
    """Periodic (beat, REMINDER_SWEEP_SECONDS): insert the reminders due now; their emails
    are enqueued after commit. Returns how many were created."""
    return services.reminders_sweep().created


# One SMTP exchange; the limits only stop a task that hangs (far below the visibility timeout).
@shared_task(name="notifications.deliver_notification", soft_time_limit=60, time_limit=90)
def deliver_notification_task(notification_id: int) -> None:
    """Email one notification. Returns quietly when it is gone, sent, failed or held by
    another worker; transient failures are rescheduled by the service (new message with a
    countdown), so nothing here raises for them."""
    services.notification_deliver(notification_id=notification_id)


@shared_task(name="notifications.sweep_digests", soft_time_limit=240, time_limit=300)
def sweep_digests_task() -> int:
    """Periodic (beat, REMINDER_SWEEP_SECONDS): create today's digest of every opted-in user
    whose 08:00 has passed; their emails are enqueued after commit. Returns how many were
    created."""
    return services.digests_sweep().created


# One SMTP exchange; the limits only stop a task that hangs (inside the claim's lease).
@shared_task(name="notifications.deliver_digest", soft_time_limit=60, time_limit=90)
def deliver_digest_task(digest_id: int) -> None:
    """Email one digest (or record it as empty). Returns quietly when it is gone, finished,
    not yet due or held by another worker; transient failures are rescheduled by the service
    (a new message with a countdown), so nothing here raises for them."""
    services.digest_deliver(digest_id=digest_id)
