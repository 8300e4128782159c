"""A task sent over Redis runs in a real worker process and writes to PostgreSQL."""

import uuid

import pytest
from django.conf import settings

from tests.integration.conftest import wait_for
from tracker.models import WorkerHeartbeat
from tracker.tasks import heartbeat_task

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_broker_is_redis():
    assert settings.CELERY_BROKER_URL.startswith("redis://")


def test_heartbeat_runs_on_a_real_worker_and_lands_in_postgres(celery_worker_process):
    hostname = f"probe-{uuid.uuid4().hex[:8]}"
    assert not WorkerHeartbeat.objects.filter(hostname=hostname).exists()

    heartbeat_task.apply_async(kwargs={"hostname": hostname}, queue=celery_worker_process.queue)
    heartbeat_task.apply_async(kwargs={"hostname": hostname}, queue=celery_worker_process.queue)

    beat = wait_for(
        lambda: WorkerHeartbeat.objects.filter(hostname=hostname, beats__gte=2).first(),
        timeout=90,
    )
    assert beat is not None, "worker never wrote the heartbeat:\n" + celery_worker_process.output()
    assert beat.beats == 2
    assert "tracker.heartbeat" in celery_worker_process.output()
