"""The Celery application: JSON only, explicit task names, late acks, one beat, and every
task routed to its queue (CELERY_TASK_ROUTES: email, webhooks, housekeeping).

Settings come from Django settings under the CELERY_ prefix (see tracker/settings.py).
"""

import os

from celery import Celery
from celery.signals import beat_init, task_postrun, task_prerun, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracker.settings")

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
