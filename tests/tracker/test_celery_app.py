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


# --- Queues: every task routed to its queue, a worker per queue in the Procfile ----------

ROUTED = {
    "notifications.deliver_notification": "NOTIFICATION_QUEUE",
    "notifications.deliver_digest": "NOTIFICATION_QUEUE",
    "notifications.deliver_notifications": "NOTIFICATION_QUEUE",
    "notifications.deliver_digests": "NOTIFICATION_QUEUE",
    "notifications.deliver_webhook": "WEBHOOK_QUEUE",
    "notifications.deliver_webhooks": "WEBHOOK_QUEUE",
    "notifications.sweep_reminders": "HOUSEKEEPING_QUEUE",
    "notifications.sweep_digests": "HOUSEKEEPING_QUEUE",
    "notifications.requeue_webhooks": "HOUSEKEEPING_QUEUE",
    "notifications.requeue_deliveries": "HOUSEKEEPING_QUEUE",
    "tracker.heartbeat": "HOUSEKEEPING_QUEUE",
    "tracker.expire_idempotency_keys": "HOUSEKEEPING_QUEUE",
}


def test_the_queues_default_to_email_webhooks_and_housekeeping():
    from tracker import settings as defaults

    assert (defaults.NOTIFICATION_QUEUE, defaults.WEBHOOK_QUEUE, defaults.HOUSEKEEPING_QUEUE) == (
        "email",
        "webhooks",
        "housekeeping",
    )


def test_every_task_is_routed_to_its_queue():
    celery.app.loader.import_default_modules()
    ours = {name for name in celery.app.tasks if not name.startswith("celery.")}
    assert ours == set(ROUTED)
    for name, setting in ROUTED.items():
        route = celery.app.amqp.router.route({}, name)
        assert route["queue"].name == getattr(settings, setting), name


def test_every_beat_entry_goes_to_the_housekeeping_queue():
    celery.app.loader.import_default_modules()
    schedule = celery.app.conf.beat_schedule
    assert "tracker.heartbeat every interval" in schedule
    for name, entry in schedule.items():
        assert entry["options"]["queue"] == settings.HOUSEKEEPING_QUEUE, name


def test_the_procfile_runs_a_worker_per_queue_and_one_beat():
    import shlex
    from pathlib import Path

    lines = dict(
        line.split(":", 1)
        for line in (Path(settings.BASE_DIR) / "Procfile").read_text().splitlines()
        if line.strip()
    )
    queues = {}
    for name, command in lines.items():
        args = shlex.split(command)
        if "worker" in args:
            queues[name] = args[args.index("-Q") + 1]
    assert queues == {"email": "email", "webhooks": "webhooks", "housekeeping": "housekeeping"}
    assert sum("beat" in shlex.split(command) for command in lines.values()) == 1
