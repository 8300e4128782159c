"""Template filters that put codes, people, organizations and deadlines into words."""

import datetime as dt
import zoneinfo

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _

from tracker import content_language
from workspace import labels

register = template.Library()


@register.filter
def status_label(code: str) -> str:
    return labels.status(code)


@register.filter
def priority_label(code: str) -> str:
    return labels.PRIORITY.get(code, code)


@register.filter
def outcome_kind_label(code: str) -> str:
    return labels.OUTCOME_KIND.get(code, code)


@register.filter
def move_label(move) -> str:
    return labels.move(move.label)


@register.filter
def person(user) -> str:
    """A person's name; "no one" for an empty assignee or manager, never "None"."""
    if user is None:
        return _("no one")
    return user.get_full_name() or user.username


@register.filter
def org_name(organization) -> str:
    """The organization's name in the viewer's language, else in the other one (plain text,
    unmarked; `{% translated org "name" %}` marks the fallback)."""
    if organization is None:
        return ""
    return content_language.shown(organization, "name")[0] or organization.name


# Language tags shown beside a text in the other language than the page's.
FALLBACK_TAGS = {"en": "EN", "ko": "KO"}


@register.simple_tag
def translated(obj, field: str, language: str = ""):
    """A content field (title, description, name, summary) in the viewer's language, or the
    other language's version marked as not yet translated.

    Usage, after `{% load workspace %}`:

        {% translated task "title" %}          Korean reader, Korean title: 반도체 협력 ...
        {% translated plan "description" %}    no Korean version: the English one, marked
        {% translated org "name" "en" %}       the version in English (or marked Korean)

    A fallback is wrapped as
    `<span class="fallback" lang="en" title="Not yet translated">text <small
    class="fallback__tag">EN</small></span>`: `lang` lets screen readers and fonts switch,
    the small tag (EN / KO) shows sighted readers why the language changes, the title says
    it in words. Text is escaped; keep `|linebreaksbr`-style formatting out (wrap the tag in
    a `<p>` for descriptions). Works for every model registered in tracker/translation.py
    and plans/translation.py; an object that is None renders nothing.
    """
    if obj is None:
        return ""
    wanted = language or content_language.active_language()
    text, shown_in = content_language.shown(obj, field, wanted)
    if shown_in == wanted:
        return text
    return format_html(
        '<span class="fallback" lang="{}" title="{}">{} <small class="fallback__tag">{}</small>'
        "</span>",
        shown_in,
        _("Not yet translated"),
        text,
        FALLBACK_TAGS.get(shown_in, shown_in.upper()),
    )


@register.filter
def translated_text(obj, field: str) -> str:
    """Plain text of `{% translated %}` without the marker: for <title>, attributes and
    other places that take no markup. `{{ task|translated_text:"title" }}`."""
    if obj is None:
        return ""
    return content_language.shown(obj, field)[0]


def zone_abbreviation(zone_name: str, day: dt.date) -> str:
    """KST, EST, EDT ... on that day; the IANA name where the zone has no letters."""
    zone = zoneinfo.ZoneInfo(zone_name)
    abbreviation = dt.datetime.combine(day, dt.time(12), tzinfo=zone).tzname() or ""
    return abbreviation if abbreviation[:1].isalpha() else zone_name


@register.filter
def deadline(task) -> str:
    """'2026-12-31, ends 24:00 KST': the due date and the zone its end is counted in."""
    return _("%(date)s, ends 24:00 %(zone)s") % {
        "date": task.due_date.isoformat(),
        "zone": zone_abbreviation(task.plan.time_zone, task.due_date),
    }


@register.filter
def deadline_local(task) -> str:
    """The deadline's instant in the viewer's zone, when that zone differs from the plan's."""
    current = timezone.get_current_timezone()
    if getattr(current, "key", None) == task.plan.time_zone or task.deadline_at is None:
        return ""
    local = timezone.localtime(task.deadline_at)
    return _("%(when)s %(zone)s your time") % {
        "when": local.strftime("%Y-%m-%d %H:%M"),
        "zone": local.tzname() or "",
    }


@register.filter
def when(value: dt.datetime) -> str:
    """A moment in the viewer's zone, e.g. 2026-11-30 09:15 KST."""
    local = timezone.localtime(value)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


@register.simple_tag
def viewer_zone() -> str:
    """The viewer's zone as shown in the header: Asia/Seoul (KST)."""
    zone = timezone.get_current_timezone()
    name = getattr(zone, "key", str(zone))
    abbreviation = timezone.localtime().tzname() or ""
    return f"{name} ({abbreviation})" if abbreviation and abbreviation != name else name
