"""Admin of the tracker app's own records. Users, organizations and memberships are
registered by plans/admin.py, where the permission policy that governs them lives."""

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import ApiToken, WorkerHeartbeat
from .services import api_token_create, api_token_revoke


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("hostname", "last_seen_at", "beats")
    readonly_fields = ("hostname", "last_seen_at", "beats")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Your own API tokens (all of them for superusers). The token is shown once, on creation."""

    list_display = ("prefix", "name", "user", "scope", "created_at", "expires_at",
                    "last_used_at", "revoked_at")  # fmt: skip
    list_filter = ("scope",)
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("user")
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)

    def get_fields(self, request, obj=None):
        fields = ["name", "scope", "expires_at"]
        if request.user.is_superuser:
            fields.insert(0, "user")
        return fields + (list(self.readonly_fields) if obj else [])

    def get_form(self, request, obj=None, **kwargs):
        form_class = super().get_form(request, obj, **kwargs)
        user = request.user

        class OwnedTokenForm(form_class):
            def __init__(self, *args, **inner):
                super().__init__(*args, **inner)
                if not self.instance.user_id:
                    self.instance.user = user  # a superuser's choice replaces it on save

        return OwnedTokenForm

    def get_readonly_fields(self, request, obj=None):
        # A token is never edited: it is revoked and a new one made.
        return ["user", "name", "scope", "expires_at", *self.readonly_fields] if obj else []

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request) and (
            obj is None or request.user.is_superuser or obj.user_id == request.user.pk
        )

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.has_view_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            return
        owner = form.cleaned_data.get("user") or request.user
        token, full = api_token_create(
            actor=request.user, user=owner, name=form.cleaned_data["name"],
            scope=form.cleaned_data["scope"], expires_at=form.cleaned_data["expires_at"],
        )  # fmt: skip
        obj.pk = token.pk
        obj._state.adding = False
        self.message_user(
            request,
            format_html("{} <code>{}</code>",
                        _("New token (copy it now, it will not be shown again):"), full),
            messages.WARNING,
        )  # fmt: skip

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request, queryset):
        for token in queryset:
            api_token_revoke(actor=request.user, token=token)
        count = queryset.count()
        self.message_user(
            request,
            ngettext("Revoked %(count)d token.", "Revoked %(count)d tokens.", count)
            % {"count": count},
            messages.SUCCESS,
        )
