"""Reminders end to end: the sweep commits notifications in PostgreSQL and enqueues them on
Redis; a real Celery worker process renders and sends each over SMTP to a local aiosmtpd
server, which receives exactly the expected messages (by Message-ID), once each."""

import datetime as dt

import pytest

from notifications import emails, services
from notifications.models import Notification
from tests.integration.conftest import wait_for
from tests.notifications import reminders_world as w
from tests.notifications.reminders_world import DUE, NEW_YORK, local

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_reminders_reach_a_real_smtp_server_once(reminder_worker, smtp_server):
    inbox, _port = smtp_server
    world = w.build()
    moment = local(DUE - dt.timedelta(days=1), NEW_YORK)

    result = services.reminders_sweep(now=moment)
    assert result.created == 2
    expected = {
        emails.message_id(key): recipient
        for key, recipient in Notification.objects.values_list("dedupe_key", "recipient__email")
    }

    arrived = wait_for(lambda: len(inbox.message_ids()) >= 2, timeout=90)
    assert arrived, "the worker never sent:\n" + reminder_worker.output()
    assert wait_for(
        lambda: Notification.objects.filter(email_sent_at__isnull=False).count() == 2, timeout=30
    )

    # The sweep again (and the same instant again): nothing new is created or sent.
    assert services.reminders_sweep(now=moment).created == 0
    wait_for(lambda: len(inbox.message_ids()) > 2, timeout=5)
    assert sorted(inbox.message_ids()) == sorted(expected)
    for rcpt_tos, message in inbox.messages:
        assert rcpt_tos == [expected[message["Message-ID"]]]
        body = message.get_body(preferencelist=("plain",)).get_content()
        assert f"https://tracker.example.org/admin/plans/task/{world.task.pk}/change/" in body
        if rcpt_tos == [world.seoul.email]:
            assert "1일 남았습니다" in body
        else:
            assert "due in 1 days" in body
    assert "notifications.deliver_notifications" in reminder_worker.output()
    assert len(set(inbox.peers)) == 1  # the batch over one SMTP connection
