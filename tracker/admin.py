"""Admin of the tracker app's own records. Users, organizations and memberships are
registered by plans/admin.py, where the permission policy that governs them lives."""

from django.contrib import admin

from .models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("hostname", "last_seen_at", "beats")
    readonly_fields = ("hostname", "last_seen_at", "beats")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
