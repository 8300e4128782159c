"""Webhook events from the reminder sweep: task.due_soon and task.overdue, once per task step
(whatever the number of recipients, their zones or the sweeps), only to subscriptions that
listen and whose organization may see the task, in a fixed number of queries."""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications import reminders, services
from notifications.models import WebhookDelivery
from tests.factories import OrganizationFactory, TaskFactory
from tests.notifications import reminders_world as w
from tests.notifications.reminders_world import DUE, NEW_YORK, SEOUL, local
from tracker.services import system_user

pytestmark = pytest.mark.django_db

URL = "https://erp.example.com/hooks"


@pytest.fixture
def world():
    return w.build()


def subscribe(organization, events):
    subscription, _secret = services.webhook_subscription_create(
        actor=system_user(), organization=organization, url=URL, events=events
    )
    return subscription


def sweep_at(moment):
    with time_machine.travel(moment, tick=False):
        return services.reminders_sweep(enqueue=False)


def deliveries(**filters):
    return list(WebhookDelivery.objects.filter(**filters).order_by("pk"))


def test_due_soon_is_sent_once_per_step_whatever_the_recipients(world):
    lead = subscribe(world.lead, ["task.due_soon"])
    day = DUE - dt.timedelta(days=7)
    sweep_at(local(day, SEOUL))  # the Seoul recipient's step
    sweep_at(local(day, NEW_YORK))  # the New York recipient's: same step, no second event
    sweep_at(local(day, NEW_YORK) + dt.timedelta(minutes=5))
    [delivery] = [
        d for d in deliveries(subscription=lead) if d.payload["data"]["reminder"]["step"] == 7
    ]
    assert delivery.event == "task.due_soon"
    assert delivery.task_id == world.task.pk
    assert delivery.created_at == local(day, SEOUL)
    assert delivery.payload["type"] == "task.due_soon"
    assert delivery.payload["data"]["task"]["id"] == world.task.pk
    assert delivery.payload["data"]["reminder"] == {
        "kind": "due_soon",
        "due_date": DUE.isoformat(),
        "step": 7,
    }
    # The New York recipient's catch-up (their 14-day step, first sweep) is a step too;
    # on the due date, Seoul's "today" and New York's 1-day step.
    sweep_at(local(DUE, SEOUL))
    assert sorted(
        (d.payload["data"]["reminder"]["kind"], d.payload["data"]["reminder"]["step"])
        for d in deliveries(subscription=lead)
    ) == [("due_soon", 1), ("due_soon", 7), ("due_soon", 14), ("due_today", 0)]


def test_overdue_goes_to_overdue_subscribers_only(world):
    due_soon_only = subscribe(world.lead, ["task.due_soon"])
    overdue = subscribe(world.coordinating, ["task.overdue", "task.created"])
    sweep_at(local(DUE + dt.timedelta(days=1), SEOUL))
    assert deliveries(subscription=due_soon_only) == []
    [delivery] = deliveries(subscription=overdue)
    assert delivery.event == "task.overdue"
    assert delivery.payload["data"]["reminder"]["step"] == 1
    assert delivery.payload["data"]["task"]["is_overdue"] is True


def test_no_event_for_an_organization_that_cannot_see_the_task(world):
    stranger = subscribe(OrganizationFactory(), ["task.due_soon", "task.overdue"])
    sweep_at(local(DUE - dt.timedelta(days=1), SEOUL))
    sweep_at(local(DUE + dt.timedelta(days=1), SEOUL))
    assert deliveries(subscription=stranger) == []


def test_disabled_subscriptions_and_unlistened_events_get_nothing(world):
    other = subscribe(world.lead, ["task.created"])
    disabled = subscribe(world.coordinating, ["task.due_soon"])
    disabled.is_active = False
    disabled.save()
    sweep_at(local(DUE - dt.timedelta(days=1), SEOUL))
    assert deliveries(subscription__in=[other, disabled]) == []


def test_escalations_and_verification_reminders_are_not_webhook_events(world):
    subscribe(world.lead, ["task.due_soon", "task.overdue"])
    sweep_at(local(DUE + dt.timedelta(days=20), NEW_YORK))
    assert {d.event for d in deliveries()} == {"task.overdue"}


def test_query_count_does_not_grow_with_the_tasks(world):
    subscribe(world.lead, ["task.due_soon", "task.overdue"])
    subscribe(world.coordinating, ["task.due_soon"])

    def count(extra_tasks):
        for _ in range(extra_tasks):
            TaskFactory(
                plan=world.plan,
                lead_organization=world.lead,
                due_date=DUE,
                assignee=world.seoul,
                manager=world.new_york,
                at=w.CREATED,
            )
        WebhookDelivery.objects.all().delete()
        from notifications.models import Notification

        Notification.objects.all().delete()
        with CaptureQueriesContext(connection) as queries:
            sweep_at(local(DUE - dt.timedelta(days=1), SEOUL))
        # Two subscriptions; the Seoul recipient's 1-day step and New York's 7-day step.
        assert WebhookDelivery.objects.count() == 2 * 2 * (1 + extra_tasks)
        return len(queries)

    assert count(0) == count(6)


@pytest.mark.parametrize("enqueue", [True, False])
def test_deliveries_are_enqueued_only_when_the_sweep_enqueues(world, monkeypatch, enqueue):
    """`send_reminders` sweeps with enqueue=False: the deliveries are recorded and beat's
    requeue sends them (no message goes to a broker that a cron-only setup lacks)."""
    subscribe(world.lead, ["task.due_soon"])
    enqueued = []
    # Patched where the sweep calls them (notifications.reminders).
    monkeypatch.setattr(
        reminders, "_enqueue_on_commit", lambda ids, countdown=None: enqueued.extend(ids)
    )
    monkeypatch.setattr(
        reminders, "_enqueue_notifications_on_commit", lambda ids, countdown=None: None
    )
    with time_machine.travel(local(DUE - dt.timedelta(days=1), SEOUL), tick=False):
        services.reminders_sweep(enqueue=enqueue)
    recorded = list(WebhookDelivery.objects.values_list("pk", flat=True))
    assert recorded
    assert sorted(enqueued) == (sorted(recorded) if enqueue else [])
