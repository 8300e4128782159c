"""Cursors: any `?cursor=` the API did not write is a 400 naming `cursor` on every list and
ordering (it was a server error on lists ordered by an integer); the ones it writes work."""

import base64
import datetime as dt
import random
from urllib.parse import quote

import pytest
from rest_framework.test import APIClient

from plans import services
from tests.factories import TaskFactory, UserFactory
from tests.permission_matrix import build_world
from tracker.api.pagination import INVALID_CURSOR

pytestmark = pytest.mark.django_db


def cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# Lists by the type of their first ordering key.
INTEGER_ORDERED = [
    "organizations/",
    "tokens/",
    "plans/",
    "workstreams/",
    "forums/",
    "outcomes/",
    "webhooks/",
    "tasks/?ordering=id",
    "tasks/?ordering=-id",
    "tasks/?ordering=priority",
    "tasks/?ordering=-priority",
]
DATE_ORDERED = ["tasks/", "tasks/?ordering=due_date", "tasks/?ordering=-due_date"]
INSTANT_ORDERED = [
    "status-updates/",
    "notifications/",
    "tasks/?ordering=updated_at",
    "tasks/?ordering=-updated_at",
    # Incremental sync orders by (updated_at, id) whatever `ordering` says.
    "tasks/?updated_after=2020-01-01T00:00:00Z&ordering=ref",
    "forums/?updated_after=2020-01-01T00:00:00Z",
    "organizations/?updated_after=2020-01-01T00:00:00Z",
]
TEXT_ORDERED = ["tasks/?ordering=ref", "tasks/?ordering=-ref"]

# Refused whatever the ordering.
ANY_LIST = [
    "!!!notbase64",
    "cD0x=extra",
    "%C3%A9",
    cursor("p=1&x=1"),
    cursor("p=1&p=2"),
    cursor("o=-1"),
    cursor("o=1e3"),
    cursor("o=99999999"),
    cursor("r=2"),
    cursor("r=true"),
    cursor("p=\x00"),
    cursor("p=a\nb"),
    cursor("nokey"),
    "A" * 2000,
]
BAD_INTEGERS = ["notadate", "abc", "1.5", "1e3", "99999999999999999999", "", "2026-01-01"]
BAD_DATES = ["notadate", "12", "2026-13-01", "20260101", "2026-01-01 00:00:00+00:00", ""]
BAD_INSTANTS = [
    "notadate",
    "12",
    "2026-01-01",
    "2026-01-01 00:00:00",  # no offset: we always write one
    "2026-01-01 00:00:00-20:01",  # Python takes it, PostgreSQL does not
    "9999-12-31 23:59:59-23:59",
    "",
]


def tampered():
    for path in INTEGER_ORDERED + DATE_ORDERED + INSTANT_ORDERED + TEXT_ORDERED:
        for value in ANY_LIST:
            yield path, value
    for paths, positions in [
        (INTEGER_ORDERED, BAD_INTEGERS),
        (DATE_ORDERED, BAD_DATES),
        (INSTANT_ORDERED, BAD_INSTANTS),
    ]:
        for path in paths:
            for position in positions:
                yield path, cursor(f"p={position}")


def with_cursor(path: str, value: str) -> str:
    return f"/api/v1/{path}{'&' if '?' in path else '?'}cursor={value}"


def test_every_tampered_cursor_on_every_list_is_a_400_naming_cursor():
    client = APIClient()
    client.force_authenticate(UserFactory())
    cases = list(tampered())
    assert len(cases) > 250
    for path, value in cases:
        response = client.get(with_cursor(path, value))
        assert response.status_code == 400, (path, value, response.status_code)
        assert response.json()["errors"] == [{"field": "cursor", "message": INVALID_CURSOR}]


def test_the_cursors_the_api_writes_walk_every_ordering_forwards_and_back():
    world = build_world()
    coordinator = world.user("coordinator")
    for n, (due, priority) in enumerate(
        [(dt.date(2029, 1, 1), "high"), (dt.date(2031, 5, 5), "low")]
    ):
        TaskFactory(plan=world.plan_a, lead_organization=world.lead, ref=f"CU-{n}",
                    due_date=due, priority=priority)  # fmt: skip
    services.status_update_add(actor=coordinator, task=world.task, note="second")
    client = APIClient()
    client.force_authenticate(coordinator)
    for path in [p for p in INTEGER_ORDERED + DATE_ORDERED + INSTANT_ORDERED + TEXT_ORDERED]:
        url = f"/api/v1/{path}{'&' if '?' in path else '?'}page_size=1"
        seen, pages = [], 0
        while url:
            page = client.get(url)
            assert page.status_code == 200, (path, page.content)
            body = page.json()
            seen += [row["id"] for row in body["results"]]
            url, pages = body["next"], pages + 1
            assert pages < 20
        assert len(seen) == len(set(seen)), path
        whole = client.get(f"/api/v1/{path}").json()["results"]
        assert seen == [row["id"] for row in whole], path
        if pages > 1:  # and back from the last page
            last = client.get(body["previous"]) if body["previous"] else None
            assert last is not None and last.status_code == 200, path


def test_random_cursors_are_a_page_or_a_400_never_a_server_error():
    """A seeded fuzz: random keys and values, some valid for one ordering and not another."""
    rng = random.Random(9)
    values = ["", "0", "1", "-1", "7", "2**63", str(2**63), str(-(2**63)), "1.5", "abc", "\x00",
              "2026-01-01", "2026-01-01 00:00:00+00:00", "2026-01-01T00:00:00Z", "%00", "'",
              "2026-02-30", "0001-01-01 00:00:00+00:00", "9999-12-31", "\u2028", "é", "None",
              "true", " 1", "1 "]  # fmt: skip
    client = APIClient()
    client.force_authenticate(UserFactory())
    paths = INTEGER_ORDERED + DATE_ORDERED + INSTANT_ORDERED + TEXT_ORDERED
    for _ in range(300):
        pairs = [
            (rng.choice("oprx"), rng.choice(values + [str(rng.randint(-5, 10**6))]))
            for _ in range(rng.randint(0, 3))
        ]
        raw = "&".join(f"{key}={value}" for key, value in pairs).encode()
        if rng.random() < 0.2:
            raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 12)))
        value = quote(base64.b64encode(raw).decode())
        response = client.get(with_cursor(rng.choice(paths), value))
        assert response.status_code in (200, 400), (raw, response.status_code)
