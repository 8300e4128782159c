"""API tokens in the admin: created once-visible, owned, revocable."""

import pytest

from tests.factories import UserFactory
from tracker.models import ApiToken
from tracker.services import api_token_authenticate, api_token_create

pytestmark = pytest.mark.django_db


def test_staff_user_creates_a_token_and_sees_it_once(client):
    user = UserFactory(is_staff=True)
    client.force_login(user)
    response = client.post(
        "/admin/tracker/apitoken/add/", {"name": "ERP", "scope": "read"}, follow=True
    )
    assert response.status_code == 200
    token = ApiToken.objects.get(user=user)
    text = response.content.decode()
    start = text.index("jpt_")
    full = text[start : start + len("jpt_") + 8 + 1 + 43]
    assert api_token_authenticate(full).pk == token.pk
    # the change page never shows the secret again
    page = client.get(f"/admin/tracker/apitoken/{token.pk}/change/").content.decode()
    assert full not in page and token.prefix in page


def test_users_see_only_their_own_tokens(client):
    owner, other = UserFactory(is_staff=True), UserFactory(is_staff=True)
    token, _ = api_token_create(actor=owner, user=owner, name="mine")
    client.force_login(other)
    assert token.prefix not in client.get("/admin/tracker/apitoken/").content.decode()
    assert client.get(f"/admin/tracker/apitoken/{token.pk}/change/").status_code in (302, 404)


def test_revoke_action(client):
    owner = UserFactory(is_staff=True)
    token, full = api_token_create(actor=owner, user=owner, name="mine")
    client.force_login(owner)
    client.post(
        "/admin/tracker/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk], "index": 0},
    )
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api_token_authenticate(full) is None
