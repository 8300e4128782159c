"""Admin of the webhooks (subscriptions and their delivery log), the plans' reminder
policies, each person's notifications, notification preferences and daily digests.

What a list shows, which objects open and what may be changed come from `plans.permissions`
(through PolicyAdminMixin); every write goes through `notifications.services`. A secret is
never displayed, except once, on the page right after it is created or rotated.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from plans import permissions as policy
from plans import policy_memo
from plans.admin import PolicyAdminMixin, PolicyFormMixin, error_text
from plans.exceptions import DomainError
from tracker.models import User
from tracker.validators import time_zone_choices

from . import calendar, selectors, services
from .models import (
    DAYS_INVALID,
    CalendarFeed,
    Digest,
    MyNotificationPreference,
    Notification,
    ReminderPolicy,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
    normalize_days,
)

SECRET_TEMPLATE = "admin/notifications/webhooksubscription/secret.html"
RECENT_DELIVERIES = 10


class WebhookSubscriptionForm(forms.ModelForm):
    url = forms.URLField(
        label=_("URL"),
        max_length=500,
        assume_scheme="https",
        help_text=_("https, to a public internet address (no credentials in the URL)."),
    )
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookSubscription
        fields = ("organization", "url", "description", "events")

    def clean(self):
        data = super().clean()
        # The service decides (and decides again on save); asking it here puts the reason on
        # the field instead of a page-level message.
        if "url" in self.changed_data and data.get("url"):
            services.webhook_url_validate(url=data["url"])
        return data


def _show_once(modeladmin, request, pairs, title, template=SECRET_TEMPLATE):
    """The one kind of page that shows plaintext secrets (webhook secrets, feed URLs): not
    cached, never put in messages (they may sit in a cookie or the session)."""
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.model._meta,
        "title": title,
        "pairs": pairs,
    }
    response = TemplateResponse(request, template, context)
    response["Cache-Control"] = "no-store"
    return response


def _each(modeladmin, request, queryset, apply, done):
    """Run `apply(subscription)` for each selected row; report successes and refusals."""
    results = []
    for subscription in queryset:
        try:
            results.append((subscription, apply(subscription)))
        except (DomainError, ValidationError) as exc:
            modeladmin.message_user(request, f"{subscription}: {error_text(exc)}", messages.ERROR)
    if results and done:
        modeladmin.message_user(request, done % {"count": len(results)}, messages.SUCCESS)
    return results


@admin.action(description=_("Rotate the signing secret (the old one still signs for 24 h)"))
def rotate_secret(modeladmin, request, queryset):
    return _rotate(modeladmin, request, queryset, keep_previous=True)


@admin.action(description=_("Rotate the signing secret and stop the old one now (leaked)"))
def rotate_secret_now(modeladmin, request, queryset):
    return _rotate(modeladmin, request, queryset, keep_previous=False)


def _rotate(modeladmin, request, queryset, keep_previous):
    results = _each(
        modeladmin,
        request,
        queryset,
        lambda sub: services.webhook_subscription_rotate_secret(
            actor=request.user, subscription=sub, keep_previous=keep_previous
        )[1],
        None,
    )
    if results:
        return _show_once(modeladmin, request, results, _("New signing secrets"))
    return None


@admin.action(description=_("Enable (and reset the failure count)"))
def enable(modeladmin, request, queryset):
    _each(
        modeladmin,
        request,
        queryset,
        lambda sub: services.webhook_subscription_enable(actor=request.user, subscription=sub),
        _("Enabled %(count)d webhook(s)."),
    )


@admin.action(description=_("Disable"))
def disable(modeladmin, request, queryset):
    _each(
        modeladmin,
        request,
        queryset,
        lambda sub: services.webhook_subscription_update(
            actor=request.user, subscription=sub, is_active=False
        ),
        _("Disabled %(count)d webhook(s)."),
    )


@admin.action(description=_("Send a test ping"))
def ping(modeladmin, request, queryset):
    _each(
        modeladmin,
        request,
        queryset,
        lambda sub: services.webhook_subscription_ping(actor=request.user, subscription=sub),
        _("Sent a test ping to %(count)d webhook(s); see the delivery log."),
    )


for _action in (rotate_secret, rotate_secret_now, enable, disable, ping):
    _action.allowed_permissions = ("change",)


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(PolicyAdminMixin, PolicyFormMixin, admin.ModelAdmin):
    form = WebhookSubscriptionForm
    list_display = (
        "url",
        "organization",
        "events_display",
        "is_active",
        "consecutive_failures",
        "disabled_at",
        "created_at",
    )
    list_filter = ("is_active", ("organization", admin.RelatedOnlyFieldListFilter))
    search_fields = ("url", "description", "organization__name", "organization__acronym")
    list_select_related = ("organization",)
    actions = [rotate_secret, rotate_secret_now, enable, disable, ping]
    readonly_fields = (
        "secret_display",
        "is_active",
        "disabled_at",
        "disabled_reason",
        "consecutive_failures",
        "created_by",
        "created_at",
        "recent_deliveries",
    )

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ("organization", "url", "description", "events")})]
        return [
            (None, {"fields": ("organization", "url", "description", "events")}),
            (
                _("State"),
                {
                    "fields": (
                        "secret_display",
                        "is_active",
                        "disabled_at",
                        "disabled_reason",
                        "consecutive_failures",
                        "created_by",
                        "created_at",
                    )
                },
            ),
            (_("Recent deliveries"), {"fields": ("recent_deliveries",)}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("organization", *self.readonly_fields)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "organization":
            kwargs["queryset"] = selectors.webhook_organizations_managed(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=_("events"))
    def events_display(self, obj):
        return ", ".join(obj.events or [])

    @admin.display(description=_("signing secret"))
    def secret_display(self, obj):
        if obj.previous_secret_expires_at:
            return _("set (rotated; the previous one signs too until %(time)s)") % {
                "time": obj.previous_secret_expires_at.strftime("%Y-%m-%d %H:%M %Z")
            }
        return _("set (never shown again; use the rotate action for a new one)")

    @admin.display(description=_("deliveries"))
    def recent_deliveries(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        # Whoever sees a subscription sees its deliveries (both: the organization's members).
        deliveries = obj.deliveries.order_by("-created_at", "-pk")[:RECENT_DELIVERIES]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    d.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    d.event,
                    d.get_status_display(),
                    d.attempts,
                    d.last_status_code or "",
                    d.last_error,
                )
                for d in deliveries
            ),
        )
        link = reverse("admin:notifications_webhookdelivery_changelist")
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>"
            "<th>{}</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}?subscription__id__exact={}">{}</a></p>',
            _("created"),
            _("event"),
            _("status"),
            _("attempts"),
            _("HTTP"),
            _("last error"),
            rows,
            link,
            obj.pk,
            _("The whole delivery log"),
        )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            changed = {
                name: data[name]
                for name in form.changed_data
                if name in ("url", "description", "events")
            }
            saved = services.webhook_subscription_update(
                actor=request.user, subscription=obj, **changed
            )
        else:
            saved, secret = services.webhook_subscription_create(
                actor=request.user,
                organization=data["organization"],
                url=data["url"],
                events=data["events"],
                description=data.get("description", ""),
            )
            request._webhook_secret = (saved, secret)
        obj.pk = saved.pk
        obj._state.adding = False

    def save_related(self, request, form, formsets, change):
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def response_add(self, request, obj, post_url_continue=None):
        created = getattr(request, "_webhook_secret", None)
        if created is not None:
            return _show_once(self, request, [created], _("Webhook created"))
        return super().response_add(request, obj, post_url_continue)

    def delete_model(self, request, obj):
        services.webhook_subscription_delete(actor=request.user, subscription=obj)

    def delete_queryset(self, request, queryset):
        for subscription in queryset:
            services.webhook_subscription_delete(actor=request.user, subscription=subscription)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(PolicyAdminMixin, admin.ModelAdmin):
    """The delivery log: read-only for everyone."""

    list_display = (
        "created_at",
        "event",
        "subscription",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("status", "event", ("subscription", admin.RelatedOnlyFieldListFilter))
    search_fields = ("message_id", "subscription__url")
    list_select_related = ("subscription",)
    date_hierarchy = "created_at"
    fields = (
        "subscription",
        "event",
        "task",
        "message_id",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "created_at",
        "delivered_at",
        "payload",
    )
    readonly_fields = fields

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Reminders -------------------------------------------------------------------------------


class ReminderPolicyForm(forms.ModelForm):
    before_days = forms.CharField(
        label=_("Days before the due date"),
        help_text=_("Comma-separated, e.g. 14, 7, 1, 0 (0 = on the due date)."),
    )

    class Meta:
        model = ReminderPolicy
        fields = [
            field.name
            for field in ReminderPolicy._meta.concrete_fields
            if field.editable and field.name != "id"
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        days = self.initial.get("before_days")
        if isinstance(days, list):
            self.initial["before_days"] = ", ".join(str(day) for day in days)

    def clean_before_days(self):
        raw = self.cleaned_data["before_days"]
        try:
            days = [int(part) for part in raw.replace(" ", "").split(",") if part]
        except ValueError:
            raise ValidationError(DAYS_INVALID) from None
        return normalize_days(days)


@admin.register(ReminderPolicy)
class ReminderPolicyAdmin(PolicyAdminMixin, PolicyFormMixin, admin.ModelAdmin):
    """A plan's reminder policy; the plan's coordinators edit it (plans without one follow
    the defaults of the settings until a coordinator adds it)."""

    form = ReminderPolicyForm
    list_display = (
        "plan",
        "before_days",
        "overdue_every_days",
        "escalate_manager_after_days",
        "escalate_coordinators_after_days",
        "verification_reminder_after_days",
        "updated_at",
    )
    list_select_related = ("plan",)
    fieldsets = [
        (None, {"fields": ("plan",)}),
        (
            _("When"),
            {
                "fields": (
                    "before_days",
                    "overdue_every_days",
                    "escalate_manager_after_days",
                    "escalate_coordinators_after_days",
                    "verification_reminder_after_days",
                )
            },
        ),
        (
            _("Who hears of the reminders before and on the due date"),
            {
                "fields": (
                    "due_to_assignee",
                    "due_to_lead_organization",
                    "due_to_manager",
                    "due_to_coordinators",
                )
            },
        ),
        (
            _("Who hears of the overdue reminders"),
            {
                "fields": (
                    "overdue_to_assignee",
                    "overdue_to_lead_organization",
                    "overdue_to_manager",
                    "overdue_to_coordinators",
                )
            },
        ),
    ]

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        defaults = ReminderPolicy.defaults()
        for field in ReminderPolicy._meta.concrete_fields:
            if field.name not in ("id", "plan", "updated_at"):
                initial.setdefault(field.name, getattr(defaults, field.name))
        return initial

    def get_readonly_fields(self, request, obj=None):
        return ("plan",) if obj is not None else ()

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in form.changed_data if name != "plan"}
        if not change:
            obj.plan = form.cleaned_data["plan"]
        services.reminder_policy_update(actor=request.user, reminder_policy=obj, **fields)


@admin.action(description=_("Mark as read"))
def mark_read(modeladmin, request, queryset):
    count = 0
    for notification in queryset.filter(recipient=request.user, read_at__isnull=True):
        services.notification_mark_read(user=request.user, notification=notification)
        count += 1
    modeladmin.message_user(request, _("Marked %(count)d as read.") % {"count": count})


mark_read.allowed_permissions = ("change",)


class ReadFilter(admin.SimpleListFilter):
    title = _("read")
    parameter_name = "read"

    def lookups(self, request, model_admin):
        return (("no", _("Unread")), ("yes", _("Read")))

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(read_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(read_at__isnull=False)
        return queryset


class EmailFilter(admin.SimpleListFilter):
    title = _("email")
    parameter_name = "email"

    def lookups(self, request, model_admin):
        return (("sent", _("Sent")), ("pending", _("Pending")), ("failed", _("Not sent")))

    def queryset(self, request, queryset):
        if self.value() == "sent":
            return queryset.filter(email_sent_at__isnull=False)
        if self.value() == "pending":
            return queryset.filter(email_sent_at__isnull=True, email_failed_at__isnull=True)
        if self.value() == "failed":
            return queryset.filter(email_failed_at__isnull=False)
        return queryset


@admin.register(Notification)
class NotificationAdmin(PolicyAdminMixin, admin.ModelAdmin):
    """Your notifications, newest first (a superuser sees everyone's, with email failures)."""

    list_display = (
        "created_at",
        "kind",
        "task_link",
        "due_date",
        "recipient",
        "is_read",
        "email_state",
    )
    list_filter = (ReadFilter, "kind", EmailFilter)
    list_select_related = ("task", "recipient")
    search_fields = ("task__ref", "task__title")
    actions = [mark_read]
    fields = (
        "recipient",
        "task",
        "kind",
        "due_date",
        "step",
        "due_at",
        "created_at",
        "read_at",
        "email_sent_at",
        "email_failed_at",
        "attempts",
        "failure_reason",
        "dedupe_key",
    )
    readonly_fields = fields

    def has_add_permission(self, request, *args):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        notification = self.get_queryset(request).filter(pk=object_id).first()
        if notification is not None and notification.recipient_id == request.user.pk:
            services.notification_mark_read(user=request.user, notification=notification)
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description=_("task"), ordering="task__ref")
    def task_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:plans_task_change", args=[obj.task_id]), obj.task
        )

    @admin.display(description=_("read"), boolean=True)
    def is_read(self, obj):
        return obj.read_at is not None

    @admin.display(description=_("email"))
    def email_state(self, obj):
        if obj.email_sent_at:
            return _("sent %(time)s") % {"time": obj.email_sent_at.strftime("%Y-%m-%d %H:%M")}
        if obj.email_failed_at:
            return format_html('<span style="color: #ba2121;">{}</span>', obj.failure_reason)
        if obj.attempts:
            return _("retrying (%(attempts)d): %(error)s") % {
                "attempts": obj.attempts,
                "error": obj.failure_reason,
            }
        return _("pending")


# --- Calendar feeds -------------------------------------------------------------------------

CALENDAR_URL_TEMPLATE = "admin/notifications/calendarfeed/url.html"


@admin.action(
    description=_("Rotate the secret (the old URL stops working)"), permissions=["change"]
)
def rotate_feed(modeladmin, request, queryset):
    pairs = []
    for feed in queryset.select_related("user"):
        try:
            pairs.append(calendar.calendar_feed_rotate(actor=request.user, user=feed.user))
        except DomainError as exc:
            modeladmin.message_user(request, f"{feed}: {error_text(exc)}", messages.ERROR)
    if pairs:
        return _show_once(
            modeladmin, request, pairs, _("New calendar feed URLs"), CALENDAR_URL_TEMPLATE
        )
    return None


@admin.register(CalendarFeed)
class CalendarFeedAdmin(PolicyAdminMixin, admin.ModelAdmin):
    """Each person's feed (superusers: everyone's). *Add* creates or rotates your own."""

    list_display = ("user", "prefix", "created_at", "rotated_at", "last_fetched_at")
    fields = list_display
    readonly_fields = list_display
    actions = [rotate_feed]

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            pair = calendar.calendar_feed_rotate(actor=request.user, user=request.user)
            return _show_once(
                self, request, [pair], _("Your calendar feed URL"), CALENDAR_URL_TEMPLATE
            )
        return _show_once(self, request, [], _("Create my calendar feed"), CALENDAR_URL_TEMPLATE)


# --- Preferences and digests ----------------------------------------------------------------

PREFERENCES_SAVED = _("Your notification preferences were saved.")


class MyNotificationPreferenceForm(forms.ModelForm):
    language = forms.ChoiceField(label=_("language"), choices=User.Language.choices)
    time_zone = forms.ChoiceField(
        label=_("time zone"),
        choices=time_zone_choices,
        help_text=_("Reminders fall due at 09:00 and the digest at 08:00 in this zone."),
    )

    class Meta:
        model = MyNotificationPreference
        fields = list(services.PREFERENCE_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.user_id:
            for name in services.PREFERENCE_USER_FIELDS:
                self.initial.setdefault(name, getattr(self.instance.user, name))


@admin.register(MyNotificationPreference)
class MyNotificationPreferenceAdmin(PolicyAdminMixin, PolicyFormMixin, admin.ModelAdmin):
    """*My notification preferences*: the entry opens your own page (the defaults until you
    first save it). The policy shows each person their own (superusers: everyone's)."""

    form = MyNotificationPreferenceForm
    fieldsets = [
        (_("Email me these reminders"), {"fields": services.PREFERENCE_EMAIL_FIELDS}),
        (_("Daily digest"), {"fields": ("digest",)}),
        (_("Language and time zone"), {"fields": services.PREFERENCE_USER_FIELDS}),
    ]

    # The entry shows for every staff member, before they have a row (the policy's view
    # scope is rows; the first save creates one).
    def has_module_permission(self, request):
        return self._allowed(request, policy.ADD)

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return self._allowed(request, policy.ADD)
        return super().has_view_permission(request, obj)

    def _own_row(self, request):
        # Asked by the menu on every admin page: once a request (until the request writes).
        return policy_memo.remember(
            request.user,
            "own_notification_preference",
            lambda: self.get_queryset(request).filter(user_id=request.user.pk).first(),
        )

    def has_add_permission(self, request, *args):
        # Your first save creates your row; after that you change it.
        return super().has_add_permission(request) and self._own_row(request) is None

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        own = self._own_row(request)
        if own is None:
            return HttpResponseRedirect(reverse("admin:notifications_mynotificationpreference_add"))
        return HttpResponseRedirect(
            reverse("admin:notifications_mynotificationpreference_change", args=[own.pk])
        )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
            "show_delete": False,
        }
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        for name in services.PREFERENCE_USER_FIELDS:
            initial.setdefault(name, getattr(request.user, name))
        return initial

    def save_model(self, request, obj, form, change):
        fields = {
            name: form.cleaned_data[name]
            for name in (*services.PREFERENCE_FIELDS, *services.PREFERENCE_USER_FIELDS)
        }
        saved = services.notification_preferences_update(
            actor=request.user, user=obj.user if change else request.user, **fields
        )
        obj.pk = saved.pk
        obj.user_id = saved.user_id
        obj._state.adding = False

    def _saved(self, request, obj):
        self.message_user(request, PREFERENCES_SAVED, messages.SUCCESS)
        return HttpResponseRedirect(
            reverse("admin:notifications_mynotificationpreference_change", args=[obj.pk])
        )

    def response_add(self, request, obj, post_url_continue=None):
        return self._saved(request, obj)

    def response_change(self, request, obj):
        return self._saved(request, obj)


@admin.register(Digest)
class DigestAdmin(PolicyAdminMixin, admin.ModelAdmin):
    """Your daily digests, read-only (superusers: everyone's), with why one was not sent."""

    list_display = ("day", "user", "status", "task_count", "email_state", "due_at")
    list_filter = ("status",)
    list_select_related = ("user",)
    search_fields = ("user__username", "user__email")
    fields = (
        "user",
        "day",
        "due_at",
        "created_at",
        "status",
        "task_count",
        "email_sent_at",
        "email_failed_at",
        "attempts",
        "next_attempt_at",
        "failure_reason",
    )
    readonly_fields = fields

    @admin.display(description=_("email"))
    def email_state(self, obj):
        if obj.status == Digest.Status.SENT:
            return _("sent %(time)s") % {"time": obj.email_sent_at.strftime("%Y-%m-%d %H:%M")}
        if obj.status == Digest.Status.EMPTY:
            return _("nothing to report (not emailed)")
        if obj.status == Digest.Status.NOT_SENT:
            return format_html('<span style="color: #ba2121;">{}</span>', obj.failure_reason)
        if obj.attempts and obj.failure_reason:
            return _("retrying (%(attempts)d): %(error)s") % {
                "attempts": obj.attempts,
                "error": obj.failure_reason,
            }
        return _("pending")
