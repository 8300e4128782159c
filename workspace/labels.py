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


# --- forums, outcomes and the inbox ----------------------------------------------------------

FORUM_KIND = {
    "summit": pgettext_lazy("forum kind", "Summit"),
    "ministerial": pgettext_lazy("forum kind", "Ministerial meeting"),
    "dialogue": pgettext_lazy("forum kind", "Dialogue"),
    "business_forum": pgettext_lazy("forum kind", "Business forum"),
    "conference": pgettext_lazy("forum kind", "Conference"),
    "working_group_meeting": pgettext_lazy("forum kind", "Working-group meeting"),
}

# An outcome's state as its tasks add up (plans.selectors.outcome_scorecard).
SCORECARD = {
    "fulfilled": pgettext_lazy("scorecard", "Fulfilled"),
    "in_implementation": pgettext_lazy("scorecard", "In implementation"),
    "not_started": pgettext_lazy("scorecard", "Not started"),
    "no_task": pgettext_lazy("scorecard", "No task yet"),
}

# The status a coordinator recorded on the outcome itself.
OUTCOME_STATUS = {
    "open": pgettext_lazy("outcome status", "Open"),
    "in_implementation": pgettext_lazy("outcome status", "In implementation"),
    "fulfilled": pgettext_lazy("outcome status", "Fulfilled"),
    "lapsed": pgettext_lazy("outcome status", "Lapsed"),
}

NOTIFICATION_KIND = {
    "due_soon": pgettext_lazy("notification kind", "Due soon"),
    "due_today": pgettext_lazy("notification kind", "Due today"),
    "overdue": pgettext_lazy("notification kind", "Overdue"),
    "escalation_manager": pgettext_lazy("notification kind", "Overdue: escalated to the manager"),
    "escalation_coordinators": pgettext_lazy(
        "notification kind", "Overdue: escalated to the coordinators"
    ),
    "awaiting_verification": pgettext_lazy("notification kind", "Done, awaiting verification"),
}
