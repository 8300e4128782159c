"""Filters of the identity models, and the id filter every FilterSet shares."""

import django_filters as filters
from django.db.models import Q

from .models import Organization


class IdsFilter(filters.BaseInFilter, filters.NumberFilter):
    """One or more integer ids, comma-separated: `?plan=3` or `?plan=3,4`."""


class OrganizationFilterSet(filters.FilterSet):
    kind = filters.MultipleChoiceFilter(distinct=False, choices=Organization.Kind.choices)
    country = filters.CharFilter(field_name="country", lookup_expr="iexact")
    parent = IdsFilter(field_name="parent_id")
    q = filters.CharFilter(method="search")

    class Meta:
        model = Organization
        fields = []

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(name__icontains=value) | Q(acronym__icontains=value) | Q(name_ko__icontains=value)
        )
