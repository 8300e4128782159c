"""GET /api/v1/users/me/ writes MeSerializer's JSON directly: the same document."""

import pytest
from rest_framework.test import APIClient

from plans.services import membership_create
from tests.factories import OrganizationFactory, UserFactory
from tracker.api.serializers import MeSerializer
from tracker.services import api_token_create, system_user

pytestmark = pytest.mark.django_db


def test_me_is_the_serializers_document_with_memberships_in_order():
    user = UserFactory(first_name="Min", time_zone="Asia/Seoul", language="ko")
    for name, role in [("Zeta Co", "viewer"), ("Alpha Ministry", "coordinator")]:
        membership_create(
            actor=system_user(), user=user, organization=OrganizationFactory(name=name), role=role
        )
    _, raw = api_token_create(actor=user, user=user, name="t")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    answer = client.get("/api/v1/users/me/")
    assert answer.status_code == 200
    assert answer.json() == MeSerializer(user).data
    assert [m["role"] for m in answer.json()["memberships"]] == ["coordinator", "viewer"]
