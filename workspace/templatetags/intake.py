"""Template helpers of readout intake."""

from django import template

from plans import permissions as policy
from plans.intake.models import OutcomeDraft

register = template.Library()


@register.filter
def may_intake(user) -> bool:
    """May `user` paste readouts and review drafts (the policy's ADD on drafts = outcomes)?"""
    return policy.can(user, policy.ADD, OutcomeDraft)


@register.filter
def draft_money(draft) -> str:
    if draft.amount is None:
        return ""
    whole = draft.amount == draft.amount.to_integral_value()
    return (
        f"{draft.currency} {draft.amount:,.0f}"
        if whole
        else f"{draft.currency} {draft.amount:,.2f}"
    )
