"""A webhook travels the whole way: a task transition commits in PostgreSQL, the delivery is
enqueued on Redis, a real Celery worker process signs and POSTs it to a local receiver, which
verifies the signature; the worker stamps the delivery as succeeded."""

import uuid

import pytest

from notifications import services
from notifications.models import WebhookDelivery
from plans import services as plan_services
from plans.models import Task
from tests.integration.conftest import Worker, wait_for
from tests.notifications.receiver import start_receiver, stop_receiver
from tests.notifications.world import build_world
from tracker.services import system_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def webhook_worker(monkeypatch, settings):
    """A worker on a private queue, which is also the webhook queue of this process (first
    sends) and of the worker (retries)."""
    queue = f"test-wh-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("WEBHOOK_QUEUE", queue)
    settings.WEBHOOK_QUEUE = queue
    worker = Worker(queue=queue).start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def receiver():
    receiver = start_receiver()
    try:
        yield receiver
    finally:
        stop_receiver(receiver)


def test_a_transition_is_delivered_by_a_real_worker(webhook_worker, receiver):
    world = build_world()
    subscription, receiver.secret = services.webhook_subscription_create(
        actor=system_user(),
        organization=world.a,
        url=receiver.url,
        events=["task.status_changed"],
    )
    other, _ = services.webhook_subscription_create(
        actor=system_user(),
        organization=world.b,
        url=receiver.url + "?b",
        events=["task.status_changed"],
    )

    plan_services.task_transition(
        actor=system_user(),
        task=world.task,
        to_status=Task.Status.IN_PROGRESS,
        expected_from=Task.Status.PLANNED,
    )

    delivery = wait_for(
        lambda: WebhookDelivery.objects.filter(
            subscription=subscription, status=WebhookDelivery.Status.SUCCEEDED
        ).first(),
        timeout=90,
    )
    assert delivery is not None, "the worker never delivered:\n" + webhook_worker.output()
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.valid
    assert request.headers["webhook-id"] == delivery.message_id
    assert request.json["data"]["task"]["id"] == world.task.pk
    assert request.json["data"]["status_to"] == Task.Status.IN_PROGRESS
    assert delivery.attempts == 1 and delivery.last_status_code == 204
    assert not WebhookDelivery.objects.filter(subscription=other).exists()
    assert "notifications.deliver_webhook" in webhook_worker.output()
