"""The lean route (tracker/api/lean.py) and the kept page statements (plans/api/
page_statements.py) answer exactly as the full stack: every variant of GET /api/v1/tasks/ and
/api/v1/users/me/ is requested with both off (the full stack, everything built), then twice
with both on (the statement kept, then run again), and the three answers compared: status,
headers (but Date), body and the number of queries."""

import contextlib
import datetime as dt
import json

import pytest
import time_machine
from django.conf import settings
from django.core.cache import cache
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from plans import services
from plans.api import page_statements
from plans.models import Task
from tests.factories import (
    OrganizationFactory,
    OutcomeFactory,
    PlanFactory,
    TaskFactory,
    UserFactory,
)
from tracker import tokens
from tracker.api import lean
from tracker.api.throttling import TokenRateThrottle, UserRateThrottle
from tracker.models import ApiToken, Membership
from tracker.services import api_token_create, api_token_revoke, system_user

pytestmark = pytest.mark.django_db

IGNORED_HEADERS = {"date"}


@pytest.fixture
def world():
    ministry = OrganizationFactory(kind="ministry", name="Ministry", acronym="MIN")
    firm = OrganizationFactory(name="Lead Co", acronym="LEAD")
    other = OrganizationFactory(name="Other Co", acronym="OTHR")
    plan = PlanFactory(coordinating=[ministry], members=[firm, other])
    coordinator = UserFactory(language="en")
    contributor = UserFactory(language="ko")
    for user, org, role in [
        (coordinator, ministry, "coordinator"),
        (contributor, firm, "contributor"),
    ]:
        services.membership_create(actor=system_user(), user=user, organization=org, role=role)
    outcome = OutcomeFactory()
    today = timezone.localdate()
    tasks = []
    for n, (status, priority, lead) in enumerate(
        [
            ("in_progress", "high", firm),
            ("in_progress", "critical", other),
            ("planned", "low", firm),
            ("at_risk", "normal", firm),
            ("in_progress", "normal", other),
            ("blocked", "high", firm),
            ("done", "low", firm),
        ]
    ):
        tasks.append(
            TaskFactory(
                plan=plan, lead_organization=lead, status=status, priority=priority,
                due_date=today + dt.timedelta(days=n - 3), title=f"Task number {n}",
                supporting_organizations=[other] if n % 2 else [],
                source_outcomes=[outcome] if n % 3 == 0 else [],
                parent=tasks[-1] if n in (2, 5) else None,
            )
        )  # fmt: skip
    Task.depends_on.through.objects.create(from_task=tasks[0], to_task=tasks[1])
    return type("World", (), locals())


def token_for(user, **kwargs):
    _, raw = api_token_create(actor=user, user=user, name="lean", **kwargs)
    ApiToken.objects.update(last_used_at=timezone.now())  # no stamp inside the comparison
    return raw


def _request(client, method, url, headers, secure=False):
    cache.clear()  # the same throttle counts (RateLimit headers) for every mode
    ApiToken.objects.update(last_used_at=timezone.now())  # and no stamp of a token's use
    with CaptureQueriesContext(connection) as queries:
        response = getattr(client, method)(url, headers=headers, secure=secure)
    kept = {
        name.lower(): value
        for name, value in response.headers.items()
        if name.lower() not in IGNORED_HEADERS
    }
    return response.status_code, kept, response.content, len(queries)


@contextlib.contextmanager
def switched(on: bool):
    """The lean route and the kept page statements both on or both off."""
    before = settings.API_LEAN_ROUTE, settings.API_TASK_PAGE_STATEMENTS
    settings.API_LEAN_ROUTE = settings.API_TASK_PAGE_STATEMENTS = on
    try:
        yield
    finally:
        settings.API_LEAN_ROUTE, settings.API_TASK_PAGE_STATEMENTS = before


def answers(client, url, headers=None, method="get", secure=False):
    """The full stack's answer, then the lean route's twice (kept statement, then run)."""
    headers = headers or {}
    with switched(False):
        full = _request(client, method, url, headers, secure)
    first = _request(client, method, url, headers, secure)
    second = _request(client, method, url, headers, secure)
    return full, first, second


def assert_same(client, url, headers=None, method="get", secure=False):
    full, first, second = answers(client, url, headers, method, secure)
    assert first == full, url
    assert second == full, url
    return full


LIST_URLS = [
    "/api/v1/tasks/",
    "/api/v1/tasks/?page_size=2",
    "/api/v1/tasks/?status=in_progress&ordering=due_date&page_size=50",
    "/api/v1/tasks/?status=in_progress&status=at_risk",
    "/api/v1/tasks/?ordering=-due_date",
    "/api/v1/tasks/?ordering=priority&page_size=3",
    "/api/v1/tasks/?ordering=-priority&page_size=3",
    "/api/v1/tasks/?ordering=updated_at",
    "/api/v1/tasks/?ordering=-ref",
    "/api/v1/tasks/?ordering=title",  # not an ordering field: ignored
    "/api/v1/tasks/?q=number",
    "/api/v1/tasks/?q=NUMBER%202",
    "/api/v1/tasks/?q=nothing-like-it",
    "/api/v1/tasks/?overdue=true",
    "/api/v1/tasks/?overdue=false&page_size=2",
    "/api/v1/tasks/?priority=high",
    "/api/v1/tasks/?due_after=2000-01-01&due_before=2100-01-01",
    "/api/v1/tasks/?updated_after=2000-01-01T00:00:00Z",
    "/api/v1/tasks/?organization=999999",
    "/api/v1/tasks/?unknown=1",
    # 400s: bad filters, page sizes and cursors
    "/api/v1/tasks/?status=nope",
    "/api/v1/tasks/?due_after=yesterday",
    "/api/v1/tasks/?overdue=maybe",
    "/api/v1/tasks/?plan=x",
    "/api/v1/tasks/?cursor=bm9wZQ",
    "/api/v1/tasks/?cursor=%%%",
    "/api/v1/tasks/?page_size=0",
    "/api/v1/tasks/?page_size=100000",
]


@pytest.mark.parametrize("who", ["coordinator", "contributor"])
def test_every_list_variant_answers_as_the_full_stack(world, who):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(getattr(world, who))}")
    for url in LIST_URLS:
        assert_same(client, url)
    # The plan's own filters, then every page through the cursors, forwards and back.
    assert_same(client, f"/api/v1/tasks/?plan={world.plan.pk}&lead_organization={world.firm.pk}")
    assert_same(client, f"/api/v1/tasks/?organization={world.other.pk}")
    for start in ("/api/v1/tasks/?page_size=2", "/api/v1/tasks/?page_size=2&ordering=-priority"):
        url, seen, pages = start, [], 0
        while url:
            status, _headers, body, _queries = assert_same(client, url)
            assert status == 200
            data = json.loads(body)
            seen += [row["id"] for row in data["results"]]
            if data["previous"]:
                assert_same(client, data["previous"].replace("http://testserver", ""))
            url = data["next"] and data["next"].replace("http://testserver", "")
            pages += 1
        assert pages >= 2 and len(seen) == len(set(seen))


@pytest.mark.parametrize("language", [None, "ko", "en", "ko-KR,ko;q=0.9", "fr"])
def test_languages_answer_as_the_full_stack(world, language):
    """The token's user speaks Korean; Accept-Language wins when sent (errors too)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(world.contributor)}")
    headers = {"Accept-Language": language} if language else {}
    for url in ("/api/v1/tasks/", "/api/v1/tasks/?status=nope", "/api/v1/users/me/"):
        status, answered, body, _ = assert_same(client, url, headers)
        assert "content-language" in answered
    cookie = APIClient()
    cookie.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(world.contributor)}")
    cookie.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert_same(cookie, "/api/v1/tasks/?status=nope", headers)


def test_refused_tokens_answer_as_the_full_stack(world):
    """401 for a revoked, expired, malformed or unknown token, or an inactive user."""
    revoked = token_for(world.coordinator)
    expired = token_for(world.coordinator, expires_at=timezone.now() + dt.timedelta(seconds=2))
    inactive_user = UserFactory()
    inactive = token_for(inactive_user)
    good = token_for(world.coordinator)
    client = APIClient()
    for header in (f"Bearer {good}", f"bearer {good}", f"BEARER  {good}"):
        client.credentials(HTTP_AUTHORIZATION=header)
        assert assert_same(client, "/api/v1/tasks/")[0] == 200
    # revoked between two requests: refused at once, lean or not
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {revoked}")
    assert assert_same(client, "/api/v1/tasks/?page_size=2")[0] == 200
    prefix, _secret = tokens.parse(revoked)
    api_token_revoke(actor=world.coordinator, token=ApiToken.objects.get(prefix=prefix))
    assert assert_same(client, "/api/v1/tasks/?page_size=2")[0] == 401
    inactive_user.is_active = False
    inactive_user.save()
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=1)):
        for header in (
            f"Bearer {expired}", f"Bearer {inactive}", "Bearer", "Bearer a b",
            "Bearer jpt_nope_nope", "Bearer " + good[:-1] + ("A" if good[-1] != "A" else "B"),
        ):  # fmt: skip
            client.credentials(HTTP_AUTHORIZATION=header)
            for url in ("/api/v1/tasks/", "/api/v1/users/me/"):
                status, headers, _body, _ = assert_same(client, url)
                assert status == 401, header
                assert headers["content-type"] == "application/problem+json"


def test_other_methods_paths_and_sessions_answer_as_the_full_stack(world):
    """Not lean, the same anyway: a write with a read-only token (403), a task that is not
    there (404), HEAD, a session with no token, a session and a token together."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(world.coordinator)}")
    assert assert_same(client, "/api/v1/tasks/", method="post")[0] == 403
    assert assert_same(client, "/api/v1/tasks/999999/")[0] == 404
    assert assert_same(client, "/api/v1/tasks/?page_size=2", method="head")[0] == 200
    assert assert_same(client, "/api/v1/users/me/", method="head")[0] == 200
    assert assert_same(client, "/api/v1/users/me/", method="options")[0] == 200
    session = APIClient()
    session.force_login(world.contributor)
    assert assert_same(session, "/api/v1/tasks/")[0] == 200
    session.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(world.coordinator)}")
    status, _headers, body, _ = assert_same(session, "/api/v1/users/me/")
    assert status == 200 and json.loads(body)["id"] == world.coordinator.pk


def test_security_headers_are_set_on_the_lean_route(world, monkeypatch):
    monkeypatch.setattr(settings, "SECURE_HSTS_SECONDS", 3600)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(world.coordinator)}")
    for url in ("/api/v1/tasks/", "/api/v1/users/me/"):
        status, headers, _body, _ = assert_same(client, url, secure=True)
        assert status == 200
        assert headers["strict-transport-security"].startswith("max-age=3600")
        for name in (
            "x-content-type-options", "x-frame-options", "referrer-policy",
            "cross-origin-opener-policy", "content-length", "ratelimit-limit",
            "ratelimit-remaining", "ratelimit-reset", "vary", "content-language",
        ):  # fmt: skip
            assert name in headers, (url, name)


def test_429_answers_as_the_full_stack(world, monkeypatch):
    rates = {"token": "3/minute", "user": "5/minute"}
    for throttle in (TokenRateThrottle, UserRateThrottle):
        monkeypatch.setattr(throttle, "THROTTLE_RATES", rates)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(world.contributor)}")
    for url in ("/api/v1/tasks/", "/api/v1/users/me/"):
        modes = []
        for on in (False, True):
            with switched(on):
                cache.clear()
                ApiToken.objects.update(last_used_at=timezone.now())
                modes.append([_request_kept_counts(client, url) for _ in range(4)])
        assert modes[0] == modes[1]
        assert [status for status, *_ in modes[1]] == [200, 200, 200, 429]


def _request_kept_counts(client, url):
    response = client.get(url)
    headers = {k.lower(): v for k, v in response.headers.items() if k.lower() != "date"}
    return response.status_code, headers, response.content


def test_the_lean_route_is_taken_only_by_bearer_gets_of_its_paths(rf):
    cases = [
        ("get", "/api/v1/tasks/", "Bearer x", True),
        ("head", "/api/v1/users/me/", "bearer x", True),
        ("get", "/api/v1/tasks/", "  Bearer\tx", True),
        ("get", "/api/v1/tasks/", "Bearer", True),
        ("get", "/api/v1/tasks/", "Token x", False),
        ("get", "/api/v1/tasks/", "", False),
        ("get", "/api/v1/tasks/", "Bearerx y", False),
        ("post", "/api/v1/tasks/", "Bearer x", False),
        ("options", "/api/v1/tasks/", "Bearer x", False),
        ("get", "/api/v1/tasks/1/", "Bearer x", False),
        ("get", "/api/v1/tasks", "Bearer x", False),
        ("get", "/api/v1/plans/", "Bearer x", False),
        ("get", "/api/v1/tasks/?format=api", "Bearer x", False),
        ("get", "/api/v1/tasks/?format=json", "Bearer x", False),
        ("get", "/api/v1/tasks/?status=planned", "Bearer x", True),
    ]
    for method, path, header, expected in cases:
        request = getattr(rf, method)(path, HTTP_AUTHORIZATION=header)
        assert lean.is_lean(request) is expected, (method, path, header)
    html = rf.get("/api/v1/tasks/", HTTP_AUTHORIZATION="Bearer x", HTTP_ACCEPT="text/html")
    assert not lean.is_lean(html)
    kept = lean.lean_middleware(settings.MIDDLEWARE)
    assert "django.middleware.locale.LocaleMiddleware" in kept
    assert "django.middleware.clickjacking.XFrameOptionsMiddleware" in kept
    assert "django.contrib.sessions.middleware.SessionMiddleware" not in kept
    assert "django.middleware.security.SecurityMiddleware" not in kept  # runs before it
    assert settings.MIDDLEWARE.index(lean.THIS) == 1  # right after SecurityMiddleware


def test_a_kept_statement_computes_overdue_at_each_requests_instant(world):
    """The statement is kept with its instant's slot: the same first page, asked again once
    a task's deadline has passed, says it is overdue."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(world.coordinator)}")
    task = world.tasks[0]
    deadline = timezone.now() + dt.timedelta(hours=1)
    Task.objects.filter(pk=task.pk).update(deadline_at=deadline)
    url = "/api/v1/tasks/?status=in_progress&page_size=50"

    def overdue():
        cache.clear()
        rows = client.get(url).json()["results"]
        return next(row["is_overdue"] for row in rows if row["id"] == task.pk)

    assert overdue() is False
    kept = connection._task_page_statements
    assert len(kept) >= 1
    with time_machine.travel(deadline + dt.timedelta(minutes=1)):
        assert overdue() is True
        with switched(False):
            assert overdue() is True


def test_a_kept_statement_is_only_the_statement(world):
    """Rows are read afresh: a new task, a membership gained, a task moved, all seen by the
    next request of the same page; the filters that read their own clock are not kept."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(world.contributor)}")
    url = "/api/v1/tasks/?page_size=50"

    def ids(query=url):
        cache.clear()
        return {row["id"] for row in client.get(query).json()["results"]}

    before = ids()
    # the same statement's shape, other ids: the contributor moves to the other firm
    membership = Membership.objects.get(user=world.contributor)
    Membership.objects.filter(pk=membership.pk).update(organization=world.other)
    moved = ids()
    with switched(False):
        assert moved == ids() != before
    Membership.objects.filter(pk=membership.pk).update(organization=world.firm)
    assert ids() == before
    new = TaskFactory(plan=world.plan, lead_organization=world.firm)
    assert ids() == before | {new.pk}
    services.membership_create(
        actor=system_user(), user=world.contributor, organization=world.other, role="viewer"
    )
    assert ids() > before | {new.pk}
    connection._task_page_statements.clear()
    ids("/api/v1/tasks/?overdue=true")
    ids("/api/v1/tasks/?updated_after=2000-01-01T00:00:00Z")
    ids("/api/v1/tasks/?cursor=" + "bz0x")  # a cursor page: never kept
    assert len(connection._task_page_statements) == 0
    ids(url)
    assert len(connection._task_page_statements) == 1


def test_kept_statements_are_bounded(world, monkeypatch):
    monkeypatch.setattr(page_statements, "MAX_ENTRIES", 3)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(world.coordinator)}")
    connections["default"].__dict__.pop("_task_page_statements", None)
    for size in range(1, 7):
        cache.clear()
        assert client.get(f"/api/v1/tasks/?page_size={size}").status_code == 200
    assert len(connection._task_page_statements) == 3
