"""Webhooks end to end, short of Celery: a change to a task becomes signed deliveries to the
organizations that may see it, made against a real local HTTP receiver; failures are retried
with backoff, given up, and disable the subscription; successes reset the count.

Only the queue is mocked (`apply_async`); delivery is run synchronously with
`webhook_deliver`, as the Celery task would run it.
"""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from notifications import services
from notifications.models import PING_EVENT, WebhookDelivery, WebhookEvent, WebhookSubscription
from notifications.services import (
    AUTO_DISABLED,
    NO_LONGER_VISIBLE,
    SUBSCRIPTION_DISABLED,
    webhook_deliver,
)
from notifications.tasks import deliver_webhook_task
from notifications.webhook_http import DELIVERY_FAILED
from plans import services as plan_services
from plans.models import Task
from tests.factories import TaskFactory
from tests.notifications.conftest import mock_delivery_tasks
from tracker.services import system_user

pytestmark = pytest.mark.django_db

S = Task.Status
Status = WebhookDelivery.Status
ALL_EVENTS = list(WebhookEvent.values)
START = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


def subscribe(organization, receiver, events=ALL_EVENTS, url=None):
    subscription, secret = services.webhook_subscription_create(
        actor=system_user(), organization=organization, url=url or receiver.url, events=events
    )
    receiver.secret = secret
    return subscription


def start_task(task, capture, actor=None):
    with capture(execute=True):
        return plan_services.task_transition(
            actor=actor or system_user(),
            task=task,
            to_status=S.IN_PROGRESS,
            expected_from=S.PLANNED,
        )


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


# --- Who gets what ------------------------------------------------------------------------


def test_a_transition_is_delivered_signed_to_the_organization_that_sees_the_task(
    world, receiver, enqueued, capture, client
):
    sub_b = subscribe(world.b, receiver, url=receiver.url + "?b")
    sub_a = subscribe(world.a, receiver)  # the receiver verifies with A's secret

    start_task(world.task, capture)

    deliveries = list(WebhookDelivery.objects.all())
    assert [(d.subscription_id, d.event) for d in deliveries] == [(sub_a.pk, "task.status_changed")]
    assert not WebhookDelivery.objects.filter(subscription=sub_b).exists()
    delivery = deliveries[0]
    assert enqueued == [(delivery.pk, None, "webhooks")]

    webhook_deliver(delivery_id=delivery.pk)

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.valid, "the receiver could not verify the signature"
    assert request.headers["webhook-id"] == delivery.message_id
    assert request.headers["content-type"] == "application/json"
    body = request.json
    assert body["type"] == "task.status_changed"
    assert body["data"]["status_from"] == S.PLANNED
    assert body["data"]["status_to"] == S.IN_PROGRESS
    # The task exactly as a member of A reads it from the API.
    client.force_login(world.contributor_a)
    assert body["data"]["task"] == client.get(f"/api/v1/tasks/{world.task.pk}/").json()
    assert body["data"]["task"]["status"] == S.IN_PROGRESS
    assert body["data"]["task"]["ref"] == "WH-01"
    delivery.refresh_from_db()
    assert delivery.status == Status.SUCCEEDED
    assert delivery.attempts == 1
    assert delivery.last_status_code == 204
    assert delivery.delivered_at is not None


def test_b_gets_the_event_once_the_task_is_visible_plan_wide(world, receiver, enqueued, capture):
    """The negative above failed for the right reason: visibility, not B's subscription."""
    sub_b = subscribe(world.b, receiver)
    Task.objects.filter(pk=world.task.pk).update(visibility=Task.Visibility.PLAN)

    start_task(world.task, capture)

    assert list(WebhookDelivery.objects.values_list("subscription_id", flat=True)) == [sub_b.pk]


def test_only_subscribed_events_and_active_subscriptions(world, receiver, enqueued, capture):
    subscribe(world.a, receiver, events=["task.created"])
    inactive = subscribe(world.a, receiver, url=receiver.url + "?off")
    services.webhook_subscription_update(
        actor=system_user(), subscription=inactive, is_active=False
    )

    start_task(world.task, capture)

    assert not WebhookDelivery.objects.exists()
    assert enqueued == []


def test_each_event_has_its_payload(world, receiver, enqueued, capture):
    subscribe(world.a, receiver)
    system = system_user()
    with capture(execute=True):
        task = TaskFactory(
            plan=world.task.plan, ref="WH-02", lead_organization=world.a, actor=system
        )
    with capture(execute=True):
        plan_services.status_update_add(actor=system, task=task, note="Site survey done.")
    with capture(execute=True):
        plan_services.task_change_deadline(
            actor=system, task=task, due_date=dt.date(2031, 1, 31), reason="Permit delayed."
        )

    payloads = [d.payload for d in WebhookDelivery.objects.order_by("pk")]
    assert [p["type"] for p in payloads] == [
        "task.created",
        "status_update.created",
        "task.updated",
    ]
    assert all(p["data"]["task"]["id"] == task.pk for p in payloads)
    assert payloads[1]["data"]["status_update"]["note"] == "Site survey done."
    assert payloads[1]["data"]["status_update"]["task"] == task.pk
    assert payloads[2]["data"]["changed_fields"] == ["due_date"]
    assert payloads[2]["data"]["task"]["due_date"] == "2031-01-31"
    assert payloads[0]["timestamp"].endswith("Z")


def test_the_payload_is_built_once_for_all_subscribers(
    world, receiver, enqueued, capture, django_assert_max_num_queries
):
    for number in range(5):
        subscribe(world.a, receiver, url=f"{receiver.url}?n={number}")
    with django_assert_max_num_queries(10):
        deliveries = services.webhook_events_record(
            event="task.status_changed", task_id=world.task.pk, status_from="a", status_to="b"
        )
    assert len(deliveries) == 5
    assert len({d.message_id for d in deliveries}) == 5
    assert len({str(d.payload) for d in deliveries}) == 1


def test_rows_exist_without_celery_and_a_broker_failure_does_not_break_the_change(
    world, receiver, capture, monkeypatch
):
    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    mock_delivery_tasks(monkeypatch, broker_down)
    subscribe(world.a, receiver)

    task = start_task(world.task, capture)

    assert task.status == S.IN_PROGRESS
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Status.PENDING
    # Beat's sweep sends it once it has been due for a while.
    requeued = []
    mock_delivery_tasks(monkeypatch, lambda args, **kw: requeued.extend(args[0]))
    assert services.webhook_deliveries_requeue(now=timezone.now()) == 0
    with capture(execute=True):
        later = timezone.now() + services.requeue_after() + dt.timedelta(seconds=1)
        assert services.webhook_deliveries_requeue(now=later) == 1
    assert requeued == [delivery.pk]
    # Not twice in a row: the next sweep leaves it to the message just sent.
    assert services.webhook_deliveries_requeue(now=later + dt.timedelta(seconds=1)) == 0


def test_the_queue_is_a_setting(world, receiver, enqueued, capture, settings):
    settings.WEBHOOK_QUEUE = "webhooks"
    subscribe(world.a, receiver)
    start_task(world.task, capture)
    assert [queue for _id, _countdown, queue in enqueued] == ["webhooks"]


# --- Delivery: idempotency, retries, giving up, disabling -----------------------------------


def record(world, receiver, enqueued):
    subscription = WebhookSubscription.objects.first() or subscribe(world.a, receiver)
    [delivery] = services.webhook_events_record(
        event="task.updated", task_id=world.task.pk, fields=["title"]
    )
    assert delivery.subscription_id == subscription.pk
    return delivery


def test_delivering_twice_sends_once(world, receiver, enqueued):
    delivery = record(world, receiver, enqueued)
    assert webhook_deliver(delivery_id=delivery.pk).status == Status.SUCCEEDED
    assert webhook_deliver(delivery_id=delivery.pk) is None
    assert len(receiver.requests) == 1


def test_a_deleted_delivery_is_no_error(world, receiver, enqueued):
    delivery = record(world, receiver, enqueued)
    WebhookDelivery.objects.filter(pk=delivery.pk).delete()
    assert webhook_deliver(delivery_id=delivery.pk) is None
    deliver_webhook_task.apply(args=[delivery.pk]).get()  # the task returns quietly too
    assert receiver.requests == []


def test_an_error_answer_is_retried_with_exponential_backoff_then_given_up(
    world, receiver, enqueued, settings, capture
):
    receiver.statuses = [500]
    delays = []
    with time_machine.travel(START, tick=False) as traveller:
        delivery = record(world, receiver, enqueued)
        for attempt in range(1, settings.WEBHOOK_MAX_ATTEMPTS):
            with capture(execute=True):  # the retry is enqueued after the stamp commits
                delivery = webhook_deliver(delivery_id=delivery.pk)
            assert delivery.status == Status.FAILED
            assert delivery.attempts == attempt
            assert delivery.last_status_code == 500
            assert delivery.last_error == "HTTP 500"  # the code only, never the target's text
            delay = enqueued[-1][1]
            delays.append(delay)
            assert delivery.next_attempt_at == timezone.now() + dt.timedelta(seconds=delay)
            # Not due yet: a call now (a duplicate message) sends nothing.
            assert webhook_deliver(delivery_id=delivery.pk) is None
            traveller.shift(dt.timedelta(seconds=delay))
        with capture(execute=True):
            delivery = webhook_deliver(delivery_id=delivery.pk)

    assert delays == [30, 60, 120, 240, 480]
    assert delivery.status == Status.GAVE_UP
    assert delivery.attempts == settings.WEBHOOK_MAX_ATTEMPTS == 6
    assert delivery.next_attempt_at is None
    assert len(enqueued) == 5  # no retry after the last attempt
    assert len(receiver.requests) == 6 and all(r.valid for r in receiver.requests)
    # Every attempt carries the same webhook-id: the receiver's dedupe key.
    assert {r.headers["webhook-id"] for r in receiver.requests} == {delivery.message_id}
    assert WebhookSubscription.objects.get().consecutive_failures == 1


def test_the_backoff_is_capped_below_the_broker_visibility_timeout(settings):
    assert [services.retry_delay(n) for n in range(1, 9)] == [
        30, 60, 120, 240, 480, 960, 1800, 1800,
    ]  # fmt: skip
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    assert visibility > services.RETRY_MAX_SECONDS


def give_up_one(world, receiver, enqueued, traveller):
    delivery = record(world, receiver, enqueued)
    for _attempt in range(2):
        delivery = webhook_deliver(delivery_id=delivery.pk)
        traveller.shift(dt.timedelta(hours=1))
    return delivery


def test_repeated_failures_disable_the_subscription_and_enable_resets(
    world, receiver, enqueued, settings
):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    settings.WEBHOOK_DISABLE_AFTER = 3
    receiver.statuses = [503]
    with time_machine.travel(START, tick=False) as traveller:
        for expected_failures in (1, 2):
            assert give_up_one(world, receiver, enqueued, traveller).status == Status.GAVE_UP
            subscription = WebhookSubscription.objects.get()
            assert subscription.consecutive_failures == expected_failures
            assert subscription.is_active
        give_up_one(world, receiver, enqueued, traveller)

    subscription = WebhookSubscription.objects.get()
    assert not subscription.is_active
    assert subscription.consecutive_failures == 3
    assert subscription.disabled_at is not None
    assert subscription.disabled_reason == AUTO_DISABLED.format(count=3)
    # Disabled: new events are not recorded, pending ones are not sent.
    assert services.webhook_events_record(event="task.updated", task_id=world.task.pk) == []

    services.webhook_subscription_enable(actor=world.manager_a, subscription=subscription)
    subscription.refresh_from_db()
    assert subscription.is_active and subscription.consecutive_failures == 0
    assert subscription.disabled_at is None and subscription.disabled_reason == ""


def test_a_success_resets_the_failure_count(world, receiver, enqueued, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    receiver.statuses = [500, 500, 200]
    with time_machine.travel(START, tick=False) as traveller:
        give_up_one(world, receiver, enqueued, traveller)
        assert WebhookSubscription.objects.get().consecutive_failures == 1
        delivery = record(world, receiver, enqueued)
        assert webhook_deliver(delivery_id=delivery.pk).status == Status.SUCCEEDED
    assert WebhookSubscription.objects.get().consecutive_failures == 0


def test_a_connection_error_is_a_failure(world, receiver, enqueued):
    delivery = record(world, receiver, enqueued)
    receiver.server.shutdown()
    receiver.server.server_close()  # nothing listens on that port any more
    delivery = webhook_deliver(delivery_id=delivery.pk)
    assert delivery.status == Status.FAILED
    assert delivery.last_status_code is None
    assert delivery.last_error == DELIVERY_FAILED


def test_redirects_are_not_followed(world, receiver, enqueued):
    receiver.statuses = [302]
    delivery = record(world, receiver, enqueued)
    delivery = webhook_deliver(delivery_id=delivery.pk)
    assert delivery.status == Status.FAILED
    assert delivery.last_status_code == 302
    assert len(receiver.requests) == 1


def test_a_timeout_is_a_failure(world, receiver, enqueued, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.2
    receiver.delay = 1.0
    delivery = webhook_deliver(delivery_id=record(world, receiver, enqueued).pk)
    assert delivery.status == Status.FAILED
    assert delivery.last_status_code is None
    assert delivery.last_error == DELIVERY_FAILED  # the same as a refused connection


def test_nothing_is_sent_to_a_disabled_subscription(world, receiver, enqueued):
    delivery = record(world, receiver, enqueued)
    services.webhook_subscription_update(
        actor=system_user(), subscription=delivery.subscription_id, is_active=False
    )
    assert webhook_deliver(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == (Status.GAVE_UP, SUBSCRIPTION_DISABLED)
    assert receiver.requests == []


def test_nothing_is_sent_once_the_organization_cannot_see_the_task(world, receiver, enqueued):
    Task.objects.filter(pk=world.task.pk).update(lead_organization=world.m)
    subscription = subscribe(world.a, receiver)
    # Recorded while A could see it (supporting), then A was removed from the task.
    world.task.supporting_organizations.add(world.a)
    delivery = record(world, receiver, enqueued)
    world.task.supporting_organizations.remove(world.a)

    assert webhook_deliver(delivery_id=delivery.pk) is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == (Status.GAVE_UP, NO_LONGER_VISIBLE)
    assert receiver.requests == []
    subscription.refresh_from_db()
    assert subscription.consecutive_failures == 0


def test_a_dead_worker_s_attempt_is_taken_up_after_its_lease(world, receiver, enqueued):
    with time_machine.travel(START, tick=False) as traveller:
        delivery = record(world, receiver, enqueued)
        claim = services._claim(delivery.pk)  # the worker claimed it, then died
        assert claim is not None
        assert services.webhook_deliver(delivery_id=delivery.pk) is None  # leased
        traveller.shift(services.CLAIM_LEASE + services.requeue_after())
        assert services.webhook_deliveries_requeue() == 1
    assert services.webhook_deliver(delivery_id=delivery.pk).status == Status.SUCCEEDED
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert len(receiver.requests) == 1


# --- Rotation and ping -------------------------------------------------------------------------


def test_after_a_rotation_both_secrets_sign_for_a_while(world, receiver, enqueued):
    subscription = subscribe(world.a, receiver)
    old = receiver.secret
    subscription, new = services.webhook_subscription_rotate_secret(
        actor=world.manager_a, subscription=subscription
    )
    assert new != old and new.startswith("whsec_")
    webhook_deliver(delivery_id=record(world, receiver, enqueued).pk)
    assert receiver.requests[-1].valid  # verified with the old secret
    receiver.secret = new
    webhook_deliver(delivery_id=record(world, receiver, enqueued).pk)
    assert receiver.requests[-1].valid
    assert len(receiver.requests[-1].headers["webhook-signature"].split()) == 2

    with time_machine.travel(timezone.now() + services.ROTATION_GRACE + dt.timedelta(seconds=1)):
        webhook_deliver(delivery_id=record(world, receiver, enqueued).pk)
    assert len(receiver.requests[-1].headers["webhook-signature"].split()) == 1


def test_rotating_without_grace_stops_the_old_secret_at_once(world, receiver, enqueued):
    subscription = subscribe(world.a, receiver)
    old = receiver.secret
    services.webhook_subscription_rotate_secret(
        actor=world.manager_a, subscription=subscription, keep_previous=False
    )
    webhook_deliver(delivery_id=record(world, receiver, enqueued).pk)
    assert receiver.secret == old
    assert not receiver.requests[-1].valid


def test_ping(world, receiver, enqueued, capture):
    subscription = subscribe(world.a, receiver, events=["task.created"])
    with capture(execute=True):
        delivery = services.webhook_subscription_ping(
            actor=world.coordinator_a, subscription=subscription
        )
    assert enqueued.ids == [delivery.pk]
    assert webhook_deliver(delivery_id=delivery.pk).status == Status.SUCCEEDED
    body = receiver.requests[0].json
    assert body["type"] == PING_EVENT
    assert body["data"] == {"webhook": subscription.pk, "organization": world.a.pk}
    assert receiver.requests[0].valid
