"""One FilterSet per model, used by the API viewsets and by the selectors.

Text search (`q`) matches the English and the Korean versions of titles, names and
descriptions alike.

Id filters take one or more ids (`?plan=3` or `?plan=3,4`); status takes several values by
repeating the parameter (`?status=planned&status=in_progress`; a comma list is refused with
400, as the schema says); dates are ranges.
Filters narrow a queryset the policy has already scoped, so no filter reveals a hidden row.
"""

import django_filters as filters
from django.db.models import Q

from tracker.content_language import search_q
from tracker.filtersets import DayFilter, FilterSet, IdsFilter, InstantFilter, updated_after_filter

from .models import Forum, Outcome, Plan, PlanParticipant, StatusUpdate, Task, Workstream


class TaskFilterSet(FilterSet):
    plan = IdsFilter(field_name="plan_id", help_text="Plan id(s).")
    workstream = IdsFilter(field_name="workstream_id", help_text="Workstream id(s).")
    status = filters.MultipleChoiceFilter(
        distinct=False,
        choices=Task.Status.choices,
        help_text="One or more statuses (repeat the parameter).",
    )
    priority = filters.MultipleChoiceFilter(distinct=False, choices=Task.Priority.choices)
    lead_organization = IdsFilter(field_name="lead_organization_id")
    organization = IdsFilter(
        method="filter_organization", help_text="Organization id(s) that lead or support."
    )
    assignee = IdsFilter(field_name="assignee_id")
    manager = IdsFilter(field_name="manager_id")
    source_outcome = IdsFilter(method="filter_source_outcome", help_text="Outcome id(s).")
    forum = IdsFilter(method="filter_forum", help_text="Tasks from outcomes of these forum(s).")
    due_after = DayFilter(
        field_name="due_date", lookup_expr="gte", help_text="Due on or after (YYYY-MM-DD)."
    )
    due_before = DayFilter(
        field_name="due_date", lookup_expr="lte", help_text="Due on or before (YYYY-MM-DD)."
    )
    overdue = filters.BooleanFilter(
        method="filter_overdue",
        help_text="Open and past the end of the due date in the plan's time zone.",
    )
    updated_after = updated_after_filter()
    q = filters.CharFilter(
        method="search", help_text="Text in ref, title or description (English or Korean)."
    )

    class Meta:
        model = Task
        fields = []

    def filter_organization(self, queryset, name, value):
        supported = Task.supporting_organizations.through.objects.filter(
            organization_id__in=value
        ).values("task_id")
        return queryset.filter(Q(lead_organization_id__in=value) | Q(pk__in=supported))

    def filter_source_outcome(self, queryset, name, value):
        through = Task.source_outcomes.through.objects.filter(outcome_id__in=value)
        return queryset.filter(pk__in=through.values("task_id"))

    def filter_forum(self, queryset, name, value):
        through = Task.source_outcomes.through.objects.filter(outcome__forum_id__in=value)
        return queryset.filter(pk__in=through.values("task_id"))

    def filter_overdue(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.overdue() if value else queryset.not_overdue()

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(search_q(Task, ("ref", "title", "description"), value))


class StatusUpdateFilterSet(FilterSet):
    task = IdsFilter(field_name="task_id")
    plan = IdsFilter(field_name="task__plan_id")
    kind = filters.MultipleChoiceFilter(distinct=False, choices=StatusUpdate.Kind.choices)
    author = IdsFilter(field_name="author_id")
    created_after = InstantFilter(field_name="created_at", lookup_expr="gt")
    created_before = InstantFilter(field_name="created_at", lookup_expr="lt")

    updated_after = updated_after_filter("created_at", "Recorded")  # append-only

    class Meta:
        model = StatusUpdate
        fields = []


class PlanFilterSet(FilterSet):
    status = filters.MultipleChoiceFilter(distinct=False, choices=Plan.Status.choices)
    organization = IdsFilter(field_name="participations__organization_id", distinct=True)
    q = filters.CharFilter(method="search")

    updated_after = updated_after_filter()

    class Meta:
        model = Plan
        fields = []

    def search(self, queryset, name, value):
        return queryset.filter(search_q(Plan, ("code", "title"), value))


class WorkstreamFilterSet(FilterSet):
    plan = IdsFilter(field_name="plan_id")
    parent = IdsFilter(field_name="parent_id")

    updated_after = updated_after_filter()

    class Meta:
        model = Workstream
        fields = []


class ForumFilterSet(FilterSet):
    kind = filters.MultipleChoiceFilter(distinct=False, choices=Forum.Kind.choices)
    series = filters.CharFilter(field_name="series", lookup_expr="iexact")
    held_after = DayFilter(field_name="held_on", lookup_expr="gte")
    held_before = DayFilter(field_name="held_on", lookup_expr="lte")
    q = filters.CharFilter(method="search")

    updated_after = updated_after_filter()

    class Meta:
        model = Forum
        fields = []

    def search(self, queryset, name, value):
        return queryset.filter(search_q(Forum, ("name", "summary"), value))


class OutcomeFilterSet(FilterSet):
    forum = IdsFilter(field_name="forum_id")
    kind = filters.MultipleChoiceFilter(distinct=False, choices=Outcome.Kind.choices)
    status = filters.MultipleChoiceFilter(distinct=False, choices=Outcome.Status.choices)
    party = IdsFilter(method="filter_party", help_text="Organization id(s) among the parties.")
    q = filters.CharFilter(method="search")

    updated_after = updated_after_filter()

    class Meta:
        model = Outcome
        fields = []

    def filter_party(self, queryset, name, value):
        through = Outcome.parties.through.objects.filter(organization_id__in=value)
        return queryset.filter(pk__in=through.values("outcome_id"))

    def search(self, queryset, name, value):
        return queryset.filter(search_q(Outcome, ("title", "text"), value))


class PlanParticipantFilterSet(FilterSet):
    plan = IdsFilter(field_name="plan_id")
    organization = IdsFilter(field_name="organization_id")
    role = filters.MultipleChoiceFilter(distinct=False, choices=PlanParticipant.Role.choices)

    updated_after = updated_after_filter()

    class Meta:
        model = PlanParticipant
        fields = []
