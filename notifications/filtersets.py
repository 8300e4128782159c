"""FilterSets of the webhook API (narrowing querysets the policy has already scoped)."""

import django_filters as filters
from django.db.models import Q

from tracker.filtersets import IdsFilter, InstantFilter, updated_after_filter

from .models import PING_EVENT, Notification, WebhookDelivery, WebhookEvent, WebhookSubscription


class WebhookSubscriptionFilterSet(filters.FilterSet):
    organization = IdsFilter(field_name="organization_id", help_text="Organization id(s).")
    is_active = filters.BooleanFilter(help_text="false: disabled (by hand or after failures).")
    q = filters.CharFilter(method="search", help_text="Text in the URL or description.")
    updated_after = updated_after_filter()

    class Meta:
        model = WebhookSubscription
        fields = []

    def search(self, queryset, name, value):
        return queryset.filter(Q(url__icontains=value) | Q(description__icontains=value))


class WebhookDeliveryFilterSet(filters.FilterSet):
    status = filters.MultipleChoiceFilter(
        choices=WebhookDelivery.Status.choices,
        help_text="One or more statuses (repeat the parameter).",
    )
    event = filters.MultipleChoiceFilter(
        choices=[*WebhookEvent.choices, (PING_EVENT, "Test ping")],
        help_text="One or more event names.",
    )
    task = IdsFilter(field_name="task_id", help_text="Task id(s).")
    created_after = InstantFilter(field_name="created_at", lookup_expr="gt")
    created_before = InstantFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = WebhookDelivery
        fields = []


class NotificationFilterSet(filters.FilterSet):
    unread = filters.BooleanFilter(
        field_name="read_at", lookup_expr="isnull", help_text="true: only unread ones."
    )
    kind = filters.MultipleChoiceFilter(
        choices=Notification.Kind.choices, help_text="One or more kinds (repeat the parameter)."
    )
    # A notification is written once; marking it read is the reader's own act, not synced.
    updated_after = updated_after_filter("created_at", "Created")

    class Meta:
        model = Notification
        fields = []
