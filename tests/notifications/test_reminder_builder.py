"""A batch builds its reminder emails from templates rendered once per (template, language)
and filled per recipient (notifications.emails.ReminderBuilder): the result must be exactly
what rendering both templates in full gives (`emails.build`), for every kind in both
languages, with values that need HTML escaping; a template that uses anything else is
rendered in full every time."""

import datetime as dt

import pytest

from notifications import emails
from notifications.models import Notification
from tests.notifications import reminders_world as w

pytestmark = pytest.mark.django_db

KINDS = list(emails.SUBJECTS)


def reminders(world) -> list[Notification]:
    task = world.task
    task.title_en = 'Fish & <chips> "to go"'
    task.title_ko = "생선 & <감자> '포장'"
    task.save()
    world.seoul.first_name, world.seoul.last_name = "<b>Kim</b>", "& Co"
    world.seoul.save()
    now = dt.datetime(2026, 3, 9, tzinfo=dt.UTC)
    rows = [
        Notification(
            recipient=recipient,
            task=task,
            kind=kind,
            due_date=task.due_date,
            step=3,
            dedupe_key=f"builder:{recipient.pk}:{kind}",
            created_at=now,
            due_at=now,
        )
        for recipient in (world.seoul, world.new_york)
        for kind in KINDS
    ]
    Notification.objects.bulk_create(rows)
    return list(
        Notification.objects.select_related("recipient", "task", "task__plan").order_by("pk")
    )


def parts(email) -> tuple:
    return (
        email.subject,
        email.body,
        email.alternatives,
        email.to,
        email.from_email,
        email.extra_headers,
        email.message().as_bytes().split(b"\n", 2)[2],  # after Content-Type and MIME-Version
    )


def test_the_builder_gives_exactly_the_full_render(settings):
    settings.SITE_URL = "https://tracker.example.org"
    world = w.build()
    rows = reminders(world)
    emails._skeletons.clear()
    builder = emails.ReminderBuilder(rows)
    for notification in rows:
        built = builder.build(notification)
        reference = emails.build(notification)
        assert isinstance(built, emails.RenderedOnceEmail)
        assert [parts(built)[:6]] == [parts(reference)[:6]], notification.kind
    # Filled from skeletons: every (template, language) was checked and trusted.
    assert len(emails._skeletons) == 2 * 2 * len(KINDS)
    assert {skeleton.checked for skeleton in emails._skeletons.values()} == {True}
    korean = builder.build(rows[0])
    assert "생선 &amp; &lt;감자&gt;" in korean.alternatives[0][0]
    assert "생선 & <감자>" in korean.body


def test_a_template_using_other_values_is_rendered_in_full(settings, monkeypatch):
    settings.SITE_URL = "https://tracker.example.org"
    world = w.build()
    rows = [n for n in reminders(world) if n.kind == "overdue"]
    emails._skeletons.clear()
    # A template that reads a value the skeleton does not carry: its skeleton differs from
    # the full render, so it is not trusted.
    original = emails._marked_context

    def without_name(language):
        context = original(language)
        context["name"] = "somebody"
        return context

    monkeypatch.setattr(emails, "_marked_context", without_name)
    builder = emails.ReminderBuilder(rows)
    for notification in rows:
        built = builder.build(notification)
        assert parts(built)[:6] == parts(emails.build(notification))[:6]
    assert {s.checked for s in emails._skeletons.values()} == {False}
    emails._skeletons.clear()
