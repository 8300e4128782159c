"""`send_reminders --now` on the demo data: due-soon and overdue reminders emailed once, each
in its recipient's language; a second run sends nothing."""

import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from notifications.models import Notification

pytestmark = pytest.mark.django_db

# The demo's data run to 2026-11-21; on 2027-02-12 task EN-07 (due 2027-02-26) is 14 days off.
LATER = dt.datetime(2027, 2, 12, 12, 0, tzinfo=dt.UTC)  # 21:00 in Seoul, 07:00 in New York


@pytest.fixture
def demo(settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())


def run(*args) -> str:
    out = StringIO()
    with time_machine.travel(LATER, tick=False):
        call_command("send_reminders", *args, stdout=out)
    return out.getvalue()


def test_send_reminders_now_on_the_demo(demo, mailoutbox):
    output = run("--now")
    kinds = set(Notification.objects.values_list("kind", flat=True))
    assert {"due_soon", "overdue"} <= kinds
    sent = Notification.objects.filter(email_sent_at__isnull=False).select_related("recipient")
    assert sent.count() == len(mailoutbox) > 0
    assert f"Created {Notification.objects.count()} notification(s); sent {len(mailoutbox)}" in (
        output
    )
    by_address = {}
    for message in mailoutbox:
        by_address.setdefault(message.to[0], []).append(message)
    languages = set()
    for notification in sent:
        messages = by_address[notification.recipient.email]
        languages.add(notification.recipient.language)
        for message in messages:
            korean = "님," in message.body
            assert korean == (notification.recipient.language == "ko"), message.body
    assert languages == {"en", "ko"}
    # Each email once: distinct Message-IDs, one per sent notification.
    ids = [m.extra_headers["Message-ID"] for m in mailoutbox]
    assert len(set(ids)) == len(ids)

    again = run("--now")
    assert "Created 0 notification(s); sent 0 email(s)" in again
    assert len(mailoutbox) == len(ids)
