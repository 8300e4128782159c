"""Reminder emails: plain text and HTML from templates, in the recipient's language, with a
link to the task and its plan and a Message-ID derived from the notification's dedupe key
(the same on every attempt, so a receiving system can discard a repeat)."""

import hashlib
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from .schedule import zone

LANGUAGES = ("en", "ko")

# English msgids (str.format templates); the Korean is in notifications/locale/ko.
SUBJECTS = {
    "due_soon": gettext_noop("[{ref}] due in {days} days ({due})"),
    "due_today": gettext_noop("[{ref}] due today ({due})"),
    "overdue": gettext_noop("[{ref}] overdue since {due}"),
    "escalation_manager": gettext_noop("[{ref}] overdue {days} days: please follow up"),
    "escalation_coordinators": gettext_noop(
        "[{ref}] overdue {days} days: escalated to the plan's coordinators"
    ),
    "awaiting_verification": gettext_noop("[{ref}] done {days} days ago, awaiting verification"),
}


def message_id(dedupe_key: str) -> str:
    digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]
    host = urlsplit(settings.SITE_URL).hostname or "tracker"
    return f"<{digest}@{host}>"


def admin_url(name: str, pk: int) -> str:
    return settings.SITE_URL + reverse(f"admin:{name}_change", args=[pk])


class RenderedOnceEmail(EmailMultiAlternatives):
    """An email whose MIME message is built once: delivery builds it to check every header
    before sending (services: a newline in a header fails there, for good), and the backend
    builds it again to send it. Nothing changes the email in between."""

    _rendered = None

    def message(self, *args, **kwargs):
        if self._rendered is None:
            self._rendered = super().message(*args, **kwargs)
        return self._rendered


def _email(
    template: str, context: dict, subject: tuple, to: str, key: str, language: str, connection
) -> EmailMultiAlternatives:
    """Plain text and HTML from `template`.txt/.html in `language` (the subject too), with the
    Message-ID derived from `key` (the same on every attempt, so a receiving system can discard
    a repeat)."""
    with translation.override(language):
        subject = gettext(subject[0]).format(**subject[1])
        body = render_to_string(f"{template}.txt", context)
        html = render_to_string(f"{template}.html", context)
    email = RenderedOnceEmail(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={
            "Message-ID": message_id(key),
            "Content-Language": language,
            "Auto-Submitted": "auto-generated",
        },
        connection=connection,
    )
    email.attach_alternative(html, "text/html")
    return email


def build(notification, connection=None) -> EmailMultiAlternatives:
    """The email of a notification (recipient, task and plan loaded). Titles in the
    recipient's language (the other language's when there is no version in it)."""
    recipient = notification.recipient
    with translation.override(recipient.language if recipient.language in LANGUAGES else "en"):
        return _build(notification, connection)


def _build(notification, connection) -> EmailMultiAlternatives:
    recipient = notification.recipient
    task = notification.task
    plan = task.plan
    language = recipient.language if recipient.language in LANGUAGES else "en"
    tz = zone(recipient.time_zone)
    context = {
        "ko": language == "ko",
        "notification": notification,
        "recipient": recipient,
        "name": recipient.get_full_name() or recipient.username,
        "task": task,
        "plan": plan,
        "days": notification.step,
        "due_date": notification.due_date.isoformat(),
        "deadline": task.deadline_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        "time_zone": recipient.time_zone,
        "task_url": admin_url("plans_task", task.pk),
        "plan_url": admin_url("plans_plan", plan.pk),
        "inbox_url": settings.SITE_URL + reverse("admin:notifications_notification_changelist"),
    }
    kind = notification.kind
    subject = (
        SUBJECTS[kind],
        {"ref": task.ref, "days": notification.step, "due": notification.due_date.isoformat()},
    )
    return _email(
        f"notifications/email/{kind}", context, subject, recipient.email,
        notification.dedupe_key, language, connection,
    )  # fmt: skip


# --- Daily digest ---------------------------------------------------------------------------

DIGEST_SUBJECT = gettext_noop("Daily digest for {day}: {count} task(s) to look at")
# In the order the email shows them.
DIGEST_SECTIONS = ("overdue", "due_soon", "awaiting_verification")


def _local(moment, tz) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else ""


def build_digest(digest, content, connection=None) -> EmailMultiAlternatives:
    """The email of a digest (its user loaded) reporting `content` (services.DigestContent:
    task lists with their plans loaded). Deadlines and completion times in the user's zone,
    titles in the user's language; the Message-ID derives from the digest's key, the same on
    every attempt."""
    with translation.override(digest.user.language if digest.user.language in LANGUAGES else "en"):
        return _build_digest(digest, content, connection)


def _build_digest(digest, content, connection) -> EmailMultiAlternatives:
    user = digest.user
    language = user.language if user.language in LANGUAGES else "en"
    tz = zone(user.time_zone)

    def item(task) -> dict:
        return {
            "ref": task.ref,
            "title": task.title,
            "plan": task.plan.code,
            "due_date": task.due_date.isoformat(),
            "deadline": _local(task.deadline_at, tz),
            "completed": _local(task.completed_at, tz),
            "url": admin_url("plans_task", task.pk),
        }

    sections = [
        {"kind": kind, "items": [item(task) for task in getattr(content, kind)]}
        for kind in DIGEST_SECTIONS
        if getattr(content, kind)
    ]
    context = {
        "ko": language == "ko",
        "name": user.get_full_name() or user.username,
        "day": digest.day.isoformat(),
        "time_zone": user.time_zone,
        "sections": sections,
        "count": content.task_count,
        "tasks_url": settings.SITE_URL + reverse("admin:plans_task_changelist"),
        "preferences_url": settings.SITE_URL
        + reverse("admin:notifications_mynotificationpreference_changelist"),
    }
    subject = (DIGEST_SUBJECT, {"day": digest.day.isoformat(), "count": content.task_count})
    return _email(
        "notifications/email/digest", context, subject, user.email, digest.dedupe_key,
        language, connection,
    )  # fmt: skip
