"""Webhook batches on PostgreSQL: concurrent claimers split the due deliveries between them
(SKIP LOCKED; never one row to two claimers), and several workers delivering overlapping
batches at once make exactly one POST per delivery (counted at a real local receiver)."""

import datetime as dt
import threading
from collections import Counter

import pytest
from django.db import connection, transaction
from django.utils import timezone

from notifications import services
from notifications.models import WebhookDelivery, WebhookEvent
from tests.notifications.receiver import start_receiver, stop_receiver
from tests.notifications.world import build_world
from tracker.services import system_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

Status = WebhookDelivery.Status


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the receiver is local
    receiver = start_receiver()
    try:
        yield receiver
    finally:
        stop_receiver(receiver)


def make_deliveries(receiver, count: int, subscriptions: int = 2) -> list[int]:
    world = build_world()
    now = timezone.now() - dt.timedelta(seconds=1)
    ids = []
    for number in range(subscriptions):
        subscription, secret = services.webhook_subscription_create(
            actor=system_user(),
            organization=world.a,
            url=f"{receiver.url}?n={number}",
            events=list(WebhookEvent.values),
        )
        if receiver.secret is None:
            receiver.secret = secret
        else:  # one receiver for all: every subscription signs with its secret
            subscription.set_secret(receiver.secret)
            subscription.save(update_fields=["secret_encrypted"])
        rows = WebhookDelivery.objects.bulk_create(
            services._new_delivery(
                subscription, "task.updated", world.task.pk, {"type": "task.updated", "n": n}, now
            )
            for n in range(count // subscriptions)
        )
        ids += [row.pk for row in rows]
    return sorted(ids)


def test_two_claimers_split_a_batch_without_overlap(receiver):
    ids = make_deliveries(receiver, 60)
    first_claimed, release = threading.Event(), threading.Event()
    got = {}

    def first():
        try:
            with transaction.atomic():  # the claim's row locks are held until this commits
                got["first"] = services._claims(ids[:35])
                first_claimed.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert first_claimed.wait(timeout=30)
        # The whole batch, while the first claim has not committed: its rows are skipped.
        got["second"] = services._claims(ids)
    finally:
        release.set()
        thread.join(timeout=30)
    first_ids = {claim.delivery_id for claim in got["first"]}
    second_ids = {claim.delivery_id for claim in got["second"]}
    assert len(first_ids) == 35 and len(second_ids) == 25
    assert not first_ids & second_ids
    assert first_ids | second_ids == set(ids)
    assert set(WebhookDelivery.objects.values_list("attempts", flat=True)) == {1}


def test_concurrent_workers_post_each_delivery_exactly_once(receiver, settings):
    ids = make_deliveries(receiver, 120, subscriptions=3)
    start = threading.Barrier(4)
    stamped: list[int] = []
    lock = threading.Lock()

    def worker(offset: int):
        # Every worker gets every id, in batches of 10 starting at a different place.
        order = ids[offset:] + ids[:offset]
        try:
            start.wait(timeout=30)
            for begin in range(0, len(order), 10):
                done = services.webhooks_deliver_batch(delivery_ids=order[begin : begin + 10])
                with lock:
                    stamped.extend(delivery.pk for delivery in done)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n * 30,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(stamped) == ids  # each stamped by exactly one worker
    posted = Counter(request.headers["webhook-id"] for request in receiver.requests)
    assert set(posted.values()) == {1} and len(posted) == len(ids)
    assert all(request.valid for request in receiver.requests)
    rows = WebhookDelivery.objects.filter(pk__in=ids)
    assert {(row.status, row.attempts) for row in rows} == {(Status.SUCCEEDED, 1)}
