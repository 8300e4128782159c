"""The workspace's sign-in page is under the same login limits as the admin and the API
(django-axes through tracker.login_limits): every authenticate() that carries a request."""

import pytest
from django.conf import settings
from django.core.cache import cache

from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

SIGNIN = "/signin/"
LIMIT = settings.LOGIN_FAILURE_LIMIT


@pytest.fixture(autouse=True)
def clean_cache():
    cache.clear()
    yield
    cache.clear()


def sign_in(client, username, password, forwarded_for):
    return client.post(
        SIGNIN,
        {"username": username, "password": password},
        HTTP_X_FORWARDED_FOR=forwarded_for,
        HTTP_ACCEPT_LANGUAGE="en",
    )


def test_the_workspace_sign_in_is_locked_after_the_limit_whatever_the_forwarded_address(client):
    user = UserFactory()
    codes = [
        sign_in(client, user.username, "wrong", f"198.51.100.{i + 1}").status_code
        for i in range(LIMIT + 5)
    ]
    assert codes[: LIMIT - 1] == [200] * (LIMIT - 1)  # the form again, with its error
    assert set(codes[LIMIT - 1 :]) == {429}

    right = sign_in(client, user.username, DEFAULT_PASSWORD, "203.0.113.7")
    assert right.status_code == 429
    assert int(right["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session


def test_the_right_password_signs_in_below_the_limit(client):
    user = UserFactory()
    for i in range(LIMIT - 2):
        sign_in(client, user.username, "wrong", f"198.51.100.{i + 1}")
    response = sign_in(client, user.username, DEFAULT_PASSWORD, "203.0.113.7")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)
