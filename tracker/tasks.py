"""Celery entry points of the tracker app."""

import socket

from celery import shared_task

from .services import heartbeat_record


@shared_task(name="tracker.heartbeat")
def heartbeat_task(hostname: str | None = None) -> int:
    """Periodic proof that beat schedules and a worker executes against the database."""
    return heartbeat_record(hostname=hostname or socket.gethostname()).beats


@shared_task(name="tracker.expire_idempotency_keys")
def expire_idempotency_keys_task() -> int:
    """Periodic: forget the Idempotency-Keys whose IDEMPOTENCY_KEY_HOURS are up."""
    from .idempotency import idempotency_keys_expire

    return idempotency_keys_expire()
