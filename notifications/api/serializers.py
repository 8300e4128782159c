"""Serializers of the webhook API. They shape and validate data; the services decide and write.
No serializer ever shows a secret except the one-time responses of create and rotate."""

from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from notifications.models import (
    Notification,
    NotificationKind,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from plans.api.serializers import StrictSerializer
from tracker.api.fields import IdRelatedField
from tracker.models import Organization, User
from tracker.validators import validate_time_zone

EVENTS_HELP = "Event names: " + ", ".join(WebhookEvent.values) + "."


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices), help_text=EVENTS_HELP
    )
    previous_secret_expires_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="After a rotation, the old secret also signs (a second signature) until then.",
    )

    class Meta:
        model = WebhookSubscription
        fields = [
            "id", "organization", "url", "description", "events", "is_active", "disabled_at",
            "disabled_reason", "consecutive_failures", "previous_secret_expires_at",
            "created_by", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


SECRET_HELP = (
    "The signing secret (whsec_ + base64 of 32 bytes; the HMAC key is the decoded bytes). "
    "Shown only in this response: store it now."
)


class WebhookSubscriptionWithSecretSerializer(WebhookSubscriptionSerializer):
    secret = serializers.CharField(read_only=True, help_text=SECRET_HELP)

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = [*WebhookSubscriptionSerializer.Meta.fields, "secret"]
        read_only_fields = fields


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Task changes to an integration",
            value={
                "organization": 11,
                "url": "https://erp.example.com/hooks/joint-plan",
                "events": ["task.status_changed", "status_update.created"],
                "description": "ERP project sync",
            },
            request_only=True,
        )
    ]
)
class WebhookSubscriptionCreateSerializer(StrictSerializer):
    organization = IdRelatedField(
        queryset=Organization.objects.all(),
        help_text="An organization you coordinate or manage.",
    )
    url = serializers.URLField(
        max_length=500,
        help_text="https, to a public internet address (no credentials in the URL).",
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices),
        allow_empty=False,
        help_text=EVENTS_HELP,
    )
    description = serializers.CharField(
        max_length=200, allow_blank=True, required=False, default=""
    )


class WebhookSubscriptionUpdateSerializer(StrictSerializer):
    refused_hints = {
        "organization": "A webhook cannot move to another organization; create a new one.",
        "secret": "Rotate the secret with POST /api/v1/webhooks/{id}/rotate-secret/.",
    }
    url = serializers.URLField(max_length=500, required=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices),
        allow_empty=False,
        required=False,
        help_text=EVENTS_HELP,
    )
    description = serializers.CharField(max_length=200, allow_blank=True, required=False)
    is_active = serializers.BooleanField(
        required=False,
        help_text="false switches deliveries off; true switches them on and resets the "
        "failure count.",
    )


class RotateSecretSerializer(StrictSerializer):
    keep_previous = serializers.BooleanField(
        required=False,
        default=True,
        help_text="Keep signing with the old secret as well for 24 hours, so your receiver "
        "can switch over. Send false if the old secret leaked: it stops at once.",
    )


class WebhookDeliverySerializer(serializers.ModelSerializer):
    payload = serializers.JSONField(
        read_only=True, help_text="The body as sent (Standard Webhooks: type, timestamp, data)."
    )

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "event", "message_id", "task", "status", "attempts", "last_status_code",
            "last_error", "next_attempt_at", "created_at", "delivered_at", "payload",
        ]  # fmt: skip
        read_only_fields = fields


class NotificationSerializer(serializers.ModelSerializer):
    task_ref = serializers.CharField(source="task.ref", read_only=True)
    task_title = serializers.CharField(source="task.title", read_only=True)
    plan = serializers.IntegerField(source="task.plan_id", read_only=True)
    is_read = serializers.SerializerMethodField(help_text="read_at is set.")
    email_status = serializers.SerializerMethodField(
        help_text="sent, pending (retried while the mail server fails) or not_sent "
        "(see failure_reason: no address, inactive account, refused, gave up)."
    )

    class Meta:
        model = Notification
        fields = [
            "id", "kind", "task", "task_ref", "task_title", "plan", "due_date", "step",
            "created_at", "due_at", "read_at", "is_read", "email_status", "email_sent_at",
            "failure_reason",
        ]  # fmt: skip
        read_only_fields = fields

    def get_is_read(self, obj) -> bool:
        return obj.read_at is not None

    def get_email_status(self, obj) -> str:
        if obj.email_sent_at:
            return "sent"
        if obj.email_failed_at:
            return "not_sent"
        return "pending"


class MarkedReadSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="How many notifications were marked read.")


class CalendarFeedUrlSerializer(serializers.Serializer):
    url = serializers.URLField(
        read_only=True,
        help_text="Your calendar feed (iCalendar) with its secret. Shown only in this "
        "response: subscribe to it now (Outlook, Google Calendar). Only a hash is kept.",
    )


# --- Preferences ------------------------------------------------------------------------------

DIGEST_HELP = (
    "A daily digest at 08:00 in your time zone: your tasks due soon and overdue and, for "
    "coordinators, tasks awaiting verification. An empty one is not sent."
)
TIME_ZONE_HELP = "IANA time zone of your reminders, digest and emailed times, e.g. Asia/Seoul."
LANGUAGE_HELP = "Language of your emails: en or ko."


def _email(kind: str, **kwargs) -> serializers.BooleanField:
    label = NotificationKind(kind).label
    return serializers.BooleanField(
        help_text=f"Email the reminders '{label}' (false: in the app only).", **kwargs
    )


class NotificationPreferenceSerializer(serializers.Serializer):
    """Your preferences; without a saved row, the defaults (every email on, no digest)."""

    email_due_soon = _email("due_soon", read_only=True)
    email_due_today = _email("due_today", read_only=True)
    email_overdue = _email("overdue", read_only=True)
    email_escalation_manager = _email("escalation_manager", read_only=True)
    email_escalation_coordinators = _email("escalation_coordinators", read_only=True)
    email_awaiting_verification = _email("awaiting_verification", read_only=True)
    digest = serializers.BooleanField(read_only=True, help_text=DIGEST_HELP)
    language = serializers.ChoiceField(
        choices=User.Language.choices, source="user.language", read_only=True,
        help_text=LANGUAGE_HELP,
    )  # fmt: skip
    time_zone = serializers.CharField(
        source="user.time_zone", read_only=True, help_text=TIME_ZONE_HELP
    )


class NotificationPreferenceUpdateSerializer(StrictSerializer):
    """Any of the fields; those left out stay as they are."""

    email_due_soon = _email("due_soon", required=False)
    email_due_today = _email("due_today", required=False)
    email_overdue = _email("overdue", required=False)
    email_escalation_manager = _email("escalation_manager", required=False)
    email_escalation_coordinators = _email("escalation_coordinators", required=False)
    email_awaiting_verification = _email("awaiting_verification", required=False)
    digest = serializers.BooleanField(required=False, help_text=DIGEST_HELP)
    language = serializers.ChoiceField(
        choices=User.Language.choices, required=False, help_text=LANGUAGE_HELP
    )
    time_zone = serializers.CharField(
        max_length=64, required=False, validators=[validate_time_zone], help_text=TIME_ZONE_HELP
    )
