"""Template filters of the plan dashboard."""

from django import template
from django.utils.translation import gettext, pgettext

from workspace import labels

from .workspace import person

register = template.Library()


@register.filter
def shown_person(update, field: str) -> str:
    """The person a status update names in `field` (author, assignee_from, assignee_to), by
    name only when the viewer may see them (`shown_<field>_id`, set by
    plans.selectors.status_updates_attach_people); "no one" when it names nobody."""
    if getattr(update, f"{field}_id") is None:
        return person(None)
    if getattr(getattr(update, field), "is_system", False):
        return gettext("the system")
    if getattr(update, f"shown_{field}_id", None) is None:
        return pgettext("dashboard", "someone outside your organizations")
    return person(getattr(update, field))


@register.filter
def plan_status_label(code: str) -> str:
    return labels.PLAN_STATUS.get(code, code)
