"""The admin's date hierarchy without a DISTINCT over the rows in sight.

Django's `date_hierarchy` lists the years (months, days) that have rows with
`SELECT DISTINCT DATE_TRUNC(...)` over every row the viewer sees: at 100,000 tasks the
slowest part of the task list. `plain_date_hierarchy` shows the same links from the first to
the last date in sight (one MIN/MAX query, which Django's tag runs anyway): every year, month
or day between them, some of which may hold no row.
"""

import datetime as dt

from django import template
from django.contrib.admin.templatetags.admin_list import date_hierarchy
from django.contrib.admin.templatetags.base import InclusionAdminNode
from django.db import models

register = template.Library()


def _span(first: dt.date, last: dt.date, kind: str) -> list[dt.date]:
    if kind == "year":
        return [dt.date(year, 1, 1) for year in range(first.year, last.year + 1)]
    if kind == "month":
        months = range(first.year * 12 + first.month - 1, last.year * 12 + last.month)
        return [dt.date(n // 12, n % 12 + 1, 1) for n in months]
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


class _Calendar:
    """Stands in for the change list's queryset in Django's tag: `aggregate` passes through,
    `dates` answers from the first and last date in sight."""

    def __init__(self, queryset):
        self.queryset = queryset
        self.bounds = {}

    def _bounds(self, field_name):
        if field_name not in self.bounds:
            self.bounds[field_name] = self.queryset.aggregate(
                first=models.Min(field_name), last=models.Max(field_name)
            )
        return self.bounds[field_name]

    def aggregate(self, first, last):
        # Django's tag asks for exactly these two: Min and Max of the hierarchy's field.
        return self._bounds(first.source_expressions[0].name)

    def dates(self, field_name, kind, order="ASC"):
        bounds = self._bounds(field_name)
        if bounds["first"] is None:
            return []
        first, last = bounds["first"], bounds["last"]
        if isinstance(first, dt.datetime):
            first, last = first.date(), last.date()
        return _span(first, last, kind)


class _PlainChangeList:
    def __init__(self, cl):
        self._cl = cl
        self.queryset = _Calendar(cl.queryset)

    def __getattr__(self, name):
        return getattr(self._cl, name)


def plain_date_hierarchy(cl):
    return date_hierarchy(_PlainChangeList(cl))


@register.tag(name="plain_date_hierarchy")
def plain_date_hierarchy_tag(parser, token):
    return InclusionAdminNode(
        parser, token, func=plain_date_hierarchy, template_name="date_hierarchy.html",
        takes_context=False,
    )  # fmt: skip
