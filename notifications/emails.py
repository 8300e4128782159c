"""Reminder emails: plain text and HTML from templates, in the recipient's language, with a
link to the task and its plan and a Message-ID derived from the notification's dedupe key
(the same on every attempt, so a receiving system can discard a repeat)."""

import hashlib
import logging
import re
import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext, gettext_noop

from .schedule import zone

logger = logging.getLogger(__name__)

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
            message = super().message(*args, **kwargs)
            if message.is_multipart() and message.get_boundary() is None:
                # A random boundary set here: otherwise the generator makes one and compiles
                # a regular expression for it, for every message (128 random bits cannot
                # occur in the text by chance).
                message.set_boundary("=" * 15 + secrets.token_hex(16) + "==")
            self._rendered = message
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


def language_of(user) -> str:
    return user.language if user.language in LANGUAGES else "en"


def build(notification, connection=None) -> EmailMultiAlternatives:
    """The email of a notification (recipient, task and plan loaded). Titles in the
    recipient's language (the other language's when there is no version in it). The
    reference way, rendering both templates; a batch uses `ReminderBuilder` (same result)."""
    with translation.override(language_of(notification.recipient)):
        return _build(notification, connection)


def _reminder_values(notification) -> dict:
    """The per-recipient values of a reminder's templates and subject (under the recipient's
    language: the task's and plan's titles follow it)."""
    recipient = notification.recipient
    task = notification.task
    plan = task.plan
    tz = zone(recipient.time_zone)
    return {
        "name": recipient.get_full_name() or recipient.username,
        "task.ref": task.ref,
        "task.title": task.title,
        "plan.code": plan.code,
        "plan.title": plan.title,
        "days": notification.step,
        "due_date": notification.due_date.isoformat(),
        "deadline": task.deadline_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        "time_zone": recipient.time_zone,
        "task_url": admin_url("plans_task", task.pk),
        "plan_url": admin_url("plans_plan", plan.pk),
        "inbox_url": settings.SITE_URL + reverse("admin:notifications_notification_changelist"),
    }


def _build(notification, connection) -> EmailMultiAlternatives:
    recipient = notification.recipient
    task = notification.task
    plan = task.plan
    language = language_of(recipient)
    values = _reminder_values(notification)
    context = {
        "ko": language == "ko",
        "notification": notification,
        "recipient": recipient,
        "name": values["name"],
        "task": task,
        "plan": plan,
        "days": notification.step,
        "due_date": values["due_date"],
        "deadline": values["deadline"],
        "time_zone": recipient.time_zone,
        "task_url": values["task_url"],
        "plan_url": values["plan_url"],
        "inbox_url": values["inbox_url"],
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


# --- Rendering once per (template, language) ----------------------------------------------------

# A template variable stands for itself in a skeleton: rendered once with these marks as the
# values, split at them, and filled per recipient (escaped for HTML). Control characters
# that no template, translation or escaping produces.
_MARK = "\x1e{}\x1f"
_MARKS = re.compile("\x1e([a-z_.]+)\x1f")


def _marked_context(language: str) -> dict:
    def mark(name):
        return _MARK.format(name)

    return {
        "ko": language == "ko",
        "name": mark("name"),
        "task": {"ref": mark("task.ref"), "title": mark("task.title")},
        "plan": {"code": mark("plan.code"), "title": mark("plan.title")},
        **{
            name: mark(name)
            for name in (
                "days",
                "due_date",
                "deadline",
                "time_zone",
                "task_url",
                "plan_url",
                "inbox_url",
            )
        },  # fmt: skip
    }


class _Skeleton:
    """A template rendered once in one language, split at its variables."""

    def __init__(self, template: str, language: str):
        with translation.override(language):
            rendered = render_to_string(template, _marked_context(language))
        self.parts = _MARKS.split(rendered)  # text, name, text, name, ..., text
        self.html = template.endswith(".html")
        # Checked against a full render for the first recipient (then trusted or not).
        self.checked: bool | None = None

    def fill(self, values: dict) -> str:
        parts = self.parts
        out = [parts[0]]
        for index in range(1, len(parts), 2):
            value = str(values[parts[index]])
            out.append(escape(value) if self.html else value)
            out.append(parts[index + 1])
        return "".join(out)


_skeletons: dict[tuple[str, str], _Skeleton] = {}


def _skeleton(template: str, language: str) -> _Skeleton:
    key = (template, language)
    skeleton = _skeletons.get(key)
    if skeleton is None:
        skeleton = _skeletons[key] = _Skeleton(template, language)
    return skeleton


class ReminderBuilder:
    """Builds the reminder emails of a batch: each template rendered once per language and
    filled per recipient, subjects translated once per (kind, language), and the recipients'
    values read under one language activation per language (not one per email). The first
    email of each (template, language) in a process is also built the reference way
    (`build`) and compared: a template that uses anything else than the values above is
    rendered in full every time."""

    def __init__(self, notifications, connection=None):
        self.connection = connection
        self.values: dict[int, dict] = {}
        by_language: dict[str, list] = {}
        for notification in notifications:
            by_language.setdefault(language_of(notification.recipient), []).append(notification)
        self.subjects = {}
        for language, group in by_language.items():
            with translation.override(language):
                for notification in group:
                    self.values[notification.pk] = _reminder_values(notification)
                for kind in {notification.kind for notification in group}:
                    self.subjects[kind, language] = gettext(SUBJECTS[kind])

    def build(self, notification) -> EmailMultiAlternatives:
        kind = notification.kind
        recipient = notification.recipient
        language = language_of(recipient)
        template = f"notifications/email/{kind}"
        text, html = _skeleton(f"{template}.txt", language), _skeleton(f"{template}.html", language)
        if text.checked is False or html.checked is False:
            return build(notification, self.connection)
        values = self.values.get(notification.pk)
        if values is None:
            return build(notification, self.connection)
        email = RenderedOnceEmail(
            subject=self.subjects[kind, language].format(
                ref=values["task.ref"], days=values["days"], due=values["due_date"]
            ),
            body=text.fill(values),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[recipient.email],
            headers={
                "Message-ID": message_id(notification.dedupe_key),
                "Content-Language": language,
                "Auto-Submitted": "auto-generated",
            },
            connection=self.connection,
        )
        email.attach_alternative(html.fill(values), "text/html")
        if text.checked is None or html.checked is None:
            reference = build(notification, self.connection)
            same = (reference.subject, reference.body, reference.alternatives) == (
                email.subject, email.body, email.alternatives,
            )  # fmt: skip
            text.checked = html.checked = same
            if not same:
                logger.warning("%s: rendered in full for every email.", template)
                return reference
        return email


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
