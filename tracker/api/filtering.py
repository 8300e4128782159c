"""django-filter for the hot lists, with only the filters a request names.

DjangoFilterBackend deep-copies every declared filter, then builds, deep-copies and cleans a
form field for each, on every request, though a filter whose parameter is absent changes
nothing (django-filter returns the queryset untouched for an empty value). Here the FilterSet
a request gets holds only the filters whose parameters it names (`status`, or `due_after`
and range-style suffixes such as `due_date_after`): the same rows and the same 400s naming
the field, at the cost of the parameters actually given. The narrowed FilterSet classes are
built once per combination of names and kept.
"""

from functools import lru_cache

from django_filters.rest_framework import DjangoFilterBackend


def _names(filter_name: str, param: str) -> bool:
    """Whether query parameter `param` may feed the filter `filter_name` (its own name, or a
    multi-widget's suffixed names such as `<name>_after`, `<name>_min`, `<name>_0`)."""
    return param == filter_name or param.startswith(f"{filter_name}_")


def narrowed(filterset_class, params):
    """`filterset_class` holding only the filters the query parameter names `params` may
    feed (itself when all)."""
    kept = frozenset(
        name
        for name in filterset_class.base_filters
        if any(_names(name, param) for param in params)
    )
    if len(kept) == len(filterset_class.base_filters):
        return filterset_class
    return _narrowed(filterset_class, kept)


@lru_cache(maxsize=256)
def _narrowed(filterset_class, kept: frozenset):
    # A plain subclass re-runs the metaclass (which would declare every filter again): set
    # its filters afterwards.
    subclass = type(filterset_class.__name__, (filterset_class,), {"__module__": __name__})
    subclass.base_filters = {
        name: spec for name, spec in filterset_class.base_filters.items() if name in kept
    }
    return subclass


class NamedFiltersBackend(DjangoFilterBackend):
    """DjangoFilterBackend (same schema, same errors) running only the filters a request
    names. The schema still lists every filter (`get_filterset_class` is untouched)."""

    def get_filterset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None:
            return None
        kwargs = self.get_filterset_kwargs(request, queryset, view)
        return narrowed(filterset_class, request.query_params)(**kwargs)
