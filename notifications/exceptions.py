"""Refusals of the notifications services. They extend the plan domain's errors, so the API
answers them with their status (RFC 9457) and the admin shows them as messages."""

from django.utils.translation import gettext_lazy as _

from plans.exceptions import DomainError, NotAllowed

from .models import WebhookSubscription

WEBHOOK_DISABLED = _("This webhook is disabled; enable it first.")
ORGANIZATION_NOT_MANAGED = _(
    "Only coordinators and managers of {organization} can manage its webhooks."
)


class WebhookDisabled(DomainError):
    def __init__(self):
        super().__init__(WEBHOOK_DISABLED)


class OrganizationNotManaged(NotAllowed):
    """The actor may manage webhooks, but not this organization's (answered as 403)."""

    def __init__(self, organization):
        super().__init__(action="add", obj=WebhookSubscription)
        self.message = ORGANIZATION_NOT_MANAGED.format(organization=organization)
        self.args = (self.message,)
