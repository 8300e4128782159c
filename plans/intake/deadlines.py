"""Deadline phrases ("by 2027", "within the year", "the latter half of 2024", "(2025-2027)",
"by the end of Q3", "this May", "next year", "2027년까지", "연내", "하반기") resolved against the
date a text was published.

A phrase names a period; the suggested deadline is the period's last day. Relative phrases
("this year", "next year", "by the end of Q3", "this May") count from the publication date:
"next year" in a text of 31 December 2024 is 2025, in one of 1 January 2025 it is 2026; a
quarter or month without a year that has already ended when the text appeared is the next
year's ("by the end of Q3" written in November 2024 is 30 September 2025), except "this May",
which is always the publication year's May.
"""

import calendar
import datetime as dt
import re
from dataclasses import dataclass

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            (),
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for name in names
}
MONTH = r"(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
YEAR = r"(?P<year>(?:19|20)\d{2})"
DASH = r"\s*[-‐‑–—~〜?]\s*"  # "?" too: an en dash that lost its encoding on the way
ORDINAL_QUARTER = {"first": 1, "second": 2, "third": 3, "fourth": 4, "1st": 1, "2nd": 2,
                   "3rd": 3, "4th": 4}  # fmt: skip


@dataclass(frozen=True)
class Deadline:
    due: dt.date
    phrase: str
    start: int  # offsets of the phrase in the text searched
    end: int
    rank: int  # lower is a stronger signal ("by ..." beats a period named in a title)


def _last_day(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _year_of(match, published: dt.date) -> int:
    year = match.groupdict().get("year")
    if year:
        return int(year)
    relative = (match.groupdict().get("rel") or "").lower()
    if relative in ("next", "내년", "내년도"):
        return published.year + 1
    return published.year


def _quarter_end(year: int, quarter: int) -> dt.date:
    return _last_day(year, quarter * 3)


def _upcoming(published: dt.date, month: int, explicit_year: bool, year: int) -> int:
    """The year of a month (or a quarter's last month) named without a year: the next one that
    has not ended when the text appeared."""
    if explicit_year:
        return year
    return year if month >= published.month else year + 1


# Each rule: (rank, pattern, resolver(match, published) -> date). Patterns are searched
# case-insensitively; the first (lowest rank, then earliest in the text) match wins.
def _rules():
    rel = r"(?P<rel>this|next|the|the current|the coming|current|coming)"
    rules = [
        # within the year / within this year / by the end of the year / by year-end / 연내
        (
            0,
            r"\b(?:within|by the end of|before the end of|by the close of|until the end of)\s+"
            r"(?:(?P<rel>this|the|next|the current)\s+)?year\b|\bby\s+(?:the\s+)?year[-\s]end\b"
            r"|\bby\s+(?P<rel2>this|next)\s+year\b|\blater this year\b",
            lambda m, p: dt.date(
                p.year + (1 if "next" in m.group(0).lower() else 0), 12, 31
            ),
        ),
        # by the end of Q3 (2025) / by the end of the third quarter
        (
            0,
            r"\b(?:by|before|until|in|during)\s+(?:the\s+)?(?:end of\s+(?:the\s+)?)?"
            r"(?:Q(?P<q>[1-4])|(?P<qword>first|second|third|fourth|1st|2nd|3rd|4th)\s+quarter)"
            r"(?:\s+(?:of\s+)?" + YEAR + r")?\b",
            lambda m, p: _quarter_end(
                _upcoming(p, _q(m) * 3, bool(m.group("year")), _year_of(m, p)), _q(m)
            ),
        ),
        # by (the end of) 2027 / until 2027 / no later than 2027
        (
            0,
            r"\b(?:by|until|through|before|no later than)\s+(?:the\s+end\s+of\s+)?"
            + YEAR
            + r"\b(?![-‐‑–—~?]\d)",
            lambda m, p: dt.date(int(m.group("year")), 12, 31),
        ),
        # by (the end of) May (2025) / this May / next May / in May 2025
        (
            1,
            r"\b(?:(?:by|until|before|in|during)\s+(?:the\s+end\s+of\s+)?)?"
            r"(?:(?P<rel>this|next)\s+)?" + MONTH + r"(?:\s+" + YEAR + r")?\b",
            _month,
        ),
        # in the second half of 2024 / the latter half of this year / H2 2024
        (
            1,
            r"\b(?:(?:in|during|by the end of|from)\s+)?(?:the\s+)?"
            r"(?P<half>first|second|latter|former|1st|2nd)\s+half\s+of\s+"
            r"(?:" + YEAR + r"|" + rel + r"\s+year)\b|\bH(?P<h>[12])\s+" + YEAR.replace(
                "year", "hyear"
            ),
            _half,
        ),
        # next year / this year
        (
            2,
            r"\b(?P<rel>next|this)\s+year\b",
            lambda m, p: dt.date(_year_of(m, p), 12, 31),
        ),
        # (2025-2027), 2025~2027: a period's last year
        (
            3,
            r"\b(?:19|20)\d{2}" + DASH + r"(?P<last>(?:19|20)\d{2})\b",
            lambda m, p: dt.date(int(m.group("last")), 12, 31),
        ),
        # Korean: 2027년까지, 2025년 말까지, 연내, 올해 안에, 내년, (2024년|올해) 하반기,
        # 3분기, 5월까지
        (0, r"(?P<year>(?:19|20)\d{2})\s*년\s*(?:말|연말)?\s*까지", lambda m, p: dt.date(
            int(m.group("year")), 12, 31)),
        (0, r"연내|올해\s*(?:안|중|말까지|내)", lambda m, p: dt.date(p.year, 12, 31)),
        (
            1,
            r"(?:(?P<year>(?:19|20)\d{2})\s*년|(?P<rel>올|올해|내년|금년))?\s*(?P<half>상|하)반기",
            _korean_half,
        ),
        (
            1,
            r"(?:(?P<year>(?:19|20)\d{2})\s*년\s*|(?P<rel>올해|내년)\s*)?(?P<q>[1-4])\s*분기",
            lambda m, p: _quarter_end(
                _upcoming(p, int(m.group("q")) * 3, bool(m.group("year") or m.group("rel")),
                          _year_of(m, p)), int(m.group("q"))),
        ),
        (
            1,
            r"(?:(?P<year>(?:19|20)\d{2})\s*년\s*|(?P<rel>올해|내년|이번)\s*)?"
            r"(?P<kmonth>1[0-2]|[1-9])\s*월\s*(?:말)?\s*까지",
            lambda m, p: _last_day(
                _upcoming(p, int(m.group("kmonth")), bool(m.group("year") or m.group("rel")),
                          _year_of(m, p)), int(m.group("kmonth"))),
        ),
        (2, r"(?P<rel>내년)(?:도)?", lambda m, p: dt.date(p.year + 1, 12, 31)),
    ]  # fmt: skip
    return [(rank, re.compile(pattern, re.IGNORECASE), resolve) for rank, pattern, resolve in rules]


def _q(match) -> int:
    if match.group("q"):
        return int(match.group("q"))
    return ORDINAL_QUARTER[match.group("qword").lower()]


def _month(match, published: dt.date) -> dt.date | None:
    text = match.group(0).lower()
    month = MONTHS[match.group("month").lower()]
    relative = (match.group("rel") or "").lower()
    has_year = bool(match.group("year"))
    leading = text.split()[0]
    # A bare month name ("May") only counts after "by/in/this/next" or with a year: "may" is
    # also a verb.
    if not has_year and not relative and leading not in ("by", "until", "before", "in", "during"):
        return None
    if has_year:
        year = int(match.group("year"))
    elif relative == "this":
        year = published.year
    elif relative == "next":
        year = published.year + (1 if month <= published.month else 0)
    else:
        year = _upcoming(published, month, False, published.year)
    return _last_day(year, month)


def _half(match, published: dt.date) -> dt.date:
    groups = match.groupdict()
    if groups.get("h"):
        return dt.date(int(groups["hyear"]), 6 if groups["h"] == "1" else 12,
                       30 if groups["h"] == "1" else 31)  # fmt: skip
    year = int(groups["year"]) if groups.get("year") else (
        published.year + (1 if (groups.get("rel") or "").lower() in ("next", "the coming",
                                                                       "coming") else 0)
    )  # fmt: skip
    first = groups["half"].lower() in ("first", "former", "1st")
    return dt.date(year, 6, 30) if first else dt.date(year, 12, 31)


def _korean_half(match, published: dt.date) -> dt.date:
    year = _year_of(match, published)
    return dt.date(year, 6, 30) if match.group("half") == "상" else dt.date(year, 12, 31)


RULES = _rules()


def find_deadline(text: str, published: dt.date, not_before: bool = False) -> Deadline | None:
    """The strongest deadline phrase in `text` (a sentence), resolved against `published`;
    `not_before`: only deadlines on or after it ("held this May" in June is no deadline)."""
    found = []
    for rank, pattern, resolve in RULES:
        for match in pattern.finditer(text):
            try:
                due = resolve(match, published)
            except (KeyError, ValueError, IndexError):
                due = None
            if due is None or (not_before and due < published):
                continue
            phrase = match.group(0).strip()
            found.append(Deadline(due, phrase, match.start(), match.end(), rank))
    if not found:
        return None
    return min(found, key=lambda d: (d.rank, d.start))


def resolve(phrase: str, published: dt.date) -> dt.date | None:
    """The deadline one phrase names (a convenience for tests and the API)."""
    deadline = find_deadline(phrase, published)
    return deadline.due if deadline else None
