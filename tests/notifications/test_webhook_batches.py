"""Webhook deliveries in batches through the outbox (issue 11, item 4): a batch is claimed
in one statement and checked with a fixed number of queries whatever its size; a stale
attempt (its lease ran out, a newer claim took the row over) records nothing; a receiver
that does not answer goes behind the others, and the batch gives back what its lease leaves
no time for. Concurrent claimers on PostgreSQL: tests/integration/test_webhook_batches.py."""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications import services, webhook_http, webhooks
from notifications.models import WebhookDelivery, WebhookEvent, WebhookSubscription
from notifications.services import SUBSCRIPTION_DISABLED
from tracker.services import system_user

pytestmark = pytest.mark.django_db

Status = WebhookDelivery.Status
START = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


def subscribe(world, receiver, tag: str) -> WebhookSubscription:
    subscription, secret = services.webhook_subscription_create(
        actor=system_user(),
        organization=world.a,
        url=f"{receiver.url}?{tag}",
        events=list(WebhookEvent.values),
    )
    receiver.secret = secret
    return subscription


def deliveries(subscription, count: int, task_id: int) -> list[int]:
    now = START - dt.timedelta(minutes=1)  # due at START and now
    rows = WebhookDelivery.objects.bulk_create(
        services._new_delivery(
            subscription, "task.updated", task_id, {"type": "task.updated", "n": n}, now
        )
        for n in range(count)
    )
    return [row.pk for row in rows]


def interleaved(*lists: list[int]) -> list[int]:
    return [pk for row in zip(*lists, strict=True) for pk in row]


# --- One claim statement, a fixed number of queries ------------------------------------------


def test_a_batch_is_claimed_in_one_statement_with_a_fixed_number_of_queries(
    world, receiver, enqueued
):
    first, second = subscribe(world, receiver, "1"), subscribe(world, receiver, "2")
    disabled = subscribe(world, receiver, "off")

    def claim_queries(per_subscription: int) -> list[str]:
        ids = interleaved(
            *(deliveries(s, per_subscription, world.task.pk) for s in (first, second, disabled))
        )
        WebhookSubscription.objects.filter(pk=disabled.pk).update(is_active=False)
        with CaptureQueriesContext(connection) as queries:
            claims = services._claims(ids)
        WebhookSubscription.objects.filter(pk=disabled.pk).update(is_active=True)
        assert len(claims) == 2 * per_subscription  # the disabled one's are given up
        return [query["sql"] for query in queries]

    small, large = claim_queries(2), claim_queries(15)
    assert len(small) == len(large)
    claims = [sql for sql in large if "attempts = attempts + 1" in sql]
    assert len(claims) == 1 and "RETURNING" in claims[0] and "SKIP LOCKED" in claims[0]
    assert (
        WebhookDelivery.objects.filter(subscription=disabled, status=Status.GAVE_UP).count() == 17
    )
    assert set(
        WebhookDelivery.objects.filter(subscription=disabled).values_list("last_error", "attempts")
    ) == {(SUBSCRIPTION_DISABLED, 0)}  # no attempt was made


def test_a_whole_batch_costs_its_claim_plus_a_fixed_stamp_per_row(world, receiver, enqueued):
    subscription = subscribe(world, receiver, "1")

    def batch_queries(count: int) -> int:
        ids = deliveries(subscription, count, world.task.pk)
        with CaptureQueriesContext(connection) as queries:
            stamped = services.webhooks_deliver_batch(delivery_ids=ids)
        assert [d.status for d in stamped] == [Status.SUCCEEDED] * count
        assert sum("attempts = attempts + 1" in q["sql"] for q in queries) == 1
        return len(queries)

    three, nine = batch_queries(3), batch_queries(9)
    per_row = (nine - three) / 6
    assert per_row == int(per_row) and per_row <= 4  # savepoint, lock, fenced update, release
    assert three - 3 * per_row <= 5  # the claim (+ its savepoints), the rows, visibility
    assert len(receiver.requests) == 12 and all(r.valid for r in receiver.requests)


def test_a_batch_goes_out_as_one_message_per_batch_of_ids(world, receiver, enqueued, settings):
    settings.DELIVERY_BATCH_SIZE = 4
    subscription = subscribe(world, receiver, "1")
    ids = deliveries(subscription, 10, world.task.pk)
    services._enqueue(ids)
    assert [batch for batch, _countdown, _queue in enqueued.messages] == [
        ids[0:4],
        ids[4:8],
        ids[8:10],
    ]
    assert webhooks.batch_size() == 4
    settings.DELIVERY_BATCH_SIZE = 5000
    assert webhooks.batch_size() == webhooks.WEBHOOK_BATCH_MAX


# --- The fence ---------------------------------------------------------------------------------


def test_a_stale_attempt_cannot_stamp_over_a_newer_claim(world, receiver, enqueued):
    subscription = subscribe(world, receiver, "1")
    [pk] = deliveries(subscription, 1, world.task.pk)
    with time_machine.travel(START, tick=False) as traveller:
        stale = services._claim(pk)  # this worker stalls past its lease...
        traveller.shift(services.CLAIM_LEASE + dt.timedelta(seconds=1))
        fresh = services._claim(pk)  # ...and another one takes the row over
        assert fresh is not None and WebhookDelivery.objects.get(pk=pk).attempts == 2

        assert services._stamp(stale, services._Outcome(204, "")) is None
        row = WebhookDelivery.objects.get(pk=pk)
        assert (row.status, row.attempts, row.delivered_at) == (Status.PENDING, 2, None)

        failed = services._stamp(fresh, services._Outcome(500, "HTTP 500"))
        assert (failed.status, failed.attempts) == (Status.FAILED, 2)
        # Not even once the newer attempt is done: the stale one records nothing.
        assert services._stamp(stale, services._Outcome(204, "")) is None
        row.refresh_from_db()
        assert (row.status, row.last_status_code, row.delivered_at) == (Status.FAILED, 500, None)


# --- A receiver that does not answer -----------------------------------------------------------


@pytest.fixture
def slow_world(world, receiver, monkeypatch):
    """Subscription `hanging` (its POSTs never answer) and `fine`. Every POST to `hanging`
    takes WEBHOOK_TIMEOUT_SECONDS of the (travelled) clock and fails; `sent` records the
    subscription of each POST in order."""
    hanging, fine = subscribe(world, receiver, "hanging"), subscribe(world, receiver, "fine")
    sent: list[int] = []
    real_post = webhook_http.post

    def post(url, *, content, headers, timeout):
        if url.endswith("?hanging"):
            sent.append(hanging.pk)
            slow_world.traveller.shift(dt.timedelta(seconds=timeout))
            return webhook_http.Result(None, webhook_http.DELIVERY_FAILED)
        sent.append(fine.pk)
        return real_post(url, content=content, headers=headers, timeout=timeout)

    monkeypatch.setattr(webhook_http, "post", post)

    class SlowWorld:
        pass

    slow_world = SlowWorld()
    slow_world.hanging, slow_world.fine, slow_world.sent = hanging, fine, sent
    return slow_world


def test_a_receiver_that_does_not_answer_goes_behind_the_others(
    slow_world, world, receiver, enqueued, django_capture_on_commit_callbacks
):
    hanging, fine = slow_world.hanging, slow_world.fine
    ids = interleaved(
        deliveries(hanging, 3, world.task.pk), deliveries(fine, 3, world.task.pk)
    )  # hanging's first: the oldest row
    with (
        time_machine.travel(START, tick=False) as slow_world.traveller,
        django_capture_on_commit_callbacks(execute=True),
    ):
        stamped = services.webhooks_deliver_batch(delivery_ids=ids)

    # One timeout of the hanging receiver, then every delivery of the answering one.
    H, F = hanging.pk, fine.pk
    assert slow_world.sent == [H, F, F, F, H, H]
    assert [d.status for d in stamped if d.subscription_id == F] == [Status.SUCCEEDED] * 3
    assert [d.status for d in stamped if d.subscription_id == H] == [Status.FAILED] * 3
    # Their retries: one message for the three (the same backoff).
    assert enqueued.messages == [(sorted(d.pk for d in stamped if d.subscription_id == H), 30,
                                  "webhooks")]  # fmt: skip


def test_a_hanging_receiver_never_makes_the_others_miss_their_lease(
    slow_world, world, receiver, enqueued, settings, django_capture_on_commit_callbacks
):
    """40 deliveries to a receiver that never answers (each POST waits the whole 10 s
    timeout) and 3 to one that answers, in one batch: the answering one's are sent and
    stamped right after the first timeout; the batch starts no POST after its send deadline
    (inside the lease and the task's soft time limit) and gives back the rest: due now, no
    attempt counted, enqueued again."""
    settings.WEBHOOK_TIMEOUT_SECONDS = 10
    hanging, fine = slow_world.hanging, slow_world.fine
    hanging_ids = deliveries(hanging, 40, world.task.pk)
    fine_ids = deliveries(fine, 3, world.task.pk)
    with (
        time_machine.travel(START, tick=False) as slow_world.traveller,
        django_capture_on_commit_callbacks(execute=True),
    ):
        stamped = services.webhooks_deliver_batch(delivery_ids=hanging_ids + fine_ids)
        ended = timezone.now()

    lease_end = START + services.CLAIM_LEASE
    deadline = webhooks._send_deadline(START)
    assert deadline + dt.timedelta(seconds=10) < lease_end
    assert deadline < START + dt.timedelta(seconds=webhooks.SOFT_TIME_LIMIT - 10)
    fine_rows = WebhookDelivery.objects.filter(pk__in=fine_ids)
    assert {(d.status, d.attempts) for d in fine_rows} == {(Status.SUCCEEDED, 1)}
    assert all(d.delivered_at == START + dt.timedelta(seconds=10) for d in fine_rows)
    # A POST every 10 s while the deadline allows; the batch ends inside the lease.
    tried = sum(1 for pk in slow_world.sent if pk == hanging.pk)
    assert tried == (deadline - START) // dt.timedelta(seconds=10) + 1
    assert ended <= deadline + dt.timedelta(seconds=10) < lease_end
    rows = {d.pk: d for d in WebhookDelivery.objects.filter(pk__in=hanging_ids)}
    failed = [pk for pk in hanging_ids if rows[pk].status == Status.FAILED]
    given_back = [pk for pk in hanging_ids if rows[pk].status == Status.PENDING]
    assert len(failed) == tried and len(given_back) == 40 - tried
    assert {rows[pk].attempts for pk in failed} == {1}
    assert {(rows[pk].attempts, rows[pk].next_attempt_at) for pk in given_back} == {(0, ended)}
    assert sorted(enqueued.ids) == sorted(failed + given_back)
    assert (given_back, None, "webhooks") in enqueued.messages
    assert len([d for d in stamped if d.subscription_id == hanging.pk]) == tried


def test_a_subscription_disabled_by_its_failures_stops_its_lane(
    world, receiver, enqueued, settings
):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    settings.WEBHOOK_DISABLE_AFTER = 2
    receiver.statuses = [500]
    subscription = subscribe(world, receiver, "1")
    ids = deliveries(subscription, 5, world.task.pk)

    stamped = services.webhooks_deliver_batch(delivery_ids=ids)

    assert [d.status for d in stamped] == [Status.GAVE_UP] * 2
    assert len(receiver.requests) == 2
    subscription.refresh_from_db()
    assert not subscription.is_active and subscription.consecutive_failures == 2
    rest = WebhookDelivery.objects.filter(pk__in=ids[2:])
    assert {(d.status, d.last_error, d.attempts) for d in rest} == {
        (Status.GAVE_UP, SUBSCRIPTION_DISABLED, 0)
    }
