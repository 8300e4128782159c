"""Reads of the webhooks and the inbox that need scoping: the policy first, then the filters."""

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, QuerySet

from plans import permissions as policy
from plans.models import Task
from tracker.models import Membership, Organization, User

from .filtersets import WebhookDeliveryFilterSet
from .models import Notification, WebhookDelivery, WebhookSubscription


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


# --- The in-app inbox --------------------------------------------------------------------------


def notification_list(*, user: User) -> QuerySet:
    """`user`'s own notifications, newest first (also for superusers: an inbox is one's own),
    with their task and its plan, and `task_visible`: whether the user may still open the task
    (someone who left the task's organization keeps the reminder but not the task). One query
    for any slice."""
    own = policy.for_user(user, policy.VIEW, Notification).filter(recipient_id=user.pk)
    visible = policy.for_user(user, policy.VIEW, Task).filter(pk=OuterRef("task_id"))
    return (
        own.select_related("task", "task__plan")
        .annotate(task_visible=Exists(visible))
        .order_by("-created_at", "-pk")
    )


def notification_get(*, user: User, pk: int) -> Notification | None:
    """One of `user`'s own notifications; None for anyone else's (one query)."""
    return notification_list(user=user).filter(pk=pk).first()


def notification_unread_count(*, user: User) -> int:
    """How many of `user`'s notifications are unread: ONE COUNT query (0 and no query when
    signed out)."""
    if not policy.is_signed_in(user):
        return 0
    return (
        policy.for_user(user, policy.VIEW, Notification)
        .filter(recipient_id=user.pk, read_at__isnull=True)
        .count()
    )
