"""Login attempts limited per account and per client address (django-axes, tracker.login_limits)
for the API token login, the admin login and any sign-in built on Django's authenticate()."""

import datetime
import logging

import pytest
import time_machine
from axes.models import AccessAttempt, AccessFailureLog
from django.conf import settings as django_settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.management import call_command
from django.test import RequestFactory
from rest_framework.test import APIClient

from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.tracker.test_settings import run_settings
from tracker.api.throttling import LoginRateThrottle
from tracker.login_limits import LOGIN_LOCKED
from tracker.models import ApiToken

pytestmark = pytest.mark.django_db

LIMIT = django_settings.LOGIN_FAILURE_LIMIT
COOL_OFF = datetime.timedelta(minutes=django_settings.LOGIN_COOLOFF_MINUTES)
TOKEN_URL = "/api/v1/auth/token/"
ADMIN_LOGIN = "/admin/login/"
START = datetime.datetime(2026, 11, 30, 9, 0, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def clean_cache():
    cache.clear()  # the API's login throttle counts in the cache
    yield
    cache.clear()


@pytest.fixture
def no_login_throttle(monkeypatch):
    """Only the lockout answers: the per-address rate limit out of the way."""
    monkeypatch.setattr(LoginRateThrottle, "THROTTLE_RATES", {"login": "100000/minute"})


def api_login(client, username, password, forwarded_for=None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for else {}
    return client.post(TOKEN_URL, {"username": username, "password": password}, **extra)


def admin_login(client, username, password, forwarded_for=None, **extra):
    if forwarded_for:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client.post(
        ADMIN_LOGIN,
        {"username": username, "password": password, "next": "/admin/"},
        **extra,
    )


def spoofed(i):
    return f"198.51.100.{i + 1}"


def staff_user(**kwargs):
    return UserFactory(is_staff=True, is_superuser=True, **kwargs)


# --- The probe's findings ------------------------------------------------------------------


def test_api_login_with_rotating_forwarded_for_is_locked_and_issues_no_token():
    """The probe: 25 wrong passwords, each 'from' another X-Forwarded-For, then the right one."""
    user = UserFactory()
    client = APIClient()
    codes = [
        api_login(client, user.username, "wrong", forwarded_for=spoofed(i)).status_code
        for i in range(25)
    ]
    right = api_login(client, user.username, DEFAULT_PASSWORD, forwarded_for=spoofed(99))
    assert codes[: LIMIT - 1] == [401] * (LIMIT - 1)
    assert set(codes[LIMIT - 1 :]) == {429}
    assert right.status_code == 429
    assert right["Content-Type"] == "application/problem+json"
    assert not ApiToken.objects.filter(user=user).exists()


def test_api_lockout_is_a_problem_document_naming_what_happened(no_login_throttle):
    user = UserFactory()
    client = APIClient()
    codes = [api_login(client, user.username, "wrong").status_code for _ in range(LIMIT)]
    assert codes == [401] * (LIMIT - 1) + [429]
    a_minute_later = datetime.datetime.now(tz=datetime.UTC) + datetime.timedelta(minutes=1)
    with time_machine.travel(a_minute_later):
        response = api_login(client, user.username, DEFAULT_PASSWORD)
    assert response.status_code == 429
    body = response.json()
    assert body == {
        "type": "about:blank",
        "title": "Too many requests",
        "status": 429,
        "detail": LOGIN_LOCKED,
        "instance": TOKEN_URL,
    }
    # the lock ends the cool-off after the last failure, a minute ago
    retry_after = int(response["Retry-After"])
    assert COOL_OFF.total_seconds() - 70 <= retry_after <= COOL_OFF.total_seconds() - 50
    assert not ApiToken.objects.exists()


def test_admin_login_is_locked_and_refuses_the_right_password(client):
    """The probe: the admin login had no limit (40 wrong passwords, then the right one)."""
    admin = staff_user()
    codes = [
        admin_login(client, admin.username, "wrong", forwarded_for=spoofed(i)).status_code
        for i in range(40)
    ]
    assert codes[: LIMIT - 1] == [200] * (LIMIT - 1)  # the login form again, with its error
    assert set(codes[LIMIT - 1 :]) == {429}

    right = admin_login(client, admin.username, DEFAULT_PASSWORD, forwarded_for=spoofed(99))
    assert right.status_code == 429
    assert int(right["Retry-After"]) > 0
    assert b"Sign-in paused" in right.content
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # still signed out


def test_admin_lockout_page_is_in_the_users_language(client):
    admin = staff_user()
    for _ in range(LIMIT):
        response = admin_login(client, admin.username, "wrong", HTTP_ACCEPT_LANGUAGE="ko")
    assert response.status_code == 429
    page = response.content.decode()
    assert '<html lang="ko">' in page
    assert "로그인 일시 중지" in page
    assert f"최대 {django_settings.LOGIN_COOLOFF_MINUTES}분" in page
    assert "Traceback" not in page

    english = admin_login(client, admin.username, "wrong", HTTP_ACCEPT_LANGUAGE="en")
    assert english.status_code == 429
    assert b"Sign-in paused" in english.content
    assert f"up to {django_settings.LOGIN_COOLOFF_MINUTES} minutes".encode() in english.content


# --- Per account, per address ----------------------------------------------------------------


def test_a_second_account_from_the_same_address_is_limited_too(client, no_login_throttle):
    """Per address: failures spread over many usernames lock the address for everyone."""
    bystander = UserFactory()
    api = APIClient()
    for i in range(LIMIT):
        assert api_login(api, f"guess{i}", "wrong").status_code in (401, 429)
    assert api_login(api, bystander.username, DEFAULT_PASSWORD).status_code == 429
    assert not ApiToken.objects.exists()
    # the admin and any other sign-in refuse that address too
    staff = staff_user()
    assert admin_login(client, staff.username, DEFAULT_PASSWORD).status_code == 429


def test_behind_a_trusted_proxy_each_real_client_has_its_own_count(settings, no_login_throttle):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]  # the test client's REMOTE_ADDR is the proxy
    bystander = UserFactory()
    api = APIClient()
    attacker = "203.0.113.66"
    for i in range(LIMIT):
        # whatever the attacker writes in front, the proxy's entry on the right counts
        api_login(api, f"guess{i}", "wrong", forwarded_for=f"10.0.0.{i}, {attacker}")
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {attacker}
    locked = api_login(api, bystander.username, DEFAULT_PASSWORD, forwarded_for=attacker)
    assert locked.status_code == 429
    # another client behind the same proxy is not locked out
    other = api_login(api, bystander.username, DEFAULT_PASSWORD, forwarded_for="203.0.113.5")
    assert other.status_code == 201


def test_an_account_is_locked_whatever_the_address(settings, no_login_throttle):
    """Per account: a password guessed from many real addresses (a botnet) is still limited,
    while other accounts at those addresses sign in."""
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    victim, other = UserFactory(), UserFactory()
    api = APIClient()
    for i in range(LIMIT):
        api_login(api, victim.username, "wrong", forwarded_for=f"203.0.113.{i + 1}")
    fresh = "203.0.113.200"
    assert api_login(api, victim.username, DEFAULT_PASSWORD, forwarded_for=fresh).status_code == 429
    assert api_login(api, other.username, DEFAULT_PASSWORD, forwarded_for=fresh).status_code == 201


def test_signing_in_to_an_own_account_does_not_reset_the_counts(no_login_throttle):
    """An attacker with an account of their own cannot clear the counts by signing in to it."""
    own, victim = UserFactory(), UserFactory()
    api = APIClient()
    for _ in range(LIMIT - 1):
        assert api_login(api, victim.username, "wrong").status_code == 401
    assert api_login(api, own.username, DEFAULT_PASSWORD).status_code == 201
    assert api_login(api, victim.username, "wrong").status_code == 429
    assert api_login(api, victim.username, DEFAULT_PASSWORD).status_code == 429


def test_every_authenticate_with_a_request_is_limited():
    """A sign-in page built on Django's AuthenticationForm (the workspace's) is covered."""
    user = UserFactory()
    factory = RequestFactory()

    def form_login(password):
        request = factory.post("/accounts/login/", REMOTE_ADDR="192.0.2.44")
        form = AuthenticationForm(request, data={"username": user.username, "password": password})
        return form.is_valid(), request

    for _ in range(LIMIT):
        assert form_login("wrong")[0] is False
    valid, request = form_login(DEFAULT_PASSWORD)
    assert valid is False
    assert request.axes_locked_out is True


def test_test_client_login_without_a_request_still_works(client):
    user = UserFactory()
    assert client.login(username=user.username, password="wrong") is False
    assert client.login(username=user.username, password=DEFAULT_PASSWORD) is True


# --- Logged, expires, can be reset ---------------------------------------------------------


def test_lockout_is_logged_with_username_and_address_never_the_password(caplog):
    user = UserFactory()
    api = APIClient()
    secret = "Correct-Horse-Battery-9"
    with caplog.at_level(logging.INFO):
        for _ in range(LIMIT):
            api_login(api, user.username, secret)
        api_login(api, user.username, secret)  # refused while locked
    warnings = [r for r in caplog.records if r.name == "tracker.login"]
    assert [r.levelno for r in warnings] == [logging.WARNING, logging.WARNING]
    locked, refused = (r.getMessage() for r in warnings)
    assert locked == (
        f"Sign-in locked after {LIMIT} failed attempts: username '{user.username}' "
        "from address 127.0.0.1"
    )
    assert refused == (
        f"Sign-in refused while locked: username '{user.username}' from address 127.0.0.1"
    )
    assert secret not in caplog.text
    assert AccessFailureLog.objects.filter(username=user.username, locked_out=True).exists()


def test_the_lock_expires_after_the_cool_off(client, no_login_throttle):
    user = staff_user()
    api = APIClient()
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(LIMIT):
            api_login(api, user.username, "wrong")
        clock.shift(COOL_OFF - datetime.timedelta(seconds=5))
        assert api_login(api, user.username, DEFAULT_PASSWORD).status_code == 429
        assert admin_login(client, user.username, DEFAULT_PASSWORD).status_code == 429
        # refused attempts during the lock do not prolong it
        clock.shift(datetime.timedelta(seconds=10))
        assert api_login(api, user.username, DEFAULT_PASSWORD).status_code == 201
        assert admin_login(client, user.username, DEFAULT_PASSWORD).status_code == 302


@pytest.mark.parametrize(
    "command",
    [
        ["axes_reset"],
        ["axes_reset_username", "{username}"],
        ["axes_reset_ip", "127.0.0.1", "{ignored}"],
    ],
    ids=["all", "username", "ip"],
)
def test_a_superuser_unlocks_with_the_reset_commands(command, no_login_throttle):
    user = UserFactory()
    api = APIClient()
    # locked both per account and per address (same address for every attempt)
    for _ in range(LIMIT):
        api_login(api, user.username, "wrong")
    assert api_login(api, user.username, DEFAULT_PASSWORD).status_code == 429
    args = [a.format(username=user.username, ignored="192.0.2.1") for a in command]
    call_command(*args)
    assert api_login(api, user.username, DEFAULT_PASSWORD).status_code == 201


def test_a_superuser_unlocks_in_the_admin_and_nobody_else_sees_the_attempts(client):
    user = UserFactory()
    api = APIClient()
    for _ in range(LIMIT):
        api_login(api, user.username, "wrong")
    assert api_login(api, user.username, DEFAULT_PASSWORD).status_code == 429

    staff = UserFactory(is_staff=True)  # staff without superuser: no access to the records
    client.force_login(staff)
    assert client.get("/admin/axes/accessattempt/").status_code == 403

    client.force_login(staff_user())
    changelist = client.get("/admin/axes/accessattempt/")
    assert changelist.status_code == 200
    assert user.username.encode() in changelist.content
    ids = list(AccessAttempt.objects.values_list("pk", flat=True))
    response = client.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert api_login(api, user.username, DEFAULT_PASSWORD).status_code == 201


def test_settings_refuse_a_limit_below_one():
    result = run_settings(DJANGO_DEBUG="1", LOGIN_FAILURE_LIMIT="0")
    assert result.returncode != 0
    assert "LOGIN_FAILURE_LIMIT and LOGIN_COOLOFF_MINUTES must be at least 1" in result.stderr


def test_an_overlong_username_is_counted_not_a_server_error(no_login_throttle):
    """axes stores 255 characters of a username; a longer one is cut, never a database error."""
    api = APIClient()
    long_name = "x" * 300
    codes = [api_login(api, long_name, "wrong").status_code for _ in range(LIMIT)]
    assert codes == [401] * (LIMIT - 1) + [429]
    assert AccessAttempt.objects.get().username == long_name[:255]
