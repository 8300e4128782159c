"""Template filters that put codes, people, organizations and deadlines into words."""

import datetime as dt
import zoneinfo

from django import template
from django.utils import timezone, translation
from django.utils.translation import gettext as _

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
    """The organization's name in the viewer's language (Korean name when there is one)."""
    if organization is None:
        return ""
    if translation.get_language() == "ko" and organization.name_ko:
        return organization.name_ko
    return organization.name


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
