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


def test_send_reminders_also_sends_the_digests(demo, mailoutbox):
    from notifications import emails, services
    from notifications.models import Digest
    from tracker.models import User

    seoul = User.objects.get(username="coordinator.kr")
    new_york = User.objects.get(username="coordinator.us")
    for user in (seoul, new_york):
        services.notification_preferences_update(actor=user, user=user, digest=True)

    # 21:00 in Seoul, 07:00 in New York: only Seoul's 08:00 has passed.
    output = run()
    assert "Created 1 digest(s); sent 1 digest email(s)." in output
    digest = Digest.objects.get()
    assert (digest.user, digest.day, digest.status) == (seoul, dt.date(2027, 2, 12), "sent")
    (message,) = [
        m
        for m in mailoutbox
        if m.extra_headers["Message-ID"] == emails.message_id(digest.dedupe_key)
    ]
    assert message.to == [seoul.email] and "일일 요약" in message.subject

    # --now: New York's digest of the day too, before its 08:00.
    output = run("--now")
    assert "Created 1 digest(s); sent 1 digest email(s)." in output
    assert Digest.objects.filter(user=new_york, day=dt.date(2027, 2, 12), status="sent").exists()
    sent = len(mailoutbox)
    again = run("--now")
    assert "Created 0 digest(s); sent 0 digest email(s)." in again
    assert len(mailoutbox) == sent
