"""What happened outside is recorded, never done twice: when the database session dies right
after the SMTP server accepted an email (or a receiver answered 2xx), the stamp is retried on
a new connection and the row is stamped sent; the email is not sent again (issue 9, item 2).

The fault is real: a second PostgreSQL session ends the delivering sessions
(`pg_terminate_backend`, what a restart or a failover does to them) at the moment the outside
world answered. An email batch stamps on a helper session (notifications.outbox.StampsAside),
so for emails every session of the test database but the killer's is ended. The mail server
(Django's locmem outbox) and the webhook receiver (a local HTTP server) are the outside
world."""

import datetime as dt

import psycopg
import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection

from notifications import services
from notifications.models import Notification, WebhookDelivery
from notifications.tasks import deliver_webhook_task
from tests.notifications import reminders_world as w
from tests.notifications.receiver import start_receiver, stop_receiver
from tests.notifications.reminders_world import DUE, NEW_YORK, local
from tests.notifications.world import build_world
from tracker.services import system_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MOMENT = local(DUE - dt.timedelta(days=1), NEW_YORK)


def end_session(pid: int) -> None:
    """End the PostgreSQL session `pid` from a second session."""
    s = connection.settings_dict
    with psycopg.connect(
        host=s["HOST"] or "127.0.0.1",
        port=s["PORT"] or 5432,
        user=s["USER"],
        password=s["PASSWORD"] or None,
        dbname=s["NAME"],
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


def end_other_sessions() -> int:
    """End every session of the test database but this one's (the test's own connection and
    a batch's stamping session among them); how many."""
    s = connection.settings_dict
    with psycopg.connect(
        host=s["HOST"] or "127.0.0.1",
        port=s["PORT"] or 5432,
        user=s["USER"],
        password=s["PASSWORD"] or None,
        dbname=s["NAME"],
        autocommit=True,
    ) as other:
        return len(
            other.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        )


def own_session() -> int:
    connection.ensure_connection()
    return connection.connection.info.backend_pid


class CutAfterAccept(EmailBackend):
    """The mail server accepts the message; right then (at the `cut_at`-th message) the
    delivering sessions die."""

    cut_at = 2
    ended = 0

    def send_messages(self, messages):
        sent = super().send_messages(messages)
        if len(mail.outbox) == self.cut_at:
            CutAfterAccept.ended = end_other_sessions()
        return sent


@pytest.fixture
def close_after():
    yield
    connection.close()  # whatever state the test left the session in


def test_an_accepted_email_is_stamped_after_the_database_session_died(settings, close_after):
    settings.EMAIL_BACKEND = f"{__name__}.CutAfterAccept"
    w.build()
    with time_machine.travel(MOMENT, tick=False):
        services.reminders_sweep(enqueue=False)
    ids = list(Notification.objects.order_by("pk").values_list("pk", flat=True)[:2])
    assert len(ids) == 2

    with time_machine.travel(MOMENT + dt.timedelta(minutes=1), tick=False):
        # The second email is cut after its accept: its stamping session (which stamped the
        # first) is gone, and so is the batch's own.
        results = services.notifications_deliver_batch(notification_ids=ids)
        assert CutAfterAccept.ended >= 2
        assert [r.sent for r in results] == [True, True]
        connection.close()  # the next task starts on a checked connection (CONN_HEALTH_CHECKS)
        rows = Notification.objects.filter(pk__in=ids)
        assert {(r.attempts, r.failure_reason) for r in rows} == {(1, "")}
        assert all(r.email_sent_at is not None for r in rows)
        # Delivering again (a redelivered message) sends nothing.
        assert services.notifications_deliver_batch(notification_ids=ids) == []
    assert len(mail.outbox) == 2


def test_a_webhook_answered_2xx_is_stamped_after_the_database_session_died(
    settings, monkeypatch, close_after
):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the receiver is local
    monkeypatch.setattr(deliver_webhook_task, "apply_async", lambda *args, **kwargs: None)
    world = build_world()
    receiver = start_receiver()
    try:
        subscription, secret = services.webhook_subscription_create(
            actor=system_user(), organization=world.a, url=receiver.url, events=["task.created"]
        )
        receiver.secret = secret
        delivery = services.webhook_subscription_ping(
            actor=system_user(), subscription=subscription
        )
        pid = own_session()
        answer = receiver.answer

        def answer_then_cut():  # the receiver answers 2xx; then the session dies
            end_session(pid)
            return answer()

        receiver.answer = answer_then_cut
        stamped = services.webhook_deliver(delivery_id=delivery.pk)
        assert own_session() != pid

        assert stamped is not None and stamped.status == WebhookDelivery.Status.SUCCEEDED
        delivery.refresh_from_db()
        assert delivery.status == WebhookDelivery.Status.SUCCEEDED and delivery.attempts == 1
        assert services.webhook_deliver(delivery_id=delivery.pk) is None
        assert len(receiver.requests) == 1
    finally:
        stop_receiver(receiver)
