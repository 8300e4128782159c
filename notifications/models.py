"""Webhooks: an organization's subscriptions and the log of every delivery made to them.

Rules across one row live in `clean()` and in database constraints with readable messages;
every state change goes through `notifications/services.py`.
"""

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from tracker.models import Organization

from . import encryption


class WebhookEvent(models.TextChoices):
    """Events an organization can subscribe to. task.due_soon and task.overdue come from the
    reminder sweep: once per reminder step of a task (the first recipient's 09:00)."""

    TASK_CREATED = "task.created", _("Task created")
    TASK_UPDATED = "task.updated", _("Task updated")
    TASK_STATUS_CHANGED = "task.status_changed", _("Task status changed")
    STATUS_UPDATE_CREATED = "status_update.created", _("Status update added")
    TASK_DUE_SOON = "task.due_soon", _("Task due soon (reminder)")
    TASK_OVERDUE = "task.overdue", _("Task overdue (reminder)")


# Sent on request to check an endpoint; not subscribable, every subscription accepts it.
PING_EVENT = "webhook.ping"

URL_INVALID = _("Enter a valid URL, e.g. https://example.org/hooks/tracker.")
EVENTS_EMPTY = _("Choose at least one event.")
EVENTS_UNKNOWN = _("Unknown events: {events}. Choose from: {known}.")
EVENTS_NOT_LIST = _("Events must be a list of event names.")


def validate_webhook_url(url: str) -> None:
    """The URL's form only. Where it may point (https, public addresses, no credentials) is
    decided by the services with notifications/webhook_http.py, at save and at every send."""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise ValidationError(URL_INVALID, code="invalid") from None


def normalize_events(events) -> list[str]:
    """The events as a sorted list without duplicates; raises ValidationError for unknowns."""
    if not isinstance(events, list | tuple) or not all(isinstance(e, str) for e in events):
        raise ValidationError(EVENTS_NOT_LIST, code="invalid")
    if not events:
        raise ValidationError(EVENTS_EMPTY, code="empty")
    unknown = sorted(set(events) - set(WebhookEvent.values))
    if unknown:
        raise ValidationError(
            EVENTS_UNKNOWN.format(events=", ".join(unknown), known=", ".join(WebhookEvent.values)),
            code="unknown",
        )
    return sorted(set(events))


class WebhookSubscription(models.Model):
    """An organization's endpoint: what it listens to, where, and the secret that signs it."""

    organization = models.ForeignKey(
        Organization,
        verbose_name=_("organization"),
        on_delete=models.CASCADE,
        related_name="webhook_subscriptions",
    )
    url = models.URLField(
        _("URL"),
        max_length=500,
        help_text=_("https, to a public internet address (no credentials in the URL)."),
    )
    description = models.CharField(_("description"), max_length=200, blank=True)
    events = models.JSONField(
        _("events"), default=list, blank=True, help_text=_("Event names this endpoint receives.")
    )
    # Fernet ciphertext of "whsec_..."; the plaintext is shown once and never stored.
    secret_encrypted = models.TextField(_("secret encrypted"), editable=False)
    # The secret before the last rotation, still signed with until it expires.
    previous_secret_encrypted = models.TextField(
        _("previous secret encrypted"), editable=False, blank=True
    )
    previous_secret_expires_at = models.DateTimeField(
        _("previous secret expires at"), null=True, blank=True, editable=False
    )
    is_active = models.BooleanField(_("is active"), default=True)
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True)
    disabled_reason = models.CharField(_("disabled reason"), max_length=300, blank=True)
    consecutive_failures = models.PositiveIntegerField(
        _("consecutive failures"),
        default=0,
        help_text=_("Deliveries given up in a row; reset by a success."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    # The deletions a syncing client must hear of (/api/v1/changes/, docs/decisions/0013);
    # never the secrets, even encrypted.
    history = HistoricalRecords(excluded_fields=["secret_encrypted", "previous_secret_encrypted"])

    class Meta:
        verbose_name_plural = _("webhooks")
        indexes = [models.Index(fields=["updated_at", "id"], name="webhooksubscription_sync")]
        ordering = ["organization", "url", "pk"]
        verbose_name = _("webhook")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "url"],
                name="webhooksubscription_unique_url",
                violation_error_message=_(
                    "This organization already has a webhook for this URL; add the events "
                    "to it instead."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(secret_encrypted=""),
                name="webhooksubscription_has_secret",
                violation_error_message=_("A webhook needs a signing secret."),
            ),
            models.CheckConstraint(
                condition=Q(is_active=False) | Q(disabled_at__isnull=True),
                name="webhooksubscription_active_not_disabled",
                violation_error_message=_("An active webhook cannot have a disabled date."),
            ),
            models.CheckConstraint(
                condition=Q(consecutive_failures__gte=0),
                name="webhooksubscription_failures_not_negative",
                violation_error_message=_("Consecutive failures cannot be negative."),
            ),
        ]

    def __str__(self):
        return self.url

    def clean(self):
        errors = {}
        if self.url:
            try:
                validate_webhook_url(self.url)
            except ValidationError as exc:
                errors["url"] = exc.messages
        try:
            self.events = normalize_events(self.events)
        except ValidationError as exc:
            errors["events"] = exc.messages
        if errors:
            raise ValidationError(errors)

    # --- The secret (decrypted on demand, never kept in a column in plaintext) -------------

    def set_secret(self, plaintext: str) -> None:
        self.secret_encrypted = encryption.encrypt(plaintext)

    def signing_secrets(self, now: dt.datetime) -> list[str]:
        """The secrets to sign with now: the current one, and the previous one while the
        rotation's grace period lasts."""
        secrets = [encryption.decrypt(self.secret_encrypted)]
        if (
            self.previous_secret_encrypted
            and self.previous_secret_expires_at is not None
            and self.previous_secret_expires_at > now
        ):
            secrets.append(encryption.decrypt(self.previous_secret_encrypted))
        return secrets

    def listens_to(self, event: str) -> bool:
        return event == PING_EVENT or event in (self.events or [])


class WebhookDelivery(models.Model):
    """One message to one subscription, and what became of it (the delivery log)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed, will retry")
        GAVE_UP = "gave_up", _("Gave up")

    subscription = models.ForeignKey(
        WebhookSubscription,
        verbose_name=_("subscription"),
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    event = models.CharField(_("event"), max_length=64)
    # The task the event is about: checked again before each attempt (still visible?).
    task = models.ForeignKey(
        "plans.Task",
        verbose_name=_("task"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    message_id = models.CharField(
        _("message id"),
        max_length=64,
        unique=True,
        help_text=_("The webhook-id header: the receiver's dedupe key."),
    )
    payload = models.JSONField(
        _("payload"),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_status_code = models.PositiveSmallIntegerField(
        _("last status code"), null=True, blank=True
    )
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(
        _("next attempt at"),
        null=True,
        blank=True,
        help_text=_("When the next attempt is due (none once finished)."),
    )
    created_at = models.DateTimeField(_("created at"), db_index=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = _("webhook deliveries")
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "failed"]),
                name="webhookdelivery_due",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "succeeded", "failed", "gave_up"]),
                name="webhookdelivery_status_valid",
                violation_error_message=_(
                    "Delivery status must be one of: pending, succeeded, failed, gave_up."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(status="succeeded") | Q(delivered_at__isnull=False),
                name="webhookdelivery_succeeded_has_time",
                violation_error_message=_("A succeeded delivery records when it was delivered."),
            ),
            models.CheckConstraint(
                condition=Q(status__in=["succeeded", "gave_up"]) | Q(next_attempt_at__isnull=False),
                name="webhookdelivery_open_is_scheduled",
                violation_error_message=_(
                    "A pending or failed delivery needs a next attempt time."
                ),
            ),
        ]

    def __str__(self):
        return f"{self.event} {self.message_id}"


# --- Reminders ------------------------------------------------------------------------------

DAYS_INVALID = _("Give whole days of 0 or more, e.g. 14, 7, 1, 0 (0 = on the due date).")
DAYS_NEGATIVE = _("Days cannot be negative.")


def _default_before_days() -> list[int]:
    return list(settings.REMINDER_BEFORE_DAYS)


def normalize_days(days) -> list[int]:
    """Days before the due date as a list of unique non-negative integers, largest first."""
    if not isinstance(days, list | tuple) or not all(
        isinstance(day, int) and not isinstance(day, bool) for day in days
    ):
        raise ValidationError(DAYS_INVALID, code="invalid")
    if any(day < 0 for day in days):
        raise ValidationError(DAYS_NEGATIVE, code="negative")
    return sorted(set(days), reverse=True)


class ReminderPolicy(models.Model):
    """When a plan's tasks are reminded of, and who hears of each step.

    Plans without a row follow the defaults of the settings (REMINDER_*); a row is created
    the first time a coordinator opens it (`services.reminder_policy_for`). Every step falls
    due at 09:00 in the recipient's own time zone."""

    plan = models.OneToOneField(
        "plans.Plan",
        verbose_name=_("plan"),
        on_delete=models.CASCADE,
        related_name="reminder_policy",
    )
    before_days = models.JSONField(
        _("before days"),
        default=_default_before_days,
        blank=True,
        help_text=_("Days before the due date to remind on, e.g. [14, 7, 1, 0]; 0 = on the day."),
    )
    overdue_every_days = models.PositiveSmallIntegerField(
        _("overdue every days"),
        default=7,
        help_text=_(
            "Overdue reminders: the first day after the deadline, then every this many "
            "days. 0 = only once."
        ),
    )
    escalate_manager_after_days = models.PositiveSmallIntegerField(
        _("escalate manager after days"), null=True, blank=True, default=3,
        help_text=_("Tell the task's manager after this many days overdue (empty: never)."),
    )  # fmt: skip
    escalate_coordinators_after_days = models.PositiveSmallIntegerField(
        _("escalate coordinators after days"), null=True, blank=True, default=14,
        help_text=_("Tell the plan's coordinators after this many days overdue (empty: never)."),
    )  # fmt: skip
    verification_reminder_after_days = models.PositiveSmallIntegerField(
        _("verification reminder after days"), null=True, blank=True, default=7,
        help_text=_("Remind the coordinators of a task done but not verified after this many "
        "days (empty: never)."),
    )  # fmt: skip
    # Who hears of the reminders before the due date (due soon, due today).
    due_to_assignee = models.BooleanField(_("due: assignee"), default=True)
    due_to_lead_organization = models.BooleanField(
        _("due: lead organization"), default=True,
        help_text=_("Contributors and managers of the task's lead organization."),
    )  # fmt: skip
    due_to_manager = models.BooleanField(_("due: manager"), default=False)
    due_to_coordinators = models.BooleanField(_("due: coordinators"), default=False)
    # Who hears of the overdue reminders.
    overdue_to_assignee = models.BooleanField(_("overdue: assignee"), default=True)
    overdue_to_lead_organization = models.BooleanField(
        _("overdue: lead organization"), default=True
    )
    overdue_to_manager = models.BooleanField(_("overdue: manager"), default=True)
    overdue_to_coordinators = models.BooleanField(_("overdue: coordinators"), default=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("reminder policy")
        ordering = ["plan"]
        verbose_name_plural = _("reminder policies")
        constraints = [
            models.CheckConstraint(
                condition=Q(overdue_every_days__gte=0)
                & (
                    Q(escalate_manager_after_days__isnull=True)
                    | Q(escalate_manager_after_days__gte=0)
                )
                & (
                    Q(escalate_coordinators_after_days__isnull=True)
                    | Q(escalate_coordinators_after_days__gte=0)
                )
                & (
                    Q(verification_reminder_after_days__isnull=True)
                    | Q(verification_reminder_after_days__gte=0)
                ),
                name="reminderpolicy_days_not_negative",
                violation_error_message=DAYS_NEGATIVE,
            ),
        ]

    def __str__(self):
        return f"Reminders of {self.plan.code}" if self.plan_id else "Reminders"

    def clean(self):
        try:
            self.before_days = normalize_days(self.before_days)
        except ValidationError as exc:
            raise ValidationError({"before_days": exc.messages}) from None

    @classmethod
    def defaults(cls, plan_id: int | None = None) -> "ReminderPolicy":
        """An unsaved policy with the settings' defaults (plans without a row)."""
        return cls(
            plan_id=plan_id,
            before_days=normalize_days(list(settings.REMINDER_BEFORE_DAYS)),
            overdue_every_days=settings.REMINDER_OVERDUE_EVERY_DAYS,
            escalate_manager_after_days=settings.REMINDER_ESCALATE_MANAGER_AFTER_DAYS,
            escalate_coordinators_after_days=settings.REMINDER_ESCALATE_COORDINATORS_AFTER_DAYS,
            verification_reminder_after_days=settings.REMINDER_VERIFICATION_AFTER_DAYS,
        )


class NotificationKind(models.TextChoices):
    DUE_SOON = "due_soon", _("Due soon")
    DUE_TODAY = "due_today", _("Due today")
    OVERDUE = "overdue", _("Overdue")
    ESCALATION_MANAGER = "escalation_manager", _("Overdue: escalated to the manager")
    ESCALATION_COORDINATORS = "escalation_coordinators", _("Overdue: escalated to the coordinators")
    AWAITING_VERIFICATION = "awaiting_verification", _("Done, awaiting verification")


class Notification(models.Model):
    """One reminder to one person about one task: shown in the app, and sent by email once.

    `dedupe_key` (recipient, task, kind, due date, step) is unique: however often and however
    concurrently the sweep runs, a reminder exists once. A new due date makes new keys."""

    Kind = NotificationKind

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recipient"),
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    task = models.ForeignKey(
        "plans.Task", verbose_name=_("task"), on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    due_date = models.DateField(
        _("due date"), help_text=_("The task's due date this reminder is about.")
    )
    step = models.PositiveIntegerField(
        _("step"),
        help_text=_(
            "Days before the due date (due soon), overdue period (1, 2, ...), or days "
            "after which the escalation or verification reminder came."
        ),
    )
    dedupe_key = models.CharField(_("dedupe key"), max_length=200, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), db_index=True)
    due_at = models.DateTimeField(
        _("due at"), help_text=_("When it fell due: 09:00 in the recipient's zone.")
    )
    email_sent_at = models.DateTimeField(_("email sent at"), null=True, blank=True)
    email_failed_at = models.DateTimeField(_("email failed at"), null=True, blank=True)
    failure_reason = models.CharField(_("failure reason"), max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(
        _("next attempt at"),
        null=True,
        blank=True,
        help_text=_("When the next email attempt is due (none once done)."),
    )
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["recipient", "-created_at"], name="notification_inbox"),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(email_sent_at__isnull=True, email_failed_at__isnull=True),
                name="notification_unsent",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    kind__in=[
                        "due_soon",
                        "due_today",
                        "overdue",
                        "escalation_manager",
                        "escalation_coordinators",
                        "awaiting_verification",
                    ]
                ),  # fmt: skip
                name="notification_kind_valid",
                violation_error_message=_("Notification kind is not one of the known kinds."),
            ),
            models.CheckConstraint(
                condition=Q(email_sent_at__isnull=True) | Q(email_failed_at__isnull=True),
                name="notification_sent_or_failed",
                violation_error_message=_("An email is either sent or failed, not both."),
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: task {self.task_id} to {self.recipient_id}"

    @staticmethod
    def key(recipient_id: int, task_id: int, kind: str, due_date, step: int) -> str:
        return f"{recipient_id}:{task_id}:{kind}:{due_date.isoformat()}:{step}"

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


# --- Calendar feed --------------------------------------------------------------------------


class CalendarFeed(models.Model):
    """A person's iCalendar feed of task deadlines at a secret URL
    (`/calendar/<prefix>_<secret>.ics`).

    The prefix is stored in clear to find the row; the secret only as a keyed hash
    (`tracker.tokens.hash_secret`), so the full URL is shown once, when created or rotated."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="calendar_feed",
    )
    prefix = models.CharField(_("prefix"), max_length=8, unique=True, editable=False)
    secret_hash = models.CharField(_("secret hash"), max_length=64, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    rotated_at = models.DateTimeField(_("rotated at"), null=True, blank=True, editable=False)
    last_fetched_at = models.DateTimeField(
        _("last fetched at"), null=True, blank=True, editable=False
    )

    class Meta:
        verbose_name = _("calendar feed")
        verbose_name_plural = _("calendar feeds")
        ordering = ["user"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(secret_hash="") & ~Q(prefix=""),
                name="calendarfeed_has_secret",
                violation_error_message=_("A calendar feed needs a prefix and a secret."),
            ),
        ]

    def __str__(self):
        return f"Calendar feed {self.prefix}…"


# --- Preferences ----------------------------------------------------------------------------


class NotificationPreference(models.Model):
    """What a person wants by email. Users without a row get every reminder by email and no
    digest. In-app notifications are always kept; language and time zone live on the user
    (`tracker.User`)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="notification_preference",
    )
    email_due_soon = models.BooleanField(_("email: due soon"), default=True)
    email_due_today = models.BooleanField(_("email: due today"), default=True)
    email_overdue = models.BooleanField(_("email: overdue"), default=True)
    email_escalation_manager = models.BooleanField(_("email: escalation to manager"), default=True)
    email_escalation_coordinators = models.BooleanField(
        _("email: escalation to coordinators"), default=True
    )
    email_awaiting_verification = models.BooleanField(
        _("email: awaiting verification"), default=True
    )
    digest = models.BooleanField(
        _("daily digest"),
        default=False,
        help_text=_(
            "One email at 08:00 in your time zone: due soon, overdue and (coordinators) "
            "awaiting verification."
        ),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("notification preferences")
        verbose_name_plural = _("notification preferences")
        ordering = ["user"]

    def __str__(self):
        return f"Notification preferences of {self.user_id}"

    @staticmethod
    def field_for(kind: str) -> str:
        """The email switch of a notification kind (`email_<kind>`)."""
        return f"email_{NotificationKind(kind).value}"

    def emails(self, kind: str) -> bool:
        return getattr(self, self.field_for(kind))


class MyNotificationPreference(NotificationPreference):
    """The admin's "My notification preferences" entry: each person opens and changes only
    their own row (a proxy; the table is NotificationPreference's)."""

    class Meta:
        proxy = True
        verbose_name = _("my notification preferences")
        verbose_name_plural = _("my notification preferences")


# --- Daily digest ---------------------------------------------------------------------------


class Digest(models.Model):
    """One person's daily digest for one local day: created by the sweep once their 08:00
    has passed (unique per user and day, however often the sweep runs), emailed once.

    Its content (due soon, overdue, awaiting verification) is computed when it is sent; a
    digest with nothing to report is not emailed and is recorded as `empty`."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        EMPTY = "empty", _("Nothing to report (not emailed)")
        NOT_SENT = "not_sent", _("Not sent")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="digests",
    )
    day = models.DateField(_("day"), help_text=_("The day it is for, in the user's time zone."))
    created_at = models.DateTimeField(_("created at"), db_index=True)
    due_at = models.DateTimeField(
        _("due at"), help_text=_("When it fell due: 08:00 in the user's zone.")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    task_count = models.PositiveIntegerField(
        _("task count"),
        null=True,
        blank=True,
        help_text=_("Tasks it reported, counted when it was sent."),
    )
    email_sent_at = models.DateTimeField(_("email sent at"), null=True, blank=True)
    email_failed_at = models.DateTimeField(_("email failed at"), null=True, blank=True)
    failure_reason = models.CharField(_("failure reason"), max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(
        _("next attempt at"),
        null=True,
        blank=True,
        help_text=_("When the next email attempt is due (none once done)."),
    )

    class Meta:
        verbose_name = _("daily digest")
        verbose_name_plural = _("daily digests")
        ordering = ["-day", "-pk"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(status="pending"), name="digest_pending"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "day"],
                name="digest_unique_user_day",
                violation_error_message=_("This user already has a digest for this day."),
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "sent", "empty", "not_sent"]),
                name="digest_status_valid",
                violation_error_message=_(
                    "Digest status must be one of: pending, sent, empty, not_sent."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(email_sent_at__isnull=False),
                name="digest_sent_has_time",
                violation_error_message=_("A sent digest records when it was sent."),
            ),
            models.CheckConstraint(
                condition=~Q(status="pending") | Q(next_attempt_at__isnull=False),
                name="digest_pending_is_scheduled",
                violation_error_message=_("A pending digest needs a next attempt time."),
            ),
        ]

    def __str__(self):
        return f"Digest of {self.day.isoformat()} to {self.user_id}"

    @staticmethod
    def key(user_id: int, day: dt.date) -> str:
        """The digest's identity, from which its Message-ID is derived."""
        return f"digest:{user_id}:{day.isoformat()}"

    @property
    def dedupe_key(self) -> str:
        return self.key(self.user_id, self.day)
