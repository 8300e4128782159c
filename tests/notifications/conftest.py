"""Fixtures of the webhook tests: the world, a local receiver, and the Celery queue mocked
out (only `apply_async`, the outside world; HTTP goes to a real local server)."""

import pytest

from notifications.tasks import deliver_webhook_task
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
    """Calls to deliver_webhook_task.apply_async: (delivery id, countdown, queue)."""

    @property
    def ids(self):
        return [delivery_id for delivery_id, _countdown, _queue in self]


@pytest.fixture
def enqueued(monkeypatch):
    calls = Enqueued()

    def apply_async(args=None, kwargs=None, countdown=None, queue=None, **options):
        calls.append((args[0], countdown, queue))

    monkeypatch.setattr(deliver_webhook_task, "apply_async", apply_async)
    return calls
