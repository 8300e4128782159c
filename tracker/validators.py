"""Validators shared by the identity and plan models."""

import datetime as dt
import functools
import unicodedata
import zoneinfo
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

UNKNOWN_TIME_ZONE = _(
    "'%(value)s' is not a known IANA time zone (e.g. Asia/Seoul, America/New_York)."
)


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


# --- Input rules shared by models, forms, the API and the services -------------------------

# Every date the system stores or filters on lies in these years. Far enough for any plan,
# forum or pledge; near enough that adding a day (the end of a due date) or a time zone's
# offset never leaves the range Python and the database can represent.
MIN_YEAR = 1900
MAX_YEAR = 2200
DATE_OUT_OF_RANGE = format_lazy(
    _("Enter a date from the year {min_year} to {max_year}."), min_year=MIN_YEAR, max_year=MAX_YEAR
)

CONTROL_CHARACTERS = _(
    "Enter text without control characters (line breaks, tabs and other invisible codes)."
)
CONTROL_CHARACTERS_IN_TEXT = _(
    "Enter text without control characters (line breaks and tabs are allowed)."
)
URL_WITH_CREDENTIALS = _("Enter a link without a user name or password in it.")
URL_SCHEME = _("Enter a web link (http:// or https://).")

# Kept in free text (descriptions, notes): a line break, a carriage return and a tab.
_TEXT_WHITESPACE = frozenset("\t\n\r")


def _is_control(char: str) -> bool:
    # Cc: C0 controls, DEL and C1 controls; Zl/Zp: U+2028/U+2029, which mail headers and
    # splitlines() treat as line breaks.
    return unicodedata.category(char) in ("Cc", "Zl", "Zp")


def validate_single_line(value: str) -> None:
    """Refs, codes, names and titles: one line of visible text (they end up in mail subjects,
    file names and calendar entries)."""
    if isinstance(value, str) and any(_is_control(char) for char in value):
        raise ValidationError(CONTROL_CHARACTERS, code="control_characters")


def validate_text(value: str) -> None:
    """Free text (descriptions, notes): line breaks and tabs allowed, other controls not."""
    if isinstance(value, str) and any(
        _is_control(char) and char not in _TEXT_WHITESPACE for char in value
    ):
        raise ValidationError(CONTROL_CHARACTERS_IN_TEXT, code="control_characters")


def date_in_range(value: dt.date) -> bool:
    return MIN_YEAR <= value.year <= MAX_YEAR


def validate_date_in_range(value) -> None:
    """A date (or datetime) between MIN_YEAR and MAX_YEAR; None and non-dates pass."""
    if isinstance(value, dt.date) and not date_in_range(value):
        raise ValidationError(DATE_OUT_OF_RANGE, code="date_out_of_range")


def validate_web_url(value: str) -> None:
    """An http(s) link with no user name or password: links are shown to everyone who can
    see the row, and a credential in one is a leaked secret."""
    if not value:
        return
    try:
        URLValidator(schemes=["http", "https"])(value)
        netloc = urlsplit(value).netloc
    except (ValidationError, ValueError):
        raise ValidationError(URL_SCHEME, code="invalid_url") from None
    if "@" in netloc:
        raise ValidationError(URL_WITH_CREDENTIALS, code="url_credentials")
