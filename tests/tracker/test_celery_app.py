"""The Celery application's start-up hooks: beat sends the sweeps once when it starts."""

from celery.signals import beat_init
from django.conf import settings

from tracker import celery


def test_beat_sends_the_sweeps_once_at_start(monkeypatch):
    sent = []
    monkeypatch.setattr(
        celery.app, "send_task", lambda name, **options: sent.append((name, options))
    )
    beat_init.send(sender=None)  # as beat does when it starts
    assert sent == [
        ("notifications.sweep_reminders", {"queue": settings.HOUSEKEEPING_QUEUE}),
        ("notifications.sweep_digests", {"queue": settings.HOUSEKEEPING_QUEUE}),
        ("notifications.requeue_deliveries", {"queue": settings.HOUSEKEEPING_QUEUE}),
    ]


def test_every_entry_sent_at_start_is_a_beat_entry():
    assert set(settings.BEAT_RUN_AT_START) <= set(settings.CELERY_BEAT_SCHEDULE)
