"""The role-based admin for ministries and firms.

Every decision (which rows a list shows, which objects open, what a form may change, which
actions appear, which choices a select or autocomplete offers) comes from
`plans.permissions`; every write goes through `plans.services`.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Avg, Count
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from modeltranslation.admin import TranslationTabularInline
from simple_history.admin import SimpleHistoryAdmin

from tracker.i18n import message
from tracker.models import Membership, Organization, User
from tracker.validators import validate_date_in_range, validate_web_url

from . import permissions as policy
from . import policy_memo, selectors, services
from .admin_history import LabelledHistoryMixin
from .admin_translations import TranslatedAdmin
from .exceptions import DomainError, VersionConflict, status_label
from .models import Forum, Outcome, Plan, PlanParticipant, StatusUpdate, Task, Workstream
from .querysets import CANCELLED
from .querysets import _overdue_q as overdue_q


def error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return getattr(exc, "message", str(exc))


# Links typed without a scheme are taken as https (Django 6's default, chosen now).
URL_FIELDS_HTTPS = {models.URLField: {"assume_scheme": "https"}}


class PolicyAdminMixin(LabelledHistoryMixin):
    """Takes every admin permission from the policy. Django's model permissions are unused."""

    formfield_overrides = URL_FIELDS_HTTPS

    # Foreign keys to these models offer the rows the user may change, not merely see
    # (a coordinator files tasks into the plans they coordinate).
    choice_actions = {Plan: policy.CHANGE, Workstream: policy.CHANGE}

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if getattr(request, "_policy_row_seen", False):
            return queryset  # get_object, below
        return queryset.filter(policy_memo.scope(request.user, policy.VIEW, queryset.model))

    # Read with the object on its change page (e.g. who created and last changed it).
    object_select_related: tuple[str, ...] = ()

    def get_object(self, request, object_id, from_field=None):
        if from_field is not None:
            return super().get_object(request, object_id, from_field)
        try:
            pk = self.model._meta.pk.to_python(object_id)
        except (ValidationError, ValueError):
            return None
        # The change page asked the policy about this very row in this request (one query
        # with its other questions, `_visible_or_404`): read it without the scope again.
        request._policy_row_seen = (
            policy_memo.answered(request.user, policy.VIEW, self.model, pk) is True
        )
        try:
            queryset = self.get_queryset(request)
        finally:
            request._policy_row_seen = False
        if self.object_select_related:
            queryset = queryset.select_related(*self.object_select_related)
        try:
            return queryset.get(pk=pk)
        except self.model.DoesNotExist:
            return None

    # Model-level questions every admin page asks (the menu: may each model's list be opened,
    # for viewing or changing; a form's related-object links: add, change, delete; the task
    # list's actions), answered in one query per request (plans/policy_memo.py).
    model_actions = (policy.VIEW, policy.CHANGE, policy.DELETE)

    def _staff(self, request) -> bool:
        return policy.is_signed_in(request.user) and request.user.is_staff

    def _prefetch(self, request) -> None:
        if getattr(request, "_policy_prefetched", False) or not policy_memo.active():
            return
        request._policy_prefetched = True
        policy_memo.prefetch(
            request.user,
            [
                (action, model)
                for model, model_admin in self.admin_site._registry.items()
                if isinstance(model_admin, PolicyAdminMixin)
                for action in model_admin.model_actions
            ],
        )

    def _allowed(self, request, action, obj=None) -> bool:
        if not self._staff(request):
            return False
        if obj is None:
            self._prefetch(request)
        return policy.can(request.user, action, obj if obj is not None else self.model)

    # The menu entry and the list: whoever may use the page, even before a row exists for
    # them (a coordinator's first reminder policy, a person's calendar feed or digests).
    def has_module_permission(self, request):
        if not self._staff(request):
            return False
        self._prefetch(request)
        return policy.may_open_list(request.user, self.model)

    def get_model_perms(self, request):
        # The menu (and the index) links a model's list and its add page; it never offers a
        # delete, which each page asks for itself: not asked here (one EXISTS per model fewer).
        return {
            "add": self.has_add_permission(request),
            "change": self.has_change_permission(request),
            "delete": False,
            "view": self.has_view_permission(request),
        }

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return self.has_module_permission(request)
        return self._allowed(request, policy.VIEW, obj)

    def has_add_permission(self, request, *args):
        return self._allowed(request, policy.ADD)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, policy.CHANGE, obj)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, policy.DELETE, obj)

    def action_checkbox(self, obj):
        # Django renders each row's checkbox through the form renderer's templates (a tenth
        # of the task list's time at 50 rows): the same markup, written directly.
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            obj.pk,
            format_html(gettext("Select this object for an action - {}"), str(obj)),
        )

    def _limit_choices(self, db_field, request, kwargs):
        model = db_field.remote_field.model
        if model in policy.SCOPES and "queryset" not in kwargs:
            action = self.choice_actions.get(model, policy.VIEW)
            kwargs["queryset"] = policy_memo.scoped(request.user, action, model)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        self._limit_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        self._limit_choices(db_field, request, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    # What the change page asks about its object, answered in one query with its visibility.
    object_actions = (policy.VIEW, policy.CHANGE, policy.DELETE)

    def _visible_or_404(self, request, object_id):
        try:
            pk = self.model._meta.pk.to_python(unquote(object_id))
            answers = None
            if self._staff(request):
                answers = policy_memo.prefetch_row(
                    request.user, self.model, pk, self.object_actions
                )
            if answers is None:
                visible = self.get_queryset(request).filter(pk=pk).exists()
            else:
                visible = answers[policy.VIEW]
        except (ValueError, ValidationError):
            visible = False
        if not visible:
            raise Http404(_("Not found."))

    # History pages answer 404 for objects out of sight (simple-history would answer 403).
    def history_view(self, request, object_id, extra_context=None):
        self._visible_or_404(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._visible_or_404(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self._visible_or_404(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        self._visible_or_404(request, object_id)
        return super().history_form_view(request, object_id, version_id, extra_context)


class PolicyInlineMixin:
    """Inlines follow the parent object's policy."""

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset.filter(policy_memo.scope(request.user, policy.VIEW, queryset.model))

    def has_view_permission(self, request, obj=None):
        return obj is None or policy.can(request.user, policy.VIEW, obj)

    def has_add_permission(self, request, obj=None):
        return obj is not None and policy.can(request.user, policy.CHANGE, obj)

    def has_change_permission(self, request, obj=None):
        return obj is not None and policy.can(request.user, policy.CHANGE, obj)

    def has_delete_permission(self, request, obj=None):
        return obj is not None and policy.can(request.user, policy.CHANGE, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        model = db_field.remote_field.model
        if model in policy.SCOPES and "queryset" not in kwargs:
            if model is self.parent_model and self.fk_name in (None, db_field.name):
                # The link to the parent: the inline formset puts its own field in its place.
                kwargs["queryset"] = model._default_manager.none()
            else:
                kwargs["queryset"] = policy_memo.scoped(request.user, policy.VIEW, model)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ServiceFormMixin:
    """Saves through a service: `create(actor, data)` and `update(actor, obj, changed)`."""

    m2m_fields: tuple[str, ...] = ()

    def save_model(self, request, obj, form, change):
        data = dict(form.cleaned_data)
        if change:
            changed = {name: data[name] for name in form.changed_data if name in data}
            if not changed:
                return  # e.g. only an inline was filled in: nothing to update here
            saved = self.service_update(request.user, obj, changed)
        else:
            saved = self.service_create(request.user, data)
        obj.pk = saved.pk
        obj._state.adding = False

    def save_related(self, request, form, formsets, change):
        # The service saved the many-to-many fields; only inlines remain.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


class PolicyFormMixin:
    """Form errors instead of server errors when a service refuses a save."""

    def _changeform_view(self, request, object_id, form_url, extra_context):
        if request.method != "POST":  # showing the form writes nothing: no savepoint
            return super()._changeform_view(request, object_id, form_url, extra_context)
        try:
            with transaction.atomic():
                return super()._changeform_view(request, object_id, form_url, extra_context)
        except (DomainError, ValidationError) as exc:
            # Nothing was saved (the transaction rolled back): say why, back on the same page.
            self.message_user(request, _("Not saved: %s") % error_text(exc), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


# --- Identity: users, organizations, memberships -------------------------------------------


class MembershipInline(PolicyInlineMixin, admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("organization", "user", "role")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(PolicyAdminMixin, DjangoUserAdmin):
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        (_("Preferences"), {"fields": ("time_zone", "language")}),
    )
    add_fieldsets = (
        *DjangoUserAdmin.add_fieldsets,
        (_("Preferences"), {"fields": ("email", "time_zone", "language")}),
    )
    list_display = (
        "username",
        "email",
        "first_name",
        "last_name",
        "time_zone",
        "language",
        "is_staff",
    )
    list_filter = ("is_staff", "is_superuser", "is_active", "language", "memberships__role")
    inlines = [MembershipInline]

    def get_search_results(self, request, queryset, search_term):
        # The task form's assignee and manager autocompletes offer only people who may hold
        # a task at all (the form then checks the task's own organizations).
        queryset, distinct = super().get_search_results(request, queryset, search_term)
        if request.GET.get("model_name") == "task" and request.GET.get("field_name") in (
            "assignee",
            "manager",
        ):
            queryset = queryset.filter(pk__in=policy.task_holders().values("pk"))
        return queryset, distinct


@admin.register(Organization)
class OrganizationAdmin(PolicyAdminMixin, TranslatedAdmin, SimpleHistoryAdmin):
    list_display = ("name", "acronym", "name_ko", "kind", "country", "parent")
    list_filter = ("kind", "country")
    search_fields = ("name", "acronym", "name_ko")
    autocomplete_fields = ["parent"]
    list_select_related = ("parent",)
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(PolicyAdminMixin, PolicyFormMixin, ServiceFormMixin, SimpleHistoryAdmin):
    list_display = ("user", "organization", "role", "created_at")
    list_filter = ("role", "organization__country")
    search_fields = ("user__username", "user__email", "organization__name", "organization__acronym")
    autocomplete_fields = ["user", "organization"]
    list_select_related = ("user", "organization")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "organization":
            kwargs["queryset"] = policy.organizations_managed_by(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request, obj=None, **kwargs):
        form_class = super().get_form(request, obj, **kwargs)
        actor = request.user

        class GrantForm(form_class):
            """What the actor may not grant shows on the field, before anything is saved."""

            def clean(self):
                cleaned = super().clean()
                user, organization = cleaned.get("user"), cleaned.get("organization")
                role = cleaned.get("role")
                if obj is not None:
                    user = user or obj.user
                    organization = organization or obj.organization
                    role = role or obj.role
                if user and organization and role:
                    before = Membership.objects.filter(pk=obj.pk).first() if obj else None
                    refusal = policy.membership_grant_refusal(
                        actor, user=user, organization=organization, role=role,
                        membership=before,
                    )  # fmt: skip
                    if refusal is not None:
                        field, message = refusal
                        self.add_error(field if field in self.fields else None, message)
                return cleaned

        return GrantForm

    def service_create(self, actor, data):
        return services.membership_create(actor=actor, **data)

    def service_update(self, actor, obj, changed):
        return services.membership_update(actor=actor, membership=obj, **changed)

    def has_delete_permission(self, request, obj=None):
        # Not offered at all where the service would refuse (a coordinator role in an
        # organization the actor does not coordinate).
        return super().has_delete_permission(request, obj) and (
            obj is None
            or policy.membership_grant_refusal(
                request.user,
                user=obj.user,
                organization=obj.organization,
                role=obj.role,
                membership=obj,
                removal=True,
            )  # fmt: skip
            is None
        )

    def delete_model(self, request, obj):
        try:
            services.membership_delete(actor=request.user, membership=obj)
        except DomainError as exc:
            self.message_user(request, str(exc), messages.ERROR)

    def delete_queryset(self, request, queryset):
        # All or nothing: one refused membership leaves every selected one in place.
        try:
            with transaction.atomic():
                for membership in queryset:
                    services.membership_delete(actor=request.user, membership=membership)
        except DomainError as exc:
            self.message_user(request, str(exc), messages.ERROR)


# --- Forums and outcomes ---------------------------------------------------------------------


class OutcomeInline(PolicyInlineMixin, admin.TabularInline):
    model = Outcome
    fields = ("kind", "title", "signed_on", "amount", "currency", "binding", "status")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Forum)
class ForumAdmin(PolicyAdminMixin, TranslatedAdmin, SimpleHistoryAdmin):
    list_display = ("name", "series", "kind", "held_on", "location", "outcome_count")
    list_filter = ("kind", "series")
    search_fields = ("name", "series", "location", "summary")
    date_hierarchy = "held_on"
    autocomplete_fields = ["hosts", "participants"]
    inlines = [OutcomeInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_outcomes=Count("outcomes"))

    @admin.display(description=_("outcomes"), ordering="_outcomes")
    def outcome_count(self, obj):
        return obj._outcomes


class RollupChangeList(ChangeList):
    """The list's page of rows, with the rolled-up columns filled in for that page only."""

    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        self.model_admin.fill_rollups(request, self.result_list)


class RollupAdminMixin:
    """Columns rolled up from the tasks the viewer can see (never from hidden ones). Only the
    list shows them: the change page does not roll up every task of the plan to open it.

    The list's page reads them in one grouped query over the page's rows (one pass over the
    tasks in sight, where an annotation takes one correlated pass per column and row of the
    whole list); only a list sorted by a column asks for them as annotations (SQL sorts)."""

    rollup_key = "plan"  # the task's link to the row (plans.querysets._rollup)

    def changelist_view(self, request, extra_context=None):
        request._rollup_columns = True
        return super().changelist_view(request, extra_context)

    def get_changelist(self, request, **kwargs):
        return RollupChangeList

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if not getattr(request, "_rollup_columns", False) or ORDER_VAR not in request.GET:
            return queryset
        return queryset.with_progress(tasks=policy_memo.scoped(request.user, policy.VIEW, Task))

    def fill_rollups(self, request, rows) -> None:
        rows = [row for row in rows if not hasattr(row, "task_count")]
        if not rows:
            return
        key = self.rollup_key
        figures = {
            figure[key]: figure
            for figure in policy_memo.scoped(request.user, policy.VIEW, Task)
            .filter(**{f"{key}__in": [row.pk for row in rows]})
            .exclude(status=CANCELLED)
            .order_by()
            .values(key)
            .annotate(
                task_count=Count("pk"),
                overdue_count=Count("pk", filter=overdue_q()),
                progress_rollup=Avg("progress"),
            )
        }
        for row in rows:
            figure = figures.get(row.pk, {})
            row.task_count = figure.get("task_count", 0)
            row.overdue_count = figure.get("overdue_count", 0)
            row.progress_rollup = figure.get("progress_rollup") or 0

    @admin.display(description=_("tasks"), ordering="task_count")
    def task_count(self, obj):
        return obj.task_count

    @admin.display(description=_("overdue"), ordering="overdue_count")
    def overdue_count(self, obj):
        return obj.overdue_count

    @admin.display(description=_("progress"), ordering="progress_rollup")
    def progress_display(self, obj):
        return f"{obj.progress_rollup:.0f}%" if obj.task_count else "—"


@admin.register(Outcome)
class OutcomeAdmin(RollupAdminMixin, PolicyAdminMixin, TranslatedAdmin, SimpleHistoryAdmin):
    rollup_key = "source_outcomes"
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
    search_fields = ("title", "text", "clause_ref")
    date_hierarchy = "signed_on"
    autocomplete_fields = ["forum", "parties"]
    list_select_related = ("forum",)

    @admin.display(description=_("amount"))
    def amount_display(self, obj):
        return f"{obj.amount:,.0f} {obj.currency}" if obj.amount is not None else "—"


# --- Plans and workstreams -------------------------------------------------------------------


class KnownAutocompleteSelect(AutocompleteSelect):
    """An autocomplete that shows its selected row from `known` ({pk: label}, filled once for
    the whole formset) instead of one query per row; anything else as Django does."""

    known: dict | None = None

    def optgroups(self, name, value, attr=None):
        selected = {str(v) for v in value if str(v) not in self.choices.field.empty_values}
        if self.known is None or not selected <= self.known.keys():
            return super().optgroups(name, value, attr)
        default = (None, [], 0)
        if not self.is_required:
            default[1].append(self.create_option(name, "", "", False, 0))
        for pk in sorted(selected):
            index = len(default[1])
            default[1].append(self.create_option(name, pk, self.known[pk], selected, index))
        return [default]


class PlanParticipantInline(PolicyInlineMixin, admin.TabularInline):
    model = PlanParticipant
    extra = 0
    autocomplete_fields = ["organization"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("organization", "plan")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "organization":
            kwargs["widget"] = KnownAutocompleteSelect(db_field, self.admin_site)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        field = formset.form.base_fields.get("organization")
        widget = getattr(getattr(field, "widget", None), "widget", None)
        if obj is not None and isinstance(widget, KnownAutocompleteSelect):
            # The plan's participating organizations the viewer may pick: one query a page.
            widget.known = policy_memo.remember(
                request.user,
                f"plan_participant_labels:{obj.pk}",
                lambda: {
                    str(org.pk): field.label_from_instance(org)
                    for org in field.queryset.filter(plan_participations__plan=obj).distinct()
                },
            )
        return formset


class WorkstreamInline(PolicyInlineMixin, TranslationTabularInline):
    model = Workstream
    fields = ("order", "code", "title", "parent")
    extra = 0
    show_change_link = True
    fk_name = "plan"

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and db_field.name == "parent":
            # Every row's "parent" select offers the same workstreams: read them once (each
            # form's copy of the field keeps the list; validation still uses the queryset).
            field.choices = [*iter(field.choices)]  # iter(): no COUNT first
        return field


@admin.register(Plan)
class PlanAdmin(
    RollupAdminMixin, PolicyAdminMixin, PolicyFormMixin, ServiceFormMixin, TranslatedAdmin,
    SimpleHistoryAdmin,
):  # fmt: skip
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
    list_filter = ("status",)
    search_fields = ("code", "title", "description")
    date_hierarchy = "period_start"
    autocomplete_fields = ["predecessor"]
    inlines = [PlanParticipantInline, WorkstreamInline]

    def service_create(self, actor, data):
        return services.plan_create(actor=actor, **data)

    def service_update(self, actor, obj, changed):
        return services.plan_update(actor=actor, plan=obj, **changed)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if any(formset.has_changed() for formset in formsets if formset.model is PlanParticipant):
            services.plan_touch(form.instance.pk)  # the plan lists them (incremental sync)


@admin.register(Workstream)
class WorkstreamAdmin(
    RollupAdminMixin, PolicyAdminMixin, PolicyFormMixin, ServiceFormMixin, TranslatedAdmin,
    SimpleHistoryAdmin,
):  # fmt: skip
    rollup_key = "workstream"
    list_display = ("code", "title", "plan", "parent", "order", "task_count", "progress_display")
    list_filter = (("plan", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("code", "title", "description")
    autocomplete_fields = ["plan", "parent", "lead_organizations"]
    list_select_related = ("plan", "parent")

    def service_create(self, actor, data):
        return services.workstream_create(actor=actor, **data)

    def service_update(self, actor, obj, changed):
        return services.workstream_update(actor=actor, workstream=obj, **changed)


# --- Tasks -------------------------------------------------------------------------------------


class StatusHistoryInline(admin.TabularInline):
    """The task's history: read-only, append-only."""

    model = StatusUpdate
    fk_name = "task"
    extra = 0
    can_delete = False
    verbose_name = _("history entry")
    verbose_name_plural = _("History")
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

    def get_queryset(self, request):
        # The task (each row's title names it) and the people each entry names, in the
        # entries' query (none per row).
        return super().get_queryset(request).select_related("task", "author", "assignee_to")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return obj is None or policy.can(request.user, policy.VIEW, obj)


class LoadedVersionField(forms.IntegerField):
    """The task version a page was rendered with, sent back hidden so the services can refuse
    the write (VersionConflict) if the task changed meanwhile. Never an edit of its own."""

    widget = forms.HiddenInput
    MALFORMED = -1  # no task has it: a tampered value is refused as stale, as in the API

    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)

    def to_python(self, value):
        try:
            return super().to_python(value)
        except ValidationError:
            return self.MALFORMED

    def has_changed(self, initial, data):
        return False


class StatusUpdateForm(forms.ModelForm):
    """One new status update: optionally a status change, a note, evidence and progress."""

    move = forms.ChoiceField(label=_("change status to"), required=False)
    expected_from = forms.CharField(widget=forms.HiddenInput, required=False)
    evidence_url = forms.URLField(
        label=_("evidence link"),
        required=False,
        assume_scheme="https",
        max_length=500,
        validators=[validate_web_url],
    )
    new_progress = forms.IntegerField(
        label=_("progress %"), min_value=0, max_value=100, required=False
    )

    class Meta:
        model = StatusUpdate
        fields = ("note", "evidence_url")
        widgets = {"note": forms.Textarea(attrs={"rows": 3, "cols": 60})}

    def __init__(self, *args, user=None, task=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user, self.task = user, task
        moves = selectors.task_allowed_moves(user=user, task=task) if task else []
        self.fields["move"].choices = [("", _("— keep status —"))] + [
            (to_status, f"{move.label} → {Task.Status(to_status).label}")
            for to_status, move in moves
        ]
        self.fields["expected_from"].initial = task.status if task else ""
        if task is None or not policy.can(user, policy.TRANSITION, task):
            # Supporting organizations add notes, not progress figures.
            del self.fields["new_progress"]

    def has_changed(self):
        # The hidden expected_from always carries a value; only the user's input counts.
        return any(name != "expected_from" for name in self.changed_data)

    def clean(self):
        cleaned = super().clean()
        move = cleaned.get("move")
        if move and self.task is not None:
            rule = services.workflow_move(self.task.status, move)
            if rule and rule.needs_note and not (cleaned.get("note") or "").strip():
                self.add_error(
                    "note",
                    message(
                        services.NOTE_REQUIRED,
                        from_status=self.task.status,
                        to_status=move,
                        from_status_label=status_label(self.task.status),
                        to_status_label=status_label(move),
                    ),
                )
            if (
                rule
                and rule.needs_evidence
                and self.task.plan.requires_evidence
                and not cleaned.get("evidence_url")
            ):
                self.add_error("evidence_url", message(services.EVIDENCE_REQUIRED))
        return cleaned

    def apply(self, *, actor, expected_version: int | None = None) -> int | None:
        """Run the services this form asks for, in one transaction. The first write expects
        `expected_version` (the version the page loaded); each next one the version the previous
        one left. Returns the version to expect after them."""
        data = self.cleaned_data
        note, evidence = (data.get("note") or "").strip(), data.get("evidence_url") or ""
        progress = data.get("new_progress")
        if data.get("move"):
            task = services.task_transition(
                actor=actor,
                task=self.task,
                to_status=data["move"],
                expected_from=data["expected_from"],
                note=note,
                evidence_url=evidence,
                expected_version=expected_version,
            )
            expected_version = task.version
            if progress is not None and data["move"] not in Task.COMPLETE_STATUSES:
                update = services.status_update_add(
                    actor=actor, task=self.task, progress=progress, expected_version=task.version
                )
                expected_version = update.task.version
        elif note or evidence or progress is not None:
            update = services.status_update_add(
                actor=actor, task=self.task, note=note, progress=progress, evidence_url=evidence,
                expected_version=expected_version,
            )  # fmt: skip
            expected_version = update.task.version
        return expected_version


class AddStatusUpdateInline(admin.StackedInline):
    formfield_overrides = URL_FIELDS_HTTPS
    model = StatusUpdate
    fk_name = "task"
    form = StatusUpdateForm
    extra = 1
    max_num = 1
    can_delete = False
    verbose_name = _("new status update")
    verbose_name_plural = _("Add a status update")
    fields = ("move", "new_progress", "note", "evidence_url", "expected_from")

    def get_queryset(self, request):
        return super().get_queryset(request).none()

    def get_fields(self, request, obj=None):
        fields = list(self.fields)
        if obj is None or not policy.can(request.user, policy.TRANSITION, obj):
            fields.remove("new_progress")
        return fields

    def has_view_permission(self, request, obj=None):
        return obj is not None and policy.can(request.user, policy.ADD_UPDATE, obj)

    has_add_permission = has_view_permission

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# Changed only through the workflow: a transition, an assignment or a reasoned deadline change,
# each of which writes history. A plain form edit would skip that.
WORKFLOW_FIELDS = ("status", "progress", "due_date", "assignee", "manager")
STRUCTURE_FIELDS = (
    "plan",
    "workstream",
    "ref",
    "title",
    "description",
    "parent",
    "lead_organization",
    "supporting_organizations",
    "visibility",
    "start_date",
    "priority",
    "source_outcomes",
    "depends_on",
)


class TaskAdminForm(forms.ModelForm):
    # Named apart from the read-only "version" shown under Record.
    loaded_version = LoadedVersionField()

    class Meta:
        model = Task
        fields = (*STRUCTURE_FIELDS, *WORKFLOW_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["loaded_version"].initial = self.instance.version

    def clean(self):
        cleaned = super().clean()
        plan = cleaned.get("plan") or (self.instance.plan if self.instance.plan_id else None)
        depends_on = cleaned.get("depends_on")
        if plan is not None and depends_on is not None:
            if any(other.plan_id != plan.pk for other in depends_on):
                self.add_error("depends_on", message(services.DEPENDENCY_OTHER_PLAN))
            if self.instance.pk and any(other.pk == self.instance.pk for other in depends_on):
                self.add_error("depends_on", message(services.DEPENDENCY_SELF))
        lead = cleaned.get("lead_organization")
        people = {name: cleaned.get(name) for name in ("assignee", "manager") if name in cleaned}
        if plan is not None and lead is not None and any(people.values()):
            try:
                services.task_people_check(
                    plan_id=plan.pk,
                    lead_organization_id=lead.pk,
                    supporting_organization_ids=[
                        org.pk for org in cleaned.get("supporting_organizations") or ()
                    ],
                    **people,
                )
            except ValidationError as exc:
                for field, messages_ in exc.message_dict.items():
                    self.add_error(field, messages_)
        return cleaned


class InSightFilter(admin.RelatedFieldListFilter):
    """A related-field filter whose choices are the rows of the (small) related table the
    viewer may see (`model_admin.filter_choices`), not a DISTINCT over every task in sight."""

    def field_choices(self, field, request, model_admin):
        # The scoped query's SQL is built once per process for the viewer's scope inputs
        # (policy_memo.compiled_sql); the rows are read afresh.
        sql, params = policy_memo.compiled_sql(
            request.user,
            ("filter_choices", model_admin.model._meta.label, field.name),
            lambda: model_admin.filter_choices(field.name, request),
        )
        if sql is None:  # nothing in sight
            return []
        rows = field.remote_field.model._default_manager.raw(sql, params)
        return [(row.pk, str(row)) for row in rows]


class OverdueFilter(admin.SimpleListFilter):
    title = _("overdue")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", _("Overdue")), ("no", _("Not overdue"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.overdue()
        if self.value() == "no":
            return queryset.not_overdue()
        return queryset


class ScopeFilter(admin.SimpleListFilter):
    """ "My tasks" by default for contributors and managers; everything in sight otherwise."""

    title = _("scope")
    parameter_name = "scope"

    def __init__(self, request, params, model, model_admin):
        self.user = request.user
        self.default = "all" if selectors.coordinates_any_plan(request.user) else "mine"
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        return [("mine", _("My tasks (open)")), ("all", _("All I can see"))]

    def value(self):
        return super().value() or self.default

    def queryset(self, request, queryset):
        if self.value() == "mine":
            return selectors.task_mine(user=self.user, queryset=queryset)
        return queryset

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }


class TaskActionForm(forms.Form):
    """The form of an action's page. Its fields may depend on the actor and the selected
    tasks (`user`, `tasks`)."""

    def __init__(self, *args, user=None, tasks=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.user, self.tasks = user, list(tasks)


class ConfirmForm(TaskActionForm):
    """No fields: the page lists the tasks, and its Apply sends back the status and version
    each one showed, so a task changed meanwhile is refused (If-Match)."""


class NoteForm(TaskActionForm):
    note = forms.CharField(label=_("note"), widget=forms.Textarea(attrs={"rows": 3}))


class ChangeStatusForm(TaskActionForm):
    to_status = forms.ChoiceField(label=_("new status"), choices=Task.Status.choices)
    note = forms.CharField(
        label=_("note"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    evidence_url = forms.URLField(
        label=_("evidence link"),
        required=False,
        assume_scheme="https",
        validators=[validate_web_url],
    )


class AssignForm(TaskActionForm):
    assignee = forms.ModelChoiceField(
        queryset=User.objects.none(), required=False, label=_("assignee")
    )
    note = forms.CharField(
        label=_("note"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Only people the policy lets this actor make the assignee of every selected task.
        self.fields["assignee"].queryset = selectors.task_assignee_choices_for(
            user=self.user, tasks=self.tasks
        )


class DeadlineForm(TaskActionForm):
    due_date = forms.DateField(
        label=_("new due date"),
        widget=admin.widgets.AdminDateWidget,
        validators=[validate_date_in_range],
    )
    reason = forms.CharField(label=_("reason"), widget=forms.Textarea(attrs={"rows": 3}))


def _task_action(description, permission, form_class=None):
    """An admin action that asks for a form (if any), then calls `apply(request, task, data,
    expected, version)` on each selected task in its own transaction and reports per task.
    `expected` is the status and `version` the version the form page showed (None without a
    form page): a task changed meanwhile is refused."""

    def decorator(apply):
        def action(modeladmin, request, queryset):
            return modeladmin.run_task_action(
                request, queryset, apply, form_class, description, action.__name__
            )

        action.__name__ = apply.__name__
        return admin.action(description=description, permissions=[permission])(action)

    return decorator


def _shown_version(value: str | None, task: Task) -> int | None:
    """The version an action's form page showed (None: no form page, no check). Anything but
    a whole number is taken as stale, as for If-Match in the API."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise VersionConflict(expected=value, actual=task.version) from None


@_task_action(_("Change status…"), "transition", ChangeStatusForm)
def change_status(request, task, data, expected, version):
    services.task_transition(
        actor=request.user,
        task=task,
        to_status=data["to_status"],
        expected_from=expected,
        note=data["note"],
        evidence_url=data["evidence_url"],
        expected_version=version,
    )


@_task_action(_("Verify completion…"), "verify", ConfirmForm)
def verify(request, task, data, expected, version):
    services.task_transition(
        actor=request.user,
        task=task,
        to_status=Task.Status.VERIFIED,
        expected_from=expected,
        expected_version=version,
    )


@_task_action(_("Return for revision…"), "verify", NoteForm)
def return_for_revision(request, task, data, expected, version):
    services.task_transition(
        actor=request.user,
        task=task,
        to_status=Task.Status.IN_PROGRESS,
        expected_from=Task.Status.DONE if expected == Task.Status.DONE else expected,
        note=data["note"],
        expected_version=version,
    )


@_task_action(_("Cancel…"), "verify", NoteForm)
def cancel(request, task, data, expected, version):
    services.task_transition(
        actor=request.user,
        task=task,
        to_status=Task.Status.CANCELLED,
        expected_from=expected,
        note=data["note"],
        expected_version=version,
    )


@_task_action(_("Assign…"), "assign", AssignForm)
def assign(request, task, data, expected, version):
    services.task_assign(
        actor=request.user,
        task=task,
        assignee=data["assignee"],
        note=data["note"],
        expected_version=version,
    )


@_task_action(_("Change deadline…"), "change_deadline", DeadlineForm)
def change_deadline(request, task, data, expected, version):
    services.task_change_deadline(
        actor=request.user,
        task=task,
        due_date=data["due_date"],
        reason=data["reason"],
        expected_version=version,
    )


@admin.register(Task)
class TaskAdmin(
    PolicyAdminMixin, PolicyFormMixin, ServiceFormMixin, TranslatedAdmin, SimpleHistoryAdmin
):
    form = TaskAdminForm
    list_display = (
        "ref",
        "title",
        "plan_code",
        "workstream",
        "lead_organization",
        "status_display",
        "progress",
        "due_date_display",
        "priority",
        "assignee",
    )
    list_filter = (
        ScopeFilter,
        OverdueFilter,
        "status",
        "priority",
        ("plan", InSightFilter),
        ("workstream", InSightFilter),
        ("lead_organization", InSightFilter),
        "visibility",
    )
    # One COUNT a page (the filtered one): no second count of every task in sight.
    show_full_result_count = False
    # 50 rows a page, as the API's and the workspace's task lists: rendering the rows is the
    # larger part of the page's time.
    list_per_page = 50
    search_fields = ("ref", "title", "description")
    date_hierarchy = "due_date"
    ordering = ("deadline_at", "ref")
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
    inlines = [StatusHistoryInline, AddStatusUpdateInline]
    model_actions = (
        *PolicyAdminMixin.model_actions,
        *(policy.TRANSITION, policy.VERIFY, policy.ASSIGN, policy.CHANGE_DEADLINE),
        policy.ADD_UPDATE,
    )
    object_actions = (
        *(policy.VIEW, policy.CHANGE, policy.DELETE, policy.TRANSITION, policy.VERIFY),
        policy.ADD_UPDATE,
    )
    actions = [change_status, verify, return_for_revision, cancel, assign, change_deadline]
    record_fields = (
        "deadline_display",
        "completed_at",
        "verified_at",
        "version",
        "created_by",
        "created_at",
        "updated_by",
        "updated_at",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "plan",
                    "workstream",
                    "ref",
                    "title",
                    "description",
                    "parent",
                    "loaded_version",  # hidden
                )
            },
        ),
        (
            _("Organizations and people"),
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
            _("Schedule and status"),
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
        (_("Links"), {"fields": ("source_outcomes", "depends_on")}),
        (
            _("Record"),
            {
                "fields": ("version", "created_by", "created_at", "updated_by", "updated_at"),
                "classes": ("collapse",),
            },
        ),
    )

    object_select_related = ("plan", "workstream", "created_by", "updated_by")

    def get_queryset(self, request):
        return super().get_queryset(request).with_overdue()

    def filter_choices(self, field_name, request):
        """The list filters' choices: plans and workstreams in sight, and the organizations
        taking part in the plans in sight (a task's lead organization takes part in its plan)."""
        user = request.user
        plans = policy.for_user(user, policy.VIEW, Plan)
        if field_name == "plan":
            return plans.order_by("code")
        if field_name == "workstream":
            return policy.for_user(user, policy.VIEW, Workstream).order_by(
                "plan__code", "order", "code"
            )
        if field_name == "lead_organization":
            return Organization.objects.filter(
                pk__in=PlanParticipant.objects.filter(plan__in=plans).values("organization_id")
            ).order_by("name")
        raise ValueError(field_name)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name in ("assignee", "manager"):
            kwargs["queryset"] = policy.for_user(request.user, policy.VIEW, policy.task_holders())
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # Contributors open the change page to add status updates: allow it when they may,
    # and make every field read-only for them (a crafted POST changes nothing).
    def has_change_permission(self, request, obj=None):
        return self._allowed(request, policy.CHANGE, obj) or self._allowed(
            request, policy.ADD_UPDATE, obj
        )

    def has_transition_permission(self, request):
        return self._allowed(request, policy.TRANSITION) or self._allowed(request, policy.VERIFY)

    def has_verify_permission(self, request):
        return self._allowed(request, policy.VERIFY)

    def has_assign_permission(self, request):
        return self._allowed(request, policy.ASSIGN)

    def has_change_deadline_permission(self, request):
        return self._allowed(request, policy.CHANGE_DEADLINE)

    def get_readonly_fields(self, request, obj=None):
        # replace_orig_field: "title" stands for title_en and title_ko (TranslatedAdmin).
        if obj is None:
            return [*self.record_fields, "status", "progress"]
        if not policy.can(request.user, policy.CHANGE, obj):
            fields = [*STRUCTURE_FIELDS, *WORKFLOW_FIELDS, *self.record_fields]
            return self.replace_orig_field(fields)
        return ["plan", "ref", *WORKFLOW_FIELDS, *self.record_fields]

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, AddStatusUpdateInline):
            kwargs["form_kwargs"] = {"user": request.user, "task": obj}
        return kwargs

    def save_model(self, request, obj, form, change):
        # Every write of this save expects the version the page loaded, then the version the
        # previous write left (all in the change view's one transaction): a page older than the
        # task is refused with VersionConflict, which PolicyFormMixin shows, writing nothing.
        obj.expected_version = form.cleaned_data.get("loaded_version") if change else None
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        if issubclass(formset.form, StatusUpdateForm):
            for update_form in formset.forms:
                if update_form.has_changed() and update_form.is_valid():
                    form.instance.expected_version = update_form.apply(
                        actor=request.user,
                        expected_version=getattr(form.instance, "expected_version", None),
                    )
            # The services wrote the rows; the admin's change message reads these.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            return
        super().save_formset(request, form, formset, change)

    @admin.display(description=_("status"), ordering="status")
    def status_display(self, obj):
        label = obj.get_status_display()
        if getattr(obj, "is_overdue", False):
            return format_html(
                '<strong style="color:#ba2121">{} · {}</strong>', label, _("overdue")
            )
        return label

    @admin.display(description=_("plan"), ordering="plan__code")
    def plan_code(self, obj):
        return obj.plan.code

    @admin.display(description=_("due"), ordering="deadline_at")
    def due_date_display(self, obj):
        return obj.due_date

    @admin.display(description=_("deadline (plan time)"))
    def deadline_display(self, obj):
        if not obj.pk:
            return "—"
        local = timezone.localtime(obj.deadline_at, obj.plan.zone)
        return _("%(when)s %(zone)s (end of %(date)s)") % {
            "when": f"{local:%Y-%m-%d %H:%M}",
            "zone": obj.plan.time_zone,
            "date": f"{obj.due_date:%Y-%m-%d}",
        }

    m2m_fields = ("supporting_organizations", "source_outcomes", "depends_on")

    def service_create(self, actor, data):
        data.pop("loaded_version", None)
        return services.task_create(actor=actor, **data)

    def service_update(self, actor, obj, changed):
        task = services.task_update(
            actor=actor, task=obj, expected_version=obj.expected_version, **changed
        )
        obj.expected_version = task.version
        return task

    def run_task_action(self, request, queryset, apply, form_class, title, action_name):
        tasks = list(queryset.select_related("plan"))
        if form_class is not None and "apply" not in request.POST:
            form = form_class(user=request.user, tasks=tasks)
        else:
            form = form_class(request.POST, user=request.user, tasks=tasks) if form_class else None
            if form is None or form.is_valid():
                data = form.cleaned_data if form else {}
                done, refused = 0, []
                for task in tasks:
                    expected = request.POST.get(f"expected_{task.pk}", task.status)
                    shown = request.POST.get(f"version_{task.pk}")
                    try:
                        with transaction.atomic():
                            apply(request, task, data, expected, _shown_version(shown, task))
                        done += 1
                    except (DomainError, ValidationError) as exc:
                        refused.append(f"{task.ref}: {error_text(exc)}")
                if done:
                    self.message_user(
                        request,
                        _("%(title)s: %(n)d task(s) updated.")
                        % {"title": str(title).rstrip("…"), "n": done},
                        messages.SUCCESS,
                    )
                for line in refused:
                    self.message_user(request, line, messages.ERROR)
                return None
        for task in tasks:
            # What the page shows and sends back: on a form redisplayed with errors, still
            # what the first page showed, so the apply is checked against what the user saw.
            task.shown_status = request.POST.get(f"expected_{task.pk}", task.status)
            task.shown_version = request.POST.get(f"version_{task.pk}", task.version)
        return TemplateResponse(
            request,
            "admin/plans/task/action_form.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": str(title).rstrip("…"),
                "form": form,
                "queryset": tasks,
                "action": action_name,
            },
        )


@admin.register(StatusUpdate)
class StatusUpdateAdmin(PolicyAdminMixin, admin.ModelAdmin):
    list_display = ("task", "created_at", "author", "kind", "status_from", "status_to", "progress")
    list_filter = ("kind", "status_to")
    search_fields = ("task__ref", "task__title", "note")
    date_hierarchy = "created_at"
    list_select_related = ("task", "author")

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
