"""Words for the codes of the domain, in the viewer's language.

The models' choices carry English labels; pages show these instead, so every status,
priority, kind, role and action reads in Korean or English and never as a code.
"""

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

STATUS = {
    "planned": _("Planned"),
    "in_progress": _("In progress"),
    "at_risk": _("At risk"),
    "blocked": _("Blocked"),
    "done": _("Done"),
    "verified": _("Verified"),
    "cancelled": _("Cancelled"),
}

PRIORITY = {
    "low": _("Low"),
    "normal": _("Normal"),
    "high": _("High"),
    "critical": _("Critical"),
}

ROLE = {
    "coordinator": _("Coordinator"),
    "manager": _("Manager"),
    "contributor": _("Contributor"),
    "viewer": _("Viewer"),
}

PLAN_STATUS = {
    "draft": pgettext_lazy("plan status", "Draft"),
    "active": pgettext_lazy("plan status", "Active"),
    "closed": pgettext_lazy("plan status", "Closed"),
    "archived": pgettext_lazy("plan status", "Archived"),
}

OUTCOME_KIND = {
    "mou": _("MOU"),
    "investment_pledge": _("Investment pledge"),
    "commitment": _("Commitment"),
    "decision": _("Decision"),
    "joint_statement_item": _("Joint statement item"),
}

# The workflow's moves (plans.services.WORKFLOW labels) as buttons.
MOVE = {
    "Start": pgettext_lazy("task action", "Start"),
    "Flag at risk": pgettext_lazy("task action", "Flag at risk"),
    "Flag blocked": pgettext_lazy("task action", "Flag blocked"),
    "Back on track": pgettext_lazy("task action", "Back on track"),
    "Unblocked": pgettext_lazy("task action", "Unblocked"),
    "Done": pgettext_lazy("task action", "Mark done"),
    "Verify": pgettext_lazy("task action", "Verify"),
    "Return for revision": pgettext_lazy("task action", "Return for revision"),
    "Cancel": pgettext_lazy("task action", "Cancel task"),
    "Reopen": pgettext_lazy("task action", "Reopen"),
}

LANGUAGE_NAMES = {"ko": "한국어", "en": "English"}


def status(code: str) -> str:
    return STATUS.get(code, code)


def move(label: str) -> str:
    return MOVE.get(label, label)
