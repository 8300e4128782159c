"""Four reminder sweeps at the same instant on PostgreSQL (the one-statement path): the unique
dedupe key and ON CONFLICT DO NOTHING leave each reminder once, and each is reported as new
by exactly one sweep (so its email and webhook event are enqueued once)."""

import datetime as dt
import threading

import pytest
from django.db import connection

from notifications import services
from notifications.models import Notification, WebhookDelivery
from tests.factories import TaskFactory
from tests.notifications import reminders_world as w
from tests.notifications.reminders_world import DUE, SEOUL, local
from tracker.services import system_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SWEEPS = 4


def test_concurrent_sweeps_create_each_reminder_once():
    world = w.build()
    for _ in range(10):
        TaskFactory(
            plan=world.plan,
            lead_organization=world.lead,
            due_date=DUE,
            assignee=world.seoul,
            manager=world.new_york,
            at=w.CREATED,
        )
    services.webhook_subscription_create(
        actor=system_user(),
        organization=world.lead,
        url="https://erp.example.com/hooks",
        events=["task.due_soon"],
    )
    moment = local(DUE - dt.timedelta(days=1), SEOUL)
    expected = {row.dedupe_key for row in services.reminders_due(now=moment)}
    assert len(expected) == 22  # 11 tasks: Seoul's 1-day step and New York's 7-day step
    barrier = threading.Barrier(SWEEPS)
    results, errors = [], []

    def run():
        try:
            barrier.wait(timeout=30)
            results.append(services.reminders_sweep(now=moment, enqueue=False))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(SWEEPS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert set(Notification.objects.values_list("dedupe_key", flat=True)) == expected
    assert sum(result.created for result in results) == len(expected)
    assert sorted(i for result in results for i in result.notification_ids) == sorted(
        Notification.objects.values_list("pk", flat=True)
    )
    # One webhook delivery per task step, whichever sweeps reported the steps.
    assert WebhookDelivery.objects.count() == 22
