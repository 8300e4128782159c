"""The admin's audit history (django-simple-history) in words: field names and choice labels
in the reader's language, related rows by name, "—" for nothing, and the reason recorded with
a change (a deadline's new date, a transition's note) shown beside it."""

import datetime as dt

from django.db import models
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper

EMPTY = "—"
DELETED = _("deleted %(kind)s (#%(pk)s)")
YES, NO = _("Yes"), _("No")


def value_words(field, value) -> str:
    """A stored value as a person reads it."""
    if isinstance(value, DeletedObject):
        if value.pk is None:
            return EMPTY
        return str(DELETED % {"kind": value.model._meta.verbose_name, "pk": value.pk})
    if isinstance(value, list):  # many-to-many: the related rows (prepared below)
        return ", ".join(value_words(None, item) for item in value) or EMPTY
    if value is None or value == "":
        return EMPTY
    if field is not None and field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, bool):
        return str(YES if value else NO)
    if isinstance(value, dt.datetime):
        return date_format(value, "Y-m-d H:i")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


class LabelledHistoryHelper(HistoricalRecordContextHelper):
    def prepare_delta_change_value(self, change, value):
        field = self.model._meta.get_field(change.field)
        value = super().prepare_delta_change_value(change, value)
        if isinstance(field, models.ManyToManyField):
            return value_words(None, list(value))
        return value_words(field, value)


class LabelledHistoryMixin:
    """For SimpleHistoryAdmin subclasses: the history page in labels and names."""

    object_history_list_template = "admin/plans/object_history_list.html"

    def get_historical_record_context_helper(self, request, historical_record):
        return LabelledHistoryHelper(self.model, historical_record)
