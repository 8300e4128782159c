"""RateLimit-Limit, -Remaining and -Reset (IETF draft) on the API's answers, from the counters
the throttles bump (real Redis when REDIS_URL is set), and Retry-After on 429."""

import pytest
import yaml
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.factories import UserFactory
from tracker.api.throttling import LoginRateThrottle, TokenRateThrottle, UserRateThrottle
from tracker.services import api_token_create

pytestmark = pytest.mark.django_db

HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


@pytest.fixture(autouse=True)
def low_rates(monkeypatch):
    cache.clear()
    rates = {"token": "3/minute", "user": "5/minute", "login": "2/minute"}
    for throttle in (TokenRateThrottle, UserRateThrottle, LoginRateThrottle):
        monkeypatch.setattr(throttle, "THROTTLE_RATES", rates)
    yield
    cache.clear()


def client_with_token(user, scope="read"):
    _, token = api_token_create(actor=user, user=user, name="t", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def limits(response):
    return tuple(int(response[name]) for name in HEADERS)


def test_headers_count_down_to_a_429_with_retry_after():
    client = client_with_token(UserFactory())
    answers = [client.get("/api/v1/users/me/") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    # The token's budget (3) is the tightest: the user's (5) has more left.
    assert [limits(a)[:2] for a in answers] == [(3, 2), (3, 1), (3, 0), (3, 0)]
    for answer in answers:
        assert 0 < limits(answer)[2] <= 60
    refused = answers[-1]
    assert refused["Content-Type"] == "application/problem+json"
    assert int(refused["Retry-After"]) == limits(refused)[2]


def test_the_users_budget_shows_when_it_is_the_tighter():
    user = UserFactory()
    first, second = client_with_token(user), client_with_token(user)
    for _ in range(3):
        first.get("/api/v1/users/me/")
    # The second token has 2 left of its own 3; the user 1 left of 5 (four counted).
    answer = second.get("/api/v1/users/me/")
    assert answer.status_code == 200
    assert limits(answer)[:2] == (5, 1)


def test_errors_carry_them_and_count():
    client = client_with_token(UserFactory())
    missing = client.get("/api/v1/tasks/999999/")
    assert missing.status_code == 404
    assert limits(missing)[:2] == (3, 2)
    invalid = client.get("/api/v1/tasks/?plan=notanid")
    assert invalid.status_code == 400
    assert limits(invalid)[:2] == (3, 1)


def test_a_read_only_tokens_refused_write_counts_and_carries_them():
    client = client_with_token(UserFactory(), scope="read")
    refused = client.patch("/api/v1/users/me/", {"first_name": "X"}, format="json")
    assert refused.status_code == 403
    assert limits(refused)[:2] == (3, 2)
    client.get("/api/v1/users/me/")
    client.get("/api/v1/users/me/")
    assert client.patch("/api/v1/users/me/", {"first_name": "X"}).status_code == 429


def test_no_counter_no_headers_for_a_bad_token():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer jpt_nope_nope")
    answer = client.get("/api/v1/users/me/")
    assert answer.status_code == 401
    assert not any(name in answer for name in HEADERS)


def test_password_logins_carry_the_per_address_limit():
    client = APIClient()
    answers = [
        client.post("/api/v1/auth/token/", {"username": "nobody", "password": "wrong"})
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [401, 401, 429]
    assert [limits(a)[:2] for a in answers] == [(2, 1), (2, 0), (2, 0)]
    assert int(answers[-1]["Retry-After"]) > 0


def test_the_schema_documents_them(tmp_path):
    path = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(path))
    schema = yaml.safe_load(path.read_text())
    assert set(HEADERS) | {"Retry-After"} <= set(schema["components"]["headers"])
    operation = schema["paths"]["/api/v1/tasks/"]["get"]
    assert set(HEADERS) <= set(operation["responses"]["200"]["headers"])
    assert "Retry-After" in operation["responses"]["429"]["headers"]
    assert "headers" not in operation["responses"]["401"]
