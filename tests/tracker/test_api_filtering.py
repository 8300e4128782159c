"""NamedFiltersBackend: a request's FilterSet holds only the filters its parameters name."""

import django_filters as filters

from plans.filtersets import TaskFilterSet
from plans.models import Task
from tracker.api.filtering import narrowed


class RangeFilterSet(filters.FilterSet):
    due = filters.DateFromToRangeFilter(field_name="due_date")
    status = filters.CharFilter()

    class Meta:
        model = Task
        fields = []


def test_only_named_filters_are_kept_and_the_classes_are_reused():
    kept = narrowed(TaskFilterSet, ["status", "ordering", "page_size", "cursor"])
    assert list(kept.base_filters) == ["status"]
    assert issubclass(kept, TaskFilterSet)
    assert narrowed(TaskFilterSet, ["cursor", "status"]) is kept
    assert list(narrowed(TaskFilterSet, []).base_filters) == []
    assert narrowed(TaskFilterSet, list(TaskFilterSet.base_filters)) is TaskFilterSet
    assert len(TaskFilterSet.base_filters) > 10  # the original is untouched


def test_a_range_filters_suffixed_parameters_keep_it():
    assert list(narrowed(RangeFilterSet, ["due_after"]).base_filters) == ["due"]
    assert list(narrowed(RangeFilterSet, ["due_before", "x"]).base_filters) == ["due"]


def test_an_invalid_value_is_still_an_error_naming_the_filter():
    filterset = narrowed(TaskFilterSet, ["plan"])({"plan": "x"}, queryset=Task.objects.none())
    assert not filterset.is_valid()
    assert list(filterset.errors) == ["plan"]
