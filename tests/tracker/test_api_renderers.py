"""The orjson renderer writes the same bytes as DRF's JSONRenderer for the API's data, and
falls back to DRF's for what orjson cannot write."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from rest_framework.renderers import JSONRenderer

from tracker.api.renderers import OrjsonRenderer

SEOUL = dt.timezone(dt.timedelta(hours=9))

SAMPLES = [
    {"id": 1, "title": "Korea–US 반도체 협력", "ok": True, "none": None, "ratio": 0.25},
    {"at": dt.datetime(2026, 3, 8, 7, 0, 0, 123456, tzinfo=dt.UTC), "day": dt.date(2026, 3, 8)},
    {"local": dt.datetime(2026, 11, 1, 9, 30, tzinfo=SEOUL), "time": dt.time(9, 0)},
    {"amount": Decimal("150.50"), "uuid": uuid.UUID(int=7), "span": dt.timedelta(hours=1)},
    {"separators": "line\u2028paragraph\u2029end", "nested": [{"a": [1, 2, {"b": "c"}]}]},
    {"big": 2**70},  # beyond 64 bits: DRF's renderer
    [],
    "plain string",
]


@pytest.mark.parametrize("data", SAMPLES)
def test_same_bytes_as_drf(data):
    assert OrjsonRenderer().render(data) == JSONRenderer().render(data)


def test_indented_output_is_drfs():
    context = {"indent": 2}
    data = {"a": [1, 2]}
    assert OrjsonRenderer().render(data, "application/json", context) == (
        JSONRenderer().render(data, "application/json", context)
    )


def test_nothing_renders_as_empty():
    assert OrjsonRenderer().render(None) == b""
