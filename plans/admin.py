"""Admin for the plan domain. Writes to plans and tasks go through plans.services."""

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html

from . import services
from .models import Forum, Outcome, Plan, PlanParticipant, StatusUpdate, Task, Workstream


class OutcomeInline(admin.TabularInline):
    model = Outcome
    fields = ("kind", "title", "signed_on", "amount", "currency", "binding", "status")
    extra = 0
    show_change_link = True


@admin.register(Forum)
class ForumAdmin(admin.ModelAdmin):
    list_display = ("name", "series", "kind", "held_on", "location", "outcome_count")
    list_filter = ("kind", "series")
    search_fields = ("name", "series", "location", "summary")
    date_hierarchy = "held_on"
    autocomplete_fields = ["hosts", "participants"]
    inlines = [OutcomeInline]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(_outcomes=Count("outcomes"))

    @admin.display(description="outcomes", ordering="_outcomes")
    def outcome_count(self, obj):
        return obj._outcomes


@admin.register(Outcome)
class OutcomeAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "kind",
        "forum",
        "signed_on",
        "amount_display",
        "status",
        "task_count",
        "progress_display",
    )
    list_filter = ("kind", "status", "binding", "forum__series")
    search_fields = ("title", "text", "clause_ref", "parties__name", "parties__acronym")
    date_hierarchy = "signed_on"
    autocomplete_fields = ["forum", "parties"]
    list_select_related = ("forum",)

    def get_queryset(self, request):
        return super().get_queryset(request).with_progress()

    @admin.display(description="amount")
    def amount_display(self, obj):
        return f"{obj.amount:,.0f} {obj.currency}" if obj.amount is not None else "—"

    @admin.display(description="tasks", ordering="task_count")
    def task_count(self, obj):
        return obj.task_count

    @admin.display(description="progress", ordering="progress_rollup")
    def progress_display(self, obj):
        return f"{obj.progress_rollup:.0f}%" if obj.task_count else "—"


class PlanParticipantInline(admin.TabularInline):
    model = PlanParticipant
    extra = 0
    autocomplete_fields = ["organization"]


class WorkstreamInline(admin.TabularInline):
    model = Workstream
    fields = ("order", "code", "title", "parent")
    extra = 0
    show_change_link = True
    fk_name = "plan"


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = (
        "code",
        "title",
        "status",
        "period_start",
        "period_end",
        "time_zone",
        "task_count",
        "overdue_count",
        "progress_display",
    )
    list_filter = ("status", "time_zone")
    search_fields = ("code", "title", "description")
    date_hierarchy = "period_start"
    autocomplete_fields = ["predecessor"]
    inlines = [PlanParticipantInline, WorkstreamInline]

    def get_queryset(self, request):
        return super().get_queryset(request).with_progress()

    @admin.display(description="tasks", ordering="task_count")
    def task_count(self, obj):
        return obj.task_count

    @admin.display(description="overdue", ordering="overdue_count")
    def overdue_count(self, obj):
        return obj.overdue_count

    @admin.display(description="progress", ordering="progress_rollup")
    def progress_display(self, obj):
        return f"{obj.progress_rollup:.0f}%"

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in form.changed_data}
        if change:
            saved = services.plan_update(actor=request.user, plan=obj, **fields)
        else:
            saved = services.plan_create(actor=request.user, **form.cleaned_data)
        obj.pk = saved.pk
        obj._state.adding = False


@admin.register(Workstream)
class WorkstreamAdmin(admin.ModelAdmin):
    list_display = ("code", "title", "plan", "parent", "order", "task_count", "progress_display")
    list_filter = ("plan",)
    search_fields = ("code", "title", "description")
    autocomplete_fields = ["plan", "parent", "lead_organizations"]
    list_select_related = ("plan", "parent")

    def get_queryset(self, request):
        return super().get_queryset(request).with_progress()

    @admin.display(description="tasks", ordering="task_count")
    def task_count(self, obj):
        return obj.task_count

    @admin.display(description="progress", ordering="progress_rollup")
    def progress_display(self, obj):
        return f"{obj.progress_rollup:.0f}%" if obj.task_count else "—"


class StatusUpdateInline(admin.TabularInline):
    """The task's history: read-only, append-only."""

    model = StatusUpdate
    fk_name = "task"
    extra = 0
    can_delete = False
    fields = (
        "created_at",
        "author",
        "kind",
        "status_from",
        "status_to",
        "progress",
        "due_date_from",
        "due_date_to",
        "assignee_to",
        "note",
        "evidence_url",
    )
    readonly_fields = fields
    ordering = ("created_at", "pk")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TaskAdminForm(forms.ModelForm):
    class Meta:
        model = Task
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        plan = cleaned.get("plan") or getattr(self.instance, "plan", None)
        depends_on = cleaned.get("depends_on")
        if plan is not None and depends_on is not None:
            if any(other.plan_id != plan.pk for other in depends_on):
                self.add_error("depends_on", services.DEPENDENCY_OTHER_PLAN)
            if self.instance.pk and any(other.pk == self.instance.pk for other in depends_on):
                self.add_error("depends_on", services.DEPENDENCY_SELF)
        return cleaned


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Overdue"), ("no", "Not overdue")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.overdue()
        if self.value() == "no":
            return queryset.not_overdue()
        return queryset


# Fields that only the workflow services change (transition, assign, change deadline).
WORKFLOW_FIELDS = ("status", "progress", "due_date", "assignee", "manager")


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    form = TaskAdminForm
    list_display = (
        "ref",
        "title",
        "plan",
        "workstream",
        "lead_organization",
        "status_display",
        "progress",
        "due_date",
        "priority",
        "assignee",
    )
    list_filter = (
        "plan",
        "status",
        "priority",
        OverdueFilter,
        "workstream",
        "visibility",
        "lead_organization",
    )
    search_fields = (
        "ref",
        "title",
        "description",
        "lead_organization__name",
        "lead_organization__acronym",
    )
    date_hierarchy = "due_date"
    ordering = ("due_date", "ref")
    list_select_related = ("plan", "workstream", "lead_organization", "assignee")
    autocomplete_fields = [
        "plan",
        "workstream",
        "lead_organization",
        "supporting_organizations",
        "source_outcomes",
        "assignee",
        "manager",
        "parent",
        "depends_on",
    ]
    readonly_fields = (
        "deadline_display",
        "completed_at",
        "verified_at",
        "version",
        "created_by",
        "created_at",
        "updated_by",
        "updated_at",
    )
    inlines = [StatusUpdateInline]
    fieldsets = (
        (None, {"fields": ("plan", "workstream", "ref", "title", "description", "parent")}),
        (
            "Organizations and people",
            {
                "fields": (
                    "lead_organization",
                    "supporting_organizations",
                    "assignee",
                    "manager",
                    "visibility",
                )
            },
        ),
        (
            "Schedule and status",
            {
                "fields": (
                    "start_date",
                    "due_date",
                    "deadline_display",
                    "status",
                    "priority",
                    "progress",
                    "completed_at",
                    "verified_at",
                )
            },
        ),
        ("Links", {"fields": ("source_outcomes", "depends_on")}),
        (
            "Record",
            {
                "fields": ("version", "created_by", "created_at", "updated_by", "updated_at"),
                "classes": ("collapse",),
            },
        ),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).with_overdue()

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            # Moving these needs a transition, an assignment or a reasoned deadline change,
            # each of which writes history; a plain form edit would skip that.
            fields += ["plan", "ref", *WORKFLOW_FIELDS]
        else:
            fields += ["status", "progress"]
        return fields

    @admin.display(description="status", ordering="status")
    def status_display(self, obj):
        label = obj.get_status_display()
        if getattr(obj, "is_overdue", False):
            return format_html('<strong style="color:#ba2121">{} · overdue</strong>', label)
        return label

    @admin.display(description="deadline (plan time)")
    def deadline_display(self, obj):
        if not obj.pk:
            return "—"
        local = timezone.localtime(obj.deadline_at, obj.plan.zone)
        return f"{local:%Y-%m-%d %H:%M} {obj.plan.time_zone} (end of {obj.due_date:%Y-%m-%d})"

    def save_model(self, request, obj, form, change):
        data = dict(form.cleaned_data)
        m2m = {
            name: data.pop(name)
            for name in ("supporting_organizations", "source_outcomes", "depends_on")
            if name in data
        }
        if change:
            fields = {
                name: data[name] for name in form.changed_data if name in services.UPDATABLE_FIELDS
            }
            changed_m2m = {name: value for name, value in m2m.items() if name in form.changed_data}
            saved = services.task_update(actor=request.user, task=obj, **fields, **changed_m2m)
        else:
            saved = services.task_create(actor=request.user, **data, **m2m)
        obj.pk = saved.pk
        obj._state.adding = False

    def save_related(self, request, form, formsets, change):
        # Many-to-many fields were saved by the service; only inlines remain.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


@admin.register(StatusUpdate)
class StatusUpdateAdmin(admin.ModelAdmin):
    list_display = ("task", "created_at", "author", "kind", "status_from", "status_to", "progress")
    list_filter = ("kind", "task__plan", "status_to")
    search_fields = ("task__ref", "task__title", "note")
    date_hierarchy = "created_at"
    list_select_related = ("task", "author")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
