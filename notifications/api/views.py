"""The webhook API. Querysets are scoped by plans.permissions (out of sight -> 404); writes go
through notifications.services, which check the action (not allowed -> 403)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications import calendar, selectors, services
from notifications.filtersets import NotificationFilterSet, WebhookSubscriptionFilterSet
from notifications.models import (
    PING_EVENT,
    CalendarFeed,
    Notification,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from plans.api.views import PolicyViewSetMixin

from . import serializers as s

SIGNING = (
    "Each request is a JSON POST signed the Standard Webhooks way: headers `webhook-id` (the "
    "delivery's id, the same on retries: deduplicate on it), `webhook-timestamp` (Unix "
    "seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of "
    "'{webhook-id}.{webhook-timestamp}.{body}'>`, keyed with the base64-decoded part of the "
    "secret after `whsec_`; several space-separated signatures after a rotation). Answer "
    "2xx within the timeout; anything else is retried with exponential backoff, and after "
    "repeated failures the webhook is disabled."
)

# The delivery log's filters (notifications.filtersets.WebhookDeliveryFilterSet, applied by
# the selector), documented by hand: the viewset's own filters are the subscriptions'.
DELIVERY_FILTERS = [
    OpenApiParameter(
        "status",
        OpenApiTypes.STR,
        many=True,
        enum=WebhookDelivery.Status.values,
        description="One or more statuses (repeat the parameter).",
    ),
    OpenApiParameter(
        "event",
        OpenApiTypes.STR,
        many=True,
        enum=[*WebhookEvent.values, PING_EVENT],
        description="One or more event names.",
    ),
    OpenApiParameter("task", OpenApiTypes.STR, description="Task id(s), comma-separated."),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="Created after."),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="Created before."),
]


@extend_schema_view(
    list=extend_schema(
        summary="List the webhooks of your organizations",
        description="Members of an organization see its webhooks; never their secrets.",
    ),
    retrieve=extend_schema(
        summary="A webhook", description="The secret is never shown again after creation."
    ),
    create=extend_schema(
        summary="Create a webhook for an organization (its coordinators and managers)",
        description="Returns the signing secret once, in this response only. " + SIGNING,
        request=s.WebhookSubscriptionCreateSerializer,
        responses={201: s.WebhookSubscriptionWithSecretSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a webhook's URL, events or description, or switch it off or on",
        request=s.WebhookSubscriptionUpdateSerializer,
        responses={200: s.WebhookSubscriptionSerializer},
    ),
    destroy=extend_schema(
        summary="Delete a webhook and its delivery log",
        description="Messages not yet delivered are dropped.",
    ),
)
class WebhookSubscriptionViewSet(
    PolicyViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    model = WebhookSubscription
    serializer_class = s.WebhookSubscriptionSerializer
    filterset_class = WebhookSubscriptionFilterSet
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_serializer_class(self):
        return {
            "create": s.WebhookSubscriptionCreateSerializer,
            "partial_update": s.WebhookSubscriptionUpdateSerializer,
            "rotate_secret": s.RotateSecretSerializer,
        }.get(self.action, s.WebhookSubscriptionSerializer)

    def _show(self, subscription, secret=None, status_code=status.HTTP_200_OK) -> Response:
        if secret is None:
            return Response(s.WebhookSubscriptionSerializer(subscription).data, status=status_code)
        subscription.secret = secret
        return Response(
            s.WebhookSubscriptionWithSecretSerializer(subscription).data, status=status_code
        )

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription, secret = services.webhook_subscription_create(
            actor=request.user, **serializer.validated_data
        )
        return self._show(subscription, secret, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        subscription = self.get_object()
        serializer = self.get_serializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        subscription = services.webhook_subscription_update(
            actor=request.user, subscription=subscription, **serializer.validated_data
        )
        return self._show(subscription)

    def destroy(self, request, *args, **kwargs):
        services.webhook_subscription_delete(actor=request.user, subscription=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Rotate a webhook's signing secret",
        description="Returns the new secret once. By default the old secret keeps signing "
        "too (a second signature) for 24 hours.",
        request=s.RotateSecretSerializer,
        responses={200: s.WebhookSubscriptionWithSecretSerializer},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        subscription = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription, secret = services.webhook_subscription_rotate_secret(
            actor=request.user, subscription=subscription, **serializer.validated_data
        )
        return self._show(subscription, secret)

    @extend_schema(
        summary="Switch a disabled webhook back on",
        description="Clears the failure count. Deliveries given up while it was off are not "
        "sent again.",
        request=None,
        responses={200: s.WebhookSubscriptionSerializer},
    )
    @action(detail=True, methods=["post"])
    def enable(self, request, pk=None):
        subscription = services.webhook_subscription_enable(
            actor=request.user, subscription=self.get_object()
        )
        return self._show(subscription)

    @extend_schema(
        summary="Send a test event (webhook.ping) to the webhook",
        description="Delivered like any event (signed, retried, logged); see the delivery log. "
        "409 when the webhook is disabled.",
        request=None,
        responses={202: s.WebhookDeliverySerializer},
    )
    @action(detail=True, methods=["post"])
    def ping(self, request, pk=None):
        delivery = services.webhook_subscription_ping(
            actor=request.user, subscription=self.get_object()
        )
        return Response(s.WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="A webhook's delivery log (newest first)",
        description="Every message, its status (pending, succeeded, failed and to be "
        "retried, gave_up), attempts and last error. Cursor-paginated.",
        parameters=DELIVERY_FILTERS,
        responses={200: s.WebhookDeliverySerializer(many=True)},
    )
    @action(
        detail=True,
        methods=["get"],
        filterset_class=None,
        serializer_class=s.WebhookDeliverySerializer,
    )
    def deliveries(self, request, pk=None):
        subscription = self.get_object()
        deliveries = selectors.webhook_delivery_list(
            user=request.user, subscription=subscription, filters=request.query_params
        )
        paginator = self.paginator
        paginator.ordering = ("-created_at", "-id")
        page = paginator.paginate_queryset(deliveries, request, view=self)
        return paginator.get_paginated_response(s.WebhookDeliverySerializer(page, many=True).data)


@extend_schema_view(
    list=extend_schema(
        summary="Your notifications, newest first",
        description="Reminders about tasks (due soon, due today, overdue, escalations, "
        "awaiting verification), each also emailed once. `?unread=true` for unread ones only.",
    ),
    retrieve=extend_schema(summary="One of your notifications"),
)
class NotificationViewSet(
    PolicyViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    model = Notification
    serializer_class = s.NotificationSerializer
    filterset_class = NotificationFilterSet

    def base_queryset(self):
        return Notification.objects.select_related("task")

    def get_queryset(self):
        # Your own, also for superusers (the policy lets them see everyone's in the admin).
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        return super().get_queryset().filter(recipient=self.request.user)

    @property
    def paginator(self):
        paginator = super().paginator
        if paginator is not None:
            paginator.ordering = ("-created_at", "-id")
        return paginator

    @extend_schema(
        summary="Mark a notification read",
        request=None,
        responses={200: s.NotificationSerializer},
    )
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        notification = services.notification_mark_read(
            user=request.user, notification=self.get_object()
        )
        return Response(s.NotificationSerializer(notification).data)

    @extend_schema(
        summary="Mark all your notifications read",
        request=None,
        responses={200: s.MarkedReadSerializer},
    )
    @action(detail=False, methods=["post"], url_path="read-all", filterset_class=None)
    def read_all(self, request):
        marked = services.notifications_mark_all_read(user=request.user)
        return Response({"marked": marked})


class CalendarFeedViewSet(viewsets.GenericViewSet):
    """Your calendar feed of task deadlines: only its rotation is an API call; the feed itself
    is fetched from its secret URL without signing in."""

    serializer_class = s.CalendarFeedUrlSerializer
    pagination_class = None
    filterset_class = None

    def get_queryset(self):
        return CalendarFeed.objects.none()

    @extend_schema(
        summary="Create or rotate your calendar feed",
        description="Returns the feed's secret URL (`/calendar/<key>.ics`, RFC 5545: one "
        "all-day event per due date of every task you can see) once, in this response only. "
        "A previous URL stops working at once.",
        request=None,
        responses={200: s.CalendarFeedUrlSerializer},
    )
    @action(detail=False, methods=["post"])
    def rotate(self, request):
        _feed, url = calendar.calendar_feed_rotate(actor=request.user, user=request.user)
        response = Response(s.CalendarFeedUrlSerializer({"url": url}).data)
        response["Cache-Control"] = "no-store"
        return response


PREFERENCES_DESCRIPTION = (
    "Always your own. Which reminders are emailed (each kind on or off; they stay in the app "
    "either way), the daily digest (08:00 in your time zone: tasks due soon and overdue and, "
    "for coordinators, awaiting verification), and your language and time zone (the same as "
    "on /users/me/). Without a saved choice: every email on, no digest."
)


class NotificationPreferenceView(APIView):
    """The caller's own notification preferences; there is no way to name another person."""

    @extend_schema(
        summary="Your notification preferences",
        description=PREFERENCES_DESCRIPTION,
        responses={200: s.NotificationPreferenceSerializer},
    )
    def get(self, request):
        preference = services.notification_preferences_get(user=request.user)
        return Response(s.NotificationPreferenceSerializer(preference).data)

    @extend_schema(
        summary="Change your notification preferences",
        description=PREFERENCES_DESCRIPTION + " Send only the fields to change; an unknown "
        "time zone or language is a 400 naming the field.",
        request=s.NotificationPreferenceUpdateSerializer,
        responses={200: s.NotificationPreferenceSerializer},
    )
    def patch(self, request):
        serializer = s.NotificationPreferenceUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        preference = services.notification_preferences_update(
            actor=request.user, user=request.user, **serializer.validated_data
        )
        return Response(s.NotificationPreferenceSerializer(preference).data)
