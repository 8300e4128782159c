"""Template filters and tags of the forum, outcome and inbox pages."""

import datetime as dt
from decimal import Decimal

from django import template
from django.utils.translation import gettext as _

from notifications import selectors as notification_selectors
from workspace import labels

from .workspace import zone_abbreviation

register = template.Library()


@register.filter
def forum_kind_label(code: str) -> str:
    return labels.FORUM_KIND.get(code, code)


@register.filter
def scorecard_label(code: str) -> str:
    return labels.SCORECARD.get(code, code)


@register.filter
def outcome_status_label(code: str) -> str:
    return labels.OUTCOME_STATUS.get(code, code)


@register.filter
def notification_kind_label(code: str) -> str:
    return labels.NOTIFICATION_KIND.get(code, code)


@register.filter
def money(outcome) -> str:
    """'USD 7,000,000,000' (cents only when there are some); '' when the outcome has no
    amount."""
    amount = outcome.amount
    if amount is None:
        return ""
    whole = amount == amount.to_integral_value()
    figure = f"{amount:,.0f}" if whole else f"{amount.quantize(Decimal('0.01')):,}"
    return f"{outcome.currency} {figure}"


@register.filter
def outcome_deadline(outcome) -> str:
    """The latest due date of the outcome's tasks with the zone it ends in:
    '2027-06-30, ends 24:00 KST'; '' when it has no task."""
    day: dt.date | None = getattr(outcome, "last_due_date", None)
    if day is None:
        return ""
    return _("%(date)s, ends 24:00 %(zone)s") % {
        "date": day.isoformat(),
        "zone": zone_abbreviation(outcome.last_due_zone, day),
    }


@register.filter
def outcome_deadline_end(outcome) -> str:
    """The second half of `outcome_deadline`, under the date in a narrow column:
    'ends 24:00 KST'."""
    day: dt.date | None = getattr(outcome, "last_due_date", None)
    if day is None:
        return ""
    return _("ends 24:00 %(zone)s") % {"zone": zone_abbreviation(outcome.last_due_zone, day)}


@register.filter
def percent(value) -> str:
    """A rolled-up progress rounded for people: '43%'."""
    return f"{round(value or 0)}%"


@register.simple_tag(takes_context=True)
def unread_count(context) -> int:
    """The viewer's unread notifications: one COUNT per request however often it is asked
    (remembered on the request), none when signed out or when no page shows it."""
    request = context.get("request")
    if request is None:
        return 0
    if not hasattr(request, "_unread_notifications"):
        request._unread_notifications = notification_selectors.notification_unread_count(
            user=request.user
        )
    return request._unread_notifications


@register.filter
def get_item(mapping: dict, key: str):
    """A dict's value by a key held in a variable (the scorecard's categories)."""
    return mapping.get(key, "")
