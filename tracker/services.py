"""Writes of the tracker app."""

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .models import WorkerHeartbeat


def heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    """Stamp the heartbeat row of `hostname`; safe for concurrent workers."""
    with transaction.atomic():
        now = timezone.now()
        beat, created = WorkerHeartbeat.objects.select_for_update().get_or_create(
            hostname=hostname, defaults={"last_seen_at": now, "beats": 1}
        )
        if not created:
            WorkerHeartbeat.objects.filter(pk=beat.pk).update(
                last_seen_at=now, beats=F("beats") + 1
            )
            beat.refresh_from_db()
    return beat
