"""Serializer fields shared by every app's API."""

import re

from rest_framework import serializers

from tracker.filtersets import MAX_ID

_DIGITS = re.compile(r"[0-9]{1,19}")


class IdRelatedField(serializers.PrimaryKeyRelatedField):
    """A related object by its integer id: `12` or `"12"`, never `1.5`, `1e3` or `true`.

    DRF's field hands the value to `queryset.get(pk=...)`, and Django's integer field
    coerces it: 1.5 would pick object 1. Here anything but a whole number that fits a
    bigint is a 400 naming the field.
    """

    default_error_messages = {
        "incorrect_type": "Incorrect type. Expected an integer id, received {data_type}.",
    }

    def to_internal_value(self, data):
        if isinstance(data, str) and _DIGITS.fullmatch(data):
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if not 1 <= data <= MAX_ID:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(data)
