"""Fixtures of the webhook tests: the world, a local receiver, and the Celery queue mocked
out (only `apply_async`, the outside world; HTTP goes to a real local server)."""

import pytest

from notifications.tasks import deliver_webhook_task, deliver_webhooks_task
from tests.notifications.receiver import start_receiver, stop_receiver
from tests.notifications.world import build_world


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def receiver():
    receiver = start_receiver()
    try:
        yield receiver
    finally:
        stop_receiver(receiver)


class Enqueued(list):
    """Ids sent to the delivery tasks' apply_async, one entry per id: (delivery id,
    countdown, queue); `messages`: the messages, (ids, countdown, queue)."""

    def __init__(self):
        super().__init__()
        self.messages = []

    @property
    def ids(self):
        return [delivery_id for delivery_id, _countdown, _queue in self]


def mock_delivery_tasks(monkeypatch, apply_async):
    """Replace the broker calls of the webhook delivery tasks (the batch task, and the
    one-id task kept for messages queued before batches)."""
    for task in (deliver_webhooks_task, deliver_webhook_task):
        monkeypatch.setattr(task, "apply_async", apply_async)


@pytest.fixture
def enqueued(monkeypatch):
    calls = Enqueued()

    def apply_async(args=None, kwargs=None, countdown=None, queue=None, **options):
        ids = args[0] if isinstance(args[0], list) else [args[0]]
        calls.messages.append((list(ids), countdown, queue))
        calls.extend((pk, countdown, queue) for pk in ids)

    mock_delivery_tasks(monkeypatch, apply_async)
    return calls
