"""Validators shared by the identity and plan models."""

import functools
import zoneinfo

from django.core.exceptions import ValidationError

UNKNOWN_TIME_ZONE = "'%(value)s' is not a known IANA time zone (e.g. Asia/Seoul, America/New_York)."


# Names in the tz database that are not places: "localtime" means the machine's own zone
# (the web server's in Python, the database server's in SQL), "Factory" a placeholder.
NOT_PLACES = frozenset({"localtime", "Factory", "posixrules"})


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - NOT_PLACES


def validate_time_zone(value: str) -> None:
    if value not in _time_zones():
        raise ValidationError(UNKNOWN_TIME_ZONE, code="invalid_time_zone", params={"value": value})


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(_time_zones())]
