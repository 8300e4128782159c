"""Calendar feeds: each person's task deadlines as an iCalendar (RFC 5545) feed at a secret URL.

The URL reads `/calendar/<prefix>_<secret>.ics`. The prefix finds the row; the secret is the
credential, stored only as HMAC-SHA256 keyed with the server-side pepper
(`tracker.tokens.hash_secret`) and compared in constant time. The feed lists the tasks the
person can see (`plans.permissions.for_user`), one all-day event per due date, in a fixed
number of queries however many tasks there are.
"""

import datetime as dt
import re
from urllib.parse import urlsplit

import icalendar
from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from plans import permissions as policy
from plans.exceptions import NotAllowed
from plans.models import Task
from tracker import tokens

from .models import CalendarFeed

FEED_KEY_RE = re.compile(r"^(?P<prefix>[A-Za-z0-9]{8})_(?P<secret>[A-Za-z0-9_-]{43})$")
PRODID = "-//Joint Action Plan Tracker//Task deadlines//EN"
CALENDAR_NAME = "Joint plan tasks ({user})"
# A hash compared against when the prefix is unknown, so both answers take as long.
_NO_SUCH_FEED = "0" * 64


def calendar_feed_url(prefix: str, secret: str) -> str:
    path = reverse("calendar-feed", kwargs={"key": f"{prefix}_{secret}"})
    return f"{settings.SITE_URL}{path}"


def _host() -> str:
    return urlsplit(settings.SITE_URL).hostname or "localhost"


def calendar_feed_rotate(*, actor, user) -> tuple[CalendarFeed, str]:
    """Create the user's feed, or give it a new secret (the old URL stops working at once).

    Returns the feed and its full URL, which is shown once: only a hash of it is kept.
    The user themself or a superuser only."""
    if not policy.is_signed_in(actor) or not (actor.pk == user.pk or policy.is_unrestricted(actor)):
        raise NotAllowed(action="rotate", obj=CalendarFeed)
    for _attempt in range(3):
        prefix, secret, _token = tokens.new_token()
        try:
            with transaction.atomic():
                feed = CalendarFeed.objects.select_for_update().filter(user=user).first()
                now = timezone.now()
                if feed is None:
                    feed = CalendarFeed(user=user)
                else:
                    feed.rotated_at = now
                feed.prefix = prefix
                feed.secret_hash = tokens.hash_secret(secret)
                feed.full_clean(validate_unique=False)
                feed.save()
        except IntegrityError:  # a prefix taken meanwhile (1 in 62**8): draw again
            continue
        return feed, calendar_feed_url(prefix, secret)
    raise RuntimeError("Could not draw a free calendar feed prefix.")


def calendar_feed_find(raw: str) -> CalendarFeed | None:
    """The feed whose URL key is `raw`, if the secret matches and its owner is active."""
    match = FEED_KEY_RE.match(raw or "")
    if match is None:
        return None
    feed = CalendarFeed.objects.select_related("user").filter(prefix=match["prefix"]).first()
    ok = tokens.matches(match["secret"], feed.secret_hash if feed else _NO_SUCH_FEED)
    if feed is None or not ok or not feed.user.is_active:
        return None
    return feed


def calendar_feed_mark_fetched(feed: CalendarFeed) -> None:
    feed.last_fetched_at = timezone.now()
    CalendarFeed.objects.filter(pk=feed.pk).update(last_fetched_at=feed.last_fetched_at)


def _event(task: Task, host: str, now: dt.datetime) -> icalendar.Event:
    link = settings.SITE_URL + reverse("admin:plans_task_change", args=[task.pk])
    status = task.get_status_display()
    event = icalendar.Event()
    event.add("uid", f"task-{task.pk}@{host}")
    event.add("dtstamp", now)
    event.add("dtstart", task.due_date)
    event.add("dtend", task.due_date + dt.timedelta(days=1))
    event.add("summary", f"[{task.ref}] {task.title}")
    event.add(
        "description",
        f"{gettext('Status')}: {status}\n"
        f"{gettext('Plan')}: {task.plan.code}\n"
        f"{gettext('Lead organization')}: {task.lead_organization.name}\n"
        f"{link}",
    )
    event.add("url", link)
    event.add("last-modified", task.updated_at)
    event.add("status", "CANCELLED" if task.status == Task.Status.CANCELLED else "CONFIRMED")
    event.add("categories", [status])
    event.add("transp", "TRANSPARENT")  # a deadline does not make anyone busy
    return event


def calendar_feed_render(feed: CalendarFeed) -> bytes:
    """The feed as an iCalendar document: one all-day event per visible task's due date."""
    user = feed.user
    tasks = (
        policy.for_user(user, policy.VIEW, Task)
        .select_related("plan", "lead_organization")
        .order_by("due_date", "pk")
    )
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", CALENDAR_NAME.format(user=user.get_username()))
    calendar.add("x-published-ttl", "PT1H")
    host, now = _host(), timezone.now()
    # Titles in the feed owner's language (or the other one's where it has none).
    with translation.override(user.language if user.language in ("en", "ko") else "en"):
        for task in tasks:
            calendar.add_component(_event(task, host, now))
    return calendar.to_ical()
