"""Listeners to the plan domain's events (connected in NotificationsConfig.ready)."""

import logging

from . import services

logger = logging.getLogger(__name__)


def task_changed_webhooks(sender, *, event: str, task_id: int, **extra) -> None:
    """Record webhook deliveries for a committed change to a task.

    The plan's change is committed when this runs: a failure here is logged, never raised
    into the request or task that made the change."""
    try:
        services.webhook_events_record(event=event, task_id=task_id, **extra)
    except Exception:
        logger.exception("Recording webhooks for %s of task %s failed.", event, task_id)


def access_revoked_calendar_feed(sender, *, user, **extra) -> None:
    """A person who lost their last membership loses their calendar feed (its URL is 404);
    runs inside the transaction that took the membership away."""
    from .models import CalendarFeed

    CalendarFeed.objects.filter(user=user).delete()
