"""Reads of the webhooks that need scoping: the policy first, then the filters."""

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from plans import permissions as policy
from tracker.models import Membership, Organization, User

from .filtersets import WebhookDeliveryFilterSet
from .models import WebhookDelivery, WebhookSubscription


def webhook_organizations_managed(user: User) -> QuerySet:
    """Organizations whose webhooks `user` may add (the choices the admin and API offer)."""
    if policy.is_unrestricted(user):
        return Organization.objects.all()
    if not policy.is_signed_in(user):
        return Organization.objects.none()
    # A membership belongs to its organization: the policy's organization-resource rule
    # applied to it yields the organizations the user coordinates or manages.
    managed = Membership.objects.filter(policy.organization_resource_q(user, policy.ADD))
    return Organization.objects.filter(pk__in=managed.values("organization_id"))


def _errors(filterset) -> ValidationError:
    return ValidationError(
        {
            field: [error["message"] for error in errors]
            for field, errors in filterset.errors.get_json_data().items()
        }
    )


def webhook_delivery_list(
    *, user: User, subscription: WebhookSubscription, filters=None
) -> QuerySet:
    """The delivery log of `subscription` as `user` may see it, newest first."""
    scoped = policy.for_user(user, policy.VIEW, WebhookDelivery).filter(subscription=subscription)
    filterset = WebhookDeliveryFilterSet(filters or {}, queryset=scoped)
    if not filterset.is_valid():
        raise _errors(filterset)
    return filterset.qs.order_by("-created_at", "-pk")
