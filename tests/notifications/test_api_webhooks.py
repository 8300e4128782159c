"""The webhook API: the secret shown once, scoping (404) and permissions (403) as problem
details, the delivery log, rotation and enabling."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from notifications import services
from notifications.models import WebhookDelivery, WebhookSubscription
from notifications.webhook_http import TARGET_NOT_HTTPS
from tracker.models import ApiToken
from tracker.services import api_token_create, system_user

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"
URL = "https://erp.example.com/hooks/tracker"
LIST = "/api/v1/webhooks/"


def api(user):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def detail(subscription, suffix=""):
    return f"{LIST}{subscription.pk}/{suffix}"


@pytest.fixture
def sub_a(world):
    subscription, _ = services.webhook_subscription_create(
        actor=system_user(), organization=world.a, url=URL, events=["task.created"]
    )
    return subscription


@pytest.fixture
def sub_b(world):
    subscription, _ = services.webhook_subscription_create(
        actor=system_user(), organization=world.b, url=URL, events=["task.created"]
    )
    return subscription


def test_create_returns_the_secret_once(world):
    client = api(world.coordinator_a)
    response = client.post(
        LIST,
        {"organization": world.a.pk, "url": URL, "events": ["task.status_changed"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert body["events"] == ["task.status_changed"]
    assert body["is_active"] is True
    assert body["created_by"] == world.coordinator_a.pk
    subscription = WebhookSubscription.objects.get(pk=body["id"])
    assert subscription.signing_secrets(subscription.created_at) == [body["secret"]]

    shown = client.get(detail(subscription))
    assert shown.status_code == 200
    assert "secret" not in shown.json()
    assert body["secret"] not in shown.content.decode()
    listed = client.get(LIST).json()["results"]
    assert [row["id"] for row in listed] == [subscription.pk]
    assert body["secret"] not in str(listed)


def test_a_contributor_gets_403_creating_a_webhook_for_their_organization(world):
    payload = {"organization": world.a.pk, "url": URL, "events": ["task.created"]}
    response = api(world.contributor_a).post(LIST, payload, format="json")
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM
    assert response.json()["title"] == "Forbidden"
    assert not WebhookSubscription.objects.exists()
    # Granted the permission (a manager of the same organization), the same request works.
    assert api(world.manager_a).post(LIST, payload, format="json").status_code == 201


def test_a_manager_of_another_organization_gets_403_creating_for_a(world):
    payload = {"organization": world.a.pk, "url": URL, "events": ["task.created"]}
    response = api(world.manager_b).post(LIST, payload, format="json")
    assert response.status_code == 403
    assert "Company A" in response.json()["detail"]
    assert not WebhookSubscription.objects.exists()


def test_a_user_of_another_organization_gets_404_on_someone_elses_webhook(world, sub_a):
    client = api(world.manager_b)
    for method, suffix in [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("get", "deliveries/"),
        ("post", "rotate-secret/"),
        ("post", "enable/"),
        ("post", "ping/"),
    ]:
        response = getattr(client, method)(detail(sub_a, suffix), {}, format="json")
        assert response.status_code == 404, (method, suffix)
        assert response["Content-Type"] == PROBLEM
    assert client.get(LIST).json()["results"] == []
    assert WebhookSubscription.objects.filter(pk=sub_a.pk).exists()


def test_a_viewer_sees_the_webhook_but_may_not_change_it(world, sub_a):
    client = api(world.viewer_a)
    assert client.get(detail(sub_a)).status_code == 200
    response = client.patch(detail(sub_a), {"description": "mine"}, format="json")
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM
    assert client.post(detail(sub_a, "rotate-secret/")).status_code == 403
    assert client.delete(detail(sub_a)).status_code == 403


def test_anonymous_is_401(world, sub_a):
    response = api(None).get(LIST)
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM


def test_a_read_only_token_cannot_write(world, sub_a):
    _, token = api_token_create(
        actor=world.manager_a, user=world.manager_a, name="ro", scope=ApiToken.Scope.READ
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get(detail(sub_a)).status_code == 200
    assert client.post(detail(sub_a, "rotate-secret/")).status_code == 403


def test_invalid_input_is_400_with_field_errors(world, settings):
    settings.WEBHOOK_REQUIRE_HTTPS = True
    client = api(world.manager_a)
    response = client.post(
        LIST,
        {"organization": world.a.pk, "url": "http://erp.example.com/h", "events": ["task.created"]},
        format="json",
    )
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert {"field": "url", "message": TARGET_NOT_HTTPS} in response.json()["errors"]

    response = client.post(
        LIST, {"organization": world.a.pk, "url": URL, "events": ["task.deleted"]}, format="json"
    )
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["events.0"]

    response = client.post(
        LIST, {"organization": world.a.pk, "url": URL, "events": []}, format="json"
    )
    assert response.status_code == 400
    assert not WebhookSubscription.objects.exists()


def test_update_refuses_the_organization_and_the_secret(world, sub_a):
    client = api(world.manager_a)
    response = client.patch(
        detail(sub_a), {"organization": world.b.pk, "secret": "whsec_x"}, format="json"
    )
    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"organization", "secret"}
    response = client.patch(
        detail(sub_a),
        {"events": ["task.updated", "task.created"], "description": "ERP"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["events"] == ["task.created", "task.updated"]
    assert response.json()["description"] == "ERP"


def test_put_is_not_offered(world, sub_a):
    response = api(world.manager_a).put(detail(sub_a), {"url": URL}, format="json")
    assert response.status_code == 405


def test_rotate_secret_returns_a_new_one(world, sub_a):
    client = api(world.manager_a)
    first = client.post(detail(sub_a, "rotate-secret/"), {}, format="json")
    assert first.status_code == 200
    second = client.post(detail(sub_a, "rotate-secret/"), {"keep_previous": False}, format="json")
    assert second.status_code == 200
    assert first.json()["secret"] != second.json()["secret"]
    assert first.json()["previous_secret_expires_at"] is not None
    assert second.json()["previous_secret_expires_at"] is None
    sub_a.refresh_from_db()
    assert sub_a.signing_secrets(sub_a.updated_at) == [second.json()["secret"]]


def test_disable_and_enable(world, sub_a):
    client = api(world.coordinator_a)
    response = client.patch(detail(sub_a), {"is_active": False}, format="json")
    assert response.json()["is_active"] is False
    assert response.json()["disabled_reason"] == f"Disabled by {world.coordinator_a}."
    assert client.post(detail(sub_a, "ping/")).status_code == 409
    response = client.post(detail(sub_a, "enable/"))
    assert response.status_code == 200
    assert response.json()["is_active"] is True
    assert response.json()["consecutive_failures"] == 0


def test_ping_is_accepted_and_logged(world, sub_a, enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(world.manager_a).post(detail(sub_a, "ping/"))
    assert response.status_code == 202
    assert response.json()["event"] == "webhook.ping"
    assert enqueued.ids == [response.json()["id"]]


def test_delete(world, sub_a):
    assert api(world.manager_a).delete(detail(sub_a)).status_code == 204
    assert not WebhookSubscription.objects.exists()


def test_the_delivery_log_is_newest_first_and_scoped(world, sub_a, sub_b):
    for _ in range(3):
        services.webhook_events_record(event="task.created", task_id=world.task.pk)
    ids = list(
        WebhookDelivery.objects.filter(subscription=sub_a)
        .order_by("-created_at", "-pk")
        .values_list("pk", flat=True)
    )
    assert len(ids) == 3
    assert not WebhookDelivery.objects.filter(subscription=sub_b).exists()

    client = api(world.viewer_a)
    response = client.get(detail(sub_a, "deliveries/"), {"page_size": 2})
    assert response.status_code == 200
    page = response.json()
    assert [row["id"] for row in page["results"]] == ids[:2]
    assert page["results"][0]["status"] == "pending"
    assert page["results"][0]["payload"]["type"] == "task.created"
    rest = client.get(page["next"]).json()
    assert [row["id"] for row in rest["results"]] == ids[2:]

    assert client.get(detail(sub_a, "deliveries/"), {"status": "succeeded"}).json()["results"] == []
    response = client.get(detail(sub_a, "deliveries/"), {"status": "lost"})
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM


def _queries(client, url):
    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code == 200
    return len(context)


def test_list_query_budgets_do_not_grow_with_rows(world, sub_a):
    client = api(world.manager_a)
    services.webhook_events_record(event="task.created", task_id=world.task.pk)
    few = _queries(client, detail(sub_a, "deliveries/"))
    few_subs = _queries(client, LIST)
    for number in range(20):
        services.webhook_events_record(event="task.created", task_id=world.task.pk)
        services.webhook_subscription_create(
            actor=system_user(),
            organization=world.a,
            url=f"{URL}/{number}",
            events=["task.created"],
        )
    assert _queries(client, detail(sub_a, "deliveries/")) == few
    assert _queries(client, LIST) == few_subs
