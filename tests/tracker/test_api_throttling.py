"""Rate limits per token and per user, answered as 429 problem documents."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.factories import UserFactory
from tracker.api.throttling import LoginRateThrottle, TokenRateThrottle, UserRateThrottle
from tracker.services import api_token_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def low_rates(monkeypatch):
    cache.clear()
    rates = {"token": "2/minute", "user": "4/minute", "login": "2/minute"}
    for throttle in (TokenRateThrottle, UserRateThrottle, LoginRateThrottle):
        monkeypatch.setattr(throttle, "THROTTLE_RATES", rates)
    yield
    cache.clear()


def client_with_token(user):
    _, token = api_token_create(actor=user, user=user, name="t")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_each_token_has_its_own_budget_and_the_user_a_shared_one():
    user = UserFactory()
    first, second = client_with_token(user), client_with_token(user)
    assert [first.get("/api/v1/users/me/").status_code for _ in range(2)] == [200, 200]
    limited = first.get("/api/v1/users/me/")
    assert limited.status_code == 429
    assert limited["Content-Type"] == "application/problem+json"
    assert int(limited["Retry-After"]) > 0
    # another token of the same user still has its own budget, until the user's runs out
    assert second.get("/api/v1/users/me/").status_code == 200
    assert second.get("/api/v1/users/me/").status_code == 429


def test_password_logins_are_limited_per_address():
    user = UserFactory()
    client = APIClient()
    codes = [
        client.post(
            "/api/v1/auth/token/", {"username": user.username, "password": "wrong"}
        ).status_code
        for _ in range(3)
    ]
    assert codes == [401, 401, 429]


def test_login_throttle_ignores_forwarded_for_without_trusted_proxies(settings):
    """The probe: a new X-Forwarded-For per attempt used to be a new address each time."""
    settings.TRUSTED_PROXIES = []
    client = APIClient()
    codes = [
        client.post(
            "/api/v1/auth/token/",
            {"username": "nobody", "password": "wrong"},
            HTTP_X_FORWARDED_FOR=f"198.51.100.{i}",
        ).status_code
        for i in range(3)
    ]
    assert codes == [401, 401, 429]


def test_login_throttle_counts_the_client_behind_a_trusted_proxy(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]  # the test client's address is the proxy's

    def attempt(forwarded_for):
        return APIClient().post(
            "/api/v1/auth/token/",
            {"username": "nobody", "password": "wrong"},
            HTTP_X_FORWARDED_FOR=forwarded_for,
        )

    assert [attempt("203.0.113.1").status_code for _ in range(3)] == [401, 401, 429]
    # what the client writes left of the proxy's entry changes nothing
    assert attempt("192.0.2.99, 203.0.113.1").status_code == 429
    # another client behind the same proxy has its own budget
    assert attempt("203.0.113.2").status_code == 401


def test_redis_unreachable_is_a_503_problem_not_a_500(settings):
    """The throttles' counters live in Redis: with Redis down (here: nothing listens on the
    port, so the connection is refused for real) the API answers 503 with Retry-After."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nothing listens
    user = UserFactory()
    client = client_with_token(user)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    answer = client.get("/api/v1/users/me/")
    assert answer.status_code == 503, answer.content
    assert answer["Content-Type"] == "application/problem+json"
    assert answer["Retry-After"] == "10"
    assert answer.json()["title"] == "Service unavailable"
