"""What happened outside is recorded, never done twice: when the database session dies right
after the SMTP server accepted an email (or a receiver answered 2xx), the stamp is retried on
a new connection and the row is stamped sent; the email is not sent again (issue 9, item 2).

The fault is real: a second PostgreSQL session ends the delivering session
(`pg_terminate_backend`, what a restart or a failover does to it) at the moment the outside
world answered. The mail server (Django's locmem outbox) and the webhook receiver (a local
HTTP server) are the outside world."""

import datetime as dt

import psycopg
import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection

from notifications import services
from notifications.models import Notification, WebhookDelivery
from notifications.tasks import deliver_webhook_task, deliver_webhooks_task
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


def own_session() -> int:
    connection.ensure_connection()
    return connection.connection.info.backend_pid


class CutAfterAccept(EmailBackend):
    """The mail server accepts the message; right then the delivering session dies."""

    def send_messages(self, messages):
        sent = super().send_messages(messages)
        end_session(own_session())
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
    first = Notification.objects.order_by("pk").first()
    pid = own_session()

    with time_machine.travel(MOMENT + dt.timedelta(minutes=1), tick=False):
        result = services.notification_deliver(notification_id=first.pk)
        assert own_session() != pid  # the stamp was made on a new session

        assert result.sent
        first.refresh_from_db()
        assert first.email_sent_at is not None and first.attempts == 1
        assert first.failure_reason == ""
        # Delivering again (a redelivered message) sends nothing.
        assert services.notification_deliver(notification_id=first.pk) is None
    assert len(mail.outbox) == 1


def test_a_webhook_answered_2xx_is_stamped_after_the_database_session_died(
    settings, monkeypatch, close_after
):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the receiver is local
    monkeypatch.setattr(deliver_webhook_task, "apply_async", lambda *args, **kwargs: None)
    monkeypatch.setattr(deliver_webhooks_task, "apply_async", lambda *args, **kwargs: None)
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
