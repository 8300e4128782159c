"""Cursor pagination: stable under inserts, no COUNT over the table, page size up to 200.

A cursor is opaque to clients but not to attackers: DRF decodes it leniently and hands its
position straight to the database as a value of the first ordering field, so `p=notadate` on
a list ordered by id was a server error. Here a cursor is checked against the list's own
ordering before any query, and anything we could not have written is a 400 naming `cursor`.
"""

import binascii
import datetime as dt
import re
from base64 import b64decode
from urllib import parse

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.pagination import Cursor as CursorPosition
from rest_framework.pagination import CursorPagination

from tracker.filtersets import SYNC_PARAMETER

INVALID_CURSOR = _("Invalid cursor: use the `next` or `previous` link of a page of this list.")
MAX_CURSOR_LENGTH = 1000
_INTEGER = re.compile(r"-?[0-9]{1,19}")
_OFFSET = re.compile(r"[0-9]{1,9}")
_KEYS = frozenset({"o", "r", "p"})
_BIGINT = 2**63


def _invalid():
    return serializers.ValidationError({"cursor": [INVALID_CURSOR]})


def _ordering_field(queryset, name: str):
    """The model field (or annotation's output field) a list is ordered by, or None."""
    annotation = queryset.query.annotations.get(name)
    if annotation is not None:
        return annotation.output_field
    model, field = queryset.model, None
    for part in name.split("__"):
        if model is None:
            return None
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None
        model = field.related_model
    if field is not None and field.is_relation:
        field = field.target_field
    if isinstance(field, models.GeneratedField):
        field = field.output_field
    return field


def _position_is_valid(field, position: str) -> bool:
    """Whether `position` is a value DRF could have written for `field` (str of a value)."""
    if any(ord(char) < 32 or ord(char) == 127 for char in position):
        return False  # no stored value of ours has one; PostgreSQL refuses NUL
    if field is None:
        return True
    if isinstance(field, models.IntegerField):
        return bool(_INTEGER.fullmatch(position)) and -_BIGINT <= int(position) < _BIGINT
    if isinstance(field, models.DateTimeField):
        try:
            value = dt.datetime.fromisoformat(position)
        except ValueError:
            return False
        # Stored instants come back in UTC; another offset was not written by us (and
        # PostgreSQL refuses some that Python accepts).
        return value.utcoffset() == dt.timedelta(0)
    if isinstance(field, models.DateField):
        try:
            dt.date.fromisoformat(position)
        except ValueError:
            return False
        return len(position) == 10
    try:
        field.to_python(position)
    except (ValidationError, ValueError, TypeError):
        return False
    return True


def sync_field(request, view) -> str | None:
    """The field the view's `updated_after` filter reads, when the request uses it."""
    if request is None or SYNC_PARAMETER not in request.query_params:
        return None
    filterset_class = getattr(view, "filterset_class", None)
    sync_filter = getattr(filterset_class, "base_filters", {}).get(SYNC_PARAMETER)
    return None if sync_filter is None else sync_filter.field_name


class Cursor(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = ("id",)

    def get_ordering(self, request, queryset, view):
        """With `updated_after` (incremental sync), by (its field, id) ascending whatever
        `ordering` says: a client pages from its high-water mark and misses no row changed
        in the same instant as the last one it holds (docs/decisions/0013)."""
        kept = getattr(queryset, "kept_ordering", None)
        if kept is not None:  # a page statement kept for this very request (plans.api)
            return kept
        field = sync_field(request, view)
        if field is not None:
            return (field, "id")
        return super().get_ordering(request, queryset, view)

    def paginate_queryset(self, queryset, request, view=None):
        self._queryset = queryset  # decode_cursor checks the position against its ordering
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        if len(encoded) > MAX_CURSOR_LENGTH:
            raise _invalid()
        try:
            querystring = b64decode(encoded.encode("ascii"), validate=True).decode("ascii")
            pairs = parse.parse_qsl(querystring, keep_blank_values=True, strict_parsing=True)
        except (UnicodeError, binascii.Error, ValueError):
            raise _invalid() from None
        tokens = dict(pairs)
        if len(tokens) != len(pairs) or not set(tokens) <= _KEYS:
            raise _invalid()  # a key twice, or one DRF never writes
        offset, reverse = tokens.get("o", "0"), tokens.get("r", "0")
        if not _OFFSET.fullmatch(offset) or int(offset) > self.offset_cutoff:
            raise _invalid()
        if reverse not in ("0", "1"):
            raise _invalid()
        position = tokens.get("p")
        if position is not None:
            name = self.ordering[0].lstrip("-")
            field = _ordering_field(self._queryset, name)
            if not _position_is_valid(field, position):
                raise _invalid()
        return CursorPosition(offset=int(offset), reverse=reverse == "1", position=position)
