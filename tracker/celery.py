"""The Celery application: JSON only, explicit task names, late acks, one beat, and every
task routed to its queue (CELERY_TASK_ROUTES: email, webhooks, housekeeping).

Settings come from Django settings under the CELERY_ prefix (see tracker/settings.py).
"""

import os

from celery import Celery
from celery.signals import beat_init, task_postrun, task_prerun, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracker.settings")


def _keep_the_worker_alive_when_redis_is_lost() -> None:
    """kombu 5.7.0 kills the worker ("Unrecoverable error: AttributeError: 'NoneType' object
    has no attribute 'hostname'", or '... 'client'") when its Redis connection breaks while a
    message is unacknowledged, i.e. whenever a task (acks_late) is running: the consumer
    collects the connection (the channel forgets its transport and client), then closes the
    channel, which tries to put the unacknowledged messages back, and later the task's ack
    arrives on that same dead channel; both need the forgotten client. Here, on a channel
    whose connection is gone, both leave the message where it is instead: Redis redelivers
    it after the visibility timeout (its claim then finds the rows sent), and rows still due
    are enqueued again by the housekeeping requeue long before. The worker reconnects and
    goes on consuming."""
    import logging

    from kombu.transport import redis as kombu_redis

    if getattr(kombu_redis.QoS, "_tracker_guarded", False):
        return
    logger = logging.getLogger(__name__)
    restore_unacked, ack, reject = (
        kombu_redis.QoS.restore_unacked,
        kombu_redis.QoS.ack,
        kombu_redis.QoS.reject,
    )

    def gone(qos) -> bool:
        return getattr(getattr(qos.channel, "connection", None), "client", None) is None

    def guarded_restore_unacked(self, client=None):
        if client is None and gone(self):
            logger.warning(
                "Broker connection lost with %s unacknowledged message(s): left in Redis "
                "(redelivered after the visibility timeout; their rows are requeued).",
                len(self._delivered),
            )
            self._delivered.clear()
            return None
        return restore_unacked(self, client)

    def guarded_ack(self, delivery_tag):
        if gone(self):
            logger.warning("Broker connection lost before an ack: the message stays in Redis.")
            return kombu_redis.virtual.QoS.ack(self, delivery_tag)
        return ack(self, delivery_tag)

    def guarded_reject(self, delivery_tag, requeue=False):
        if gone(self):
            logger.warning("Broker connection lost before a reject: the message stays in Redis.")
            return kombu_redis.virtual.QoS.ack(self, delivery_tag)
        return reject(self, delivery_tag, requeue=requeue)

    kombu_redis.QoS.restore_unacked = guarded_restore_unacked
    kombu_redis.QoS.ack = guarded_ack
    kombu_redis.QoS.reject = guarded_reject
    kombu_redis.QoS._tracker_guarded = True


_keep_the_worker_alive_when_redis_is_lost()

app = Celery("tracker")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _ensure_broker_folders(**_kwargs):
    """The filesystem broker needs its folders before the first message is written."""
    from django.conf import settings

    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        if key in options:
            os.makedirs(options[key], exist_ok=True)


worker_init.connect(_ensure_broker_folders)


@worker_init.connect
def _keep_database_connections(sender=None, **_kwargs):
    """Celery's Django fixup closes every database connection before and after each task
    (unless CELERY_DB_REUSE_MAX), so a worker reconnected to PostgreSQL for every message.
    Here the worker keeps its connection between tasks as Django keeps it between requests:
    closed only when older than CONN_MAX_AGE or unusable (close_old_connections, below),
    checked before reuse (CONN_HEALTH_CHECKS)."""
    for fixup in getattr(app, "_fixups", ()):
        worker_fixup = getattr(fixup, "_worker_fixup", None)
        if worker_fixup is not None:
            worker_fixup.db_reuse_max = 10**9  # the fixup's own recycling: practically never


@task_prerun.connect
@task_postrun.connect
def _close_old_database_connections(sender=None, **_kwargs):
    from django.db import close_old_connections

    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()


beat_init.connect(_ensure_broker_folders)


@beat_init.connect
def _run_at_start(sender=None, **_kwargs):
    """Send the beat entries named in BEAT_RUN_AT_START once, as beat would (same options)."""
    from django.conf import settings

    for name in getattr(settings, "BEAT_RUN_AT_START", ()):
        entry = settings.CELERY_BEAT_SCHEDULE[name]
        app.send_task(entry["task"], **entry.get("options", {}))


@app.on_after_finalize.connect
def _setup_periodic_tasks(sender, **_kwargs):
    from django.conf import settings

    sender.add_periodic_task(
        settings.HEARTBEAT_INTERVAL_SECONDS,
        sender.signature("tracker.heartbeat"),
        name="tracker.heartbeat every interval",
        queue=settings.HOUSEKEEPING_QUEUE,
    )
