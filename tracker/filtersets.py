"""Filters of the identity models, and the id filter every FilterSet shares."""

import datetime
import re

import django_filters as filters
from django import forms
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django_filters.filters import QuerySetRequestMixin
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from . import content_language
from .models import Organization
from .validators import DATE_OUT_OF_RANGE, date_in_range

MAX_ID = 2**63 - 1


ID_DIGITS = re.compile(r"[0-9]{1,19}")


class IdField(forms.IntegerField):
    """A database id: a positive integer that fits a bigint, written in ASCII digits only.

    Django's IntegerField also takes "1.0", "1_000" and other scripts' digits; an id is
    one plain number or a 400 naming the filter.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if not (isinstance(value, str) and ID_DIGITS.fullmatch(value.strip())):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return int(value)


@extend_schema_field(OpenApiTypes.INT64)
class IdFilter(filters.Filter):
    field_class = IdField


INSTANT_OUT_OF_RANGE = _(
    "Enter an instant that exists in UTC (offset within ±24 hours, year 1-9999)."
)


class InstantField(filters.fields.IsoDateTimeField):
    """An ISO 8601 instant, handed to the database in UTC.

    Python accepts offsets such as -20:01 that PostgreSQL refuses, and a far year may not
    exist in UTC: both are a 400 naming the field, never a database error. The year is
    within tracker.validators' bounds, like every date.
    """

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            value = value.astimezone(datetime.UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError(INSTANT_OUT_OF_RANGE, code="invalid") from None
        if not date_in_range(value):
            raise forms.ValidationError(DATE_OUT_OF_RANGE, code="invalid")
        return value


class InstantFilter(filters.IsoDateTimeFilter):
    field_class = InstantField


SYNC_PARAMETER = "updated_after"


def updated_after_filter(field_name: str = "updated_at", what: str = "Changed") -> InstantFilter:
    """`?updated_after=<ISO 8601 instant>`: rows whose `field_name` is later. With it the list
    is ordered by (`field_name`, id) (tracker.api.pagination.Cursor), so a client pages from
    its high-water mark (docs/integration/sync.md). A bad value is a 400 naming it."""
    return InstantFilter(
        field_name=field_name,
        lookup_expr="gt",
        help_text=f"{what} after this instant (ISO 8601 with an offset, e.g. "
        "2026-03-01T09:00:00+09:00), for incremental sync: the list is then ordered by "
        f"({field_name}, id). Deletions: /api/v1/changes/.",
    )


class DayField(forms.DateField):
    """A calendar date within tracker.validators' bounds (years MIN_YEAR to MAX_YEAR)."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is not None and not date_in_range(value):
            raise forms.ValidationError(DATE_OUT_OF_RANGE, code="invalid")
        return value


class DayFilter(filters.DateFilter):
    field_class = DayField


class IdsFilter(filters.BaseInFilter, IdFilter):
    """One or more integer ids, comma-separated: `?plan=3` or `?plan=3,4`."""


_FORM_CLASSES = {}


class FilterSet(filters.FilterSet):
    """django-filter's FilterSet, building its form class once per class and language.

    django-filter builds a new form class (and a form field per filter) on every request.
    The fields depend only on the declared filters, except for labels, which are
    translated when built (hence one per language), and for model choice filters, whose
    querysets may depend on the request (those are never cached). Each form still
    deep-copies the fields, so no state is shared between requests.
    """

    def get_form_class(self):
        key = (type(self), translation.get_language())
        form_class = _FORM_CLASSES.get(key)
        if form_class is None:
            form_class = super().get_form_class()
            if not any(isinstance(f, QuerySetRequestMixin) for f in self.filters.values()):
                _FORM_CLASSES[key] = form_class
        return form_class


class OrganizationFilterSet(FilterSet):
    kind = filters.MultipleChoiceFilter(distinct=False, choices=Organization.Kind.choices)
    country = filters.CharFilter(field_name="country", lookup_expr="iexact")
    parent = IdsFilter(field_name="parent_id")
    q = filters.CharFilter(method="search")
    updated_after = updated_after_filter()

    class Meta:
        model = Organization
        fields = []

    def search(self, queryset, name, value):
        # Both languages' names and acronyms (tracker/content_language.py).
        return queryset.filter(content_language.search_q(Organization, ("name", "acronym"), value))
