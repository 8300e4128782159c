"""The webhook admin: lists scoped by the policy, the secret shown once on its own page and
never again, actions through the services, the delivery log read-only."""

import re

import pytest
from django.urls import reverse

from notifications import services
from notifications.models import WebhookDelivery, WebhookSubscription
from tracker.services import system_user

pytestmark = pytest.mark.django_db
URL_A = "https://a.example.com/hooks"
URL_B = "https://b.example.com/hooks"
SECRET_RE = re.compile(r"whsec_[A-Za-z0-9+/=]{40,}")


def url(name, *args):
    return reverse(f"admin:notifications_{name}", args=args)


@pytest.fixture
def subs(world):
    a, _ = services.webhook_subscription_create(
        actor=system_user(), organization=world.a, url=URL_A, events=["task.created"]
    )
    b, _ = services.webhook_subscription_create(
        actor=system_user(), organization=world.b, url=URL_B, events=["task.created"]
    )
    return a, b


@pytest.mark.parametrize(
    ("role", "sees"),
    [
        ("manager_a", {URL_A}),
        ("viewer_a", {URL_A}),
        ("manager_b", {URL_B}),
        ("superuser", {URL_A, URL_B}),
    ],
)
def test_changelist_is_scoped(client, world, subs, role, sees):
    client.force_login(getattr(world, role))
    response = client.get(url("webhooksubscription_changelist"))
    assert response.status_code == 200
    html = response.content.decode()
    assert {u for u in (URL_A, URL_B) if u in html} == sees


def test_someone_elses_webhook_is_404(client, world, subs):
    sub_a, _ = subs
    client.force_login(world.manager_b)
    assert client.get(url("webhooksubscription_change", sub_a.pk)).status_code == 404
    assert client.get(url("webhooksubscription_delete", sub_a.pk)).status_code == 404


def test_contributors_cannot_add(client, world, subs):
    client.force_login(world.contributor_a)
    assert client.get(url("webhooksubscription_add")).status_code == 403
    client.force_login(world.manager_a)
    assert client.get(url("webhooksubscription_add")).status_code == 200


def test_add_shows_the_secret_once_and_only_for_own_organizations(client, world):
    client.force_login(world.manager_a)
    form = client.get(url("webhooksubscription_add")).content.decode()
    assert "Company A" in form and "Company B" not in form  # choices: organizations managed

    response = client.post(
        url("webhooksubscription_add"),
        {
            "organization": world.a.pk,
            "url": URL_A,
            "description": "ERP",
            "events": ["task.created", "task.status_changed"],
        },
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    [secret] = SECRET_RE.findall(response.content.decode())
    subscription = WebhookSubscription.objects.get()
    assert subscription.events == ["task.created", "task.status_changed"]
    assert subscription.created_by == world.manager_a
    assert subscription.signing_secrets(subscription.created_at) == [secret]

    page = client.get(url("webhooksubscription_change", subscription.pk)).content.decode()
    assert secret not in page
    assert not SECRET_RE.search(page)


def test_adding_for_another_organization_is_refused(client, world):
    client.force_login(world.manager_a)
    response = client.post(
        url("webhooksubscription_add"),
        {"organization": world.b.pk, "url": URL_B, "events": ["task.created"]},
    )
    assert response.status_code == 200  # the form again, with the error
    assert "Select a valid choice" in response.content.decode()
    assert not WebhookSubscription.objects.exists()


def test_an_invalid_url_is_a_form_error(client, world, settings):
    settings.WEBHOOK_REQUIRE_HTTPS = True
    client.force_login(world.manager_a)
    response = client.post(
        url("webhooksubscription_add"),
        {"organization": world.a.pk, "url": "http://a.example.com/h", "events": ["task.created"]},
    )
    assert response.status_code == 200
    assert "must use https" in response.content.decode()
    assert not WebhookSubscription.objects.exists()


def test_change_through_the_form(client, world, subs):
    sub_a, _ = subs
    client.force_login(world.manager_a)
    response = client.post(
        url("webhooksubscription_change", sub_a.pk),
        {"url": URL_A + "/v2", "description": "new", "events": ["task.updated"]},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    sub_a.refresh_from_db()
    assert (sub_a.url, sub_a.events) == (URL_A + "/v2", ["task.updated"])
    assert sub_a.organization == world.a


def test_rotate_action_shows_the_new_secret(client, world, subs):
    sub_a, _ = subs
    before = sub_a.secret_encrypted
    client.force_login(world.manager_a)
    response = client.post(
        url("webhooksubscription_changelist"),
        {"action": "rotate_secret", "_selected_action": [sub_a.pk]},
    )
    assert response.status_code == 200
    [secret] = SECRET_RE.findall(response.content.decode())
    sub_a.refresh_from_db()
    assert sub_a.secret_encrypted != before
    assert sub_a.signing_secrets(sub_a.updated_at)[0] == secret


def test_viewers_get_no_actions(client, world, subs):
    sub_a, _ = subs
    client.force_login(world.viewer_a)
    response = client.post(
        url("webhooksubscription_changelist"),
        {"action": "rotate_secret", "_selected_action": [sub_a.pk]},
    )
    assert not SECRET_RE.search(response.content.decode())
    assert WebhookSubscription.objects.get(pk=sub_a.pk).secret_encrypted == sub_a.secret_encrypted


def test_enable_action(client, world, subs):
    sub_a, _ = subs
    services.webhook_subscription_update(actor=system_user(), subscription=sub_a, is_active=False)
    client.force_login(world.coordinator_a)
    response = client.post(
        url("webhooksubscription_changelist"),
        {"action": "enable", "_selected_action": [sub_a.pk]},
        follow=True,
    )
    assert "Enabled 1 webhook(s)." in response.content.decode()
    assert WebhookSubscription.objects.get(pk=sub_a.pk).is_active


def test_delivery_log_is_read_only_and_scoped(client, world, subs):
    services.webhook_events_record(event="task.created", task_id=world.task.pk)
    delivery = WebhookDelivery.objects.get()
    client.force_login(world.viewer_a)
    response = client.get(url("webhookdelivery_changelist"))
    assert response.status_code == 200
    assert "task.created" in response.content.decode()
    page = client.get(url("webhookdelivery_change", delivery.pk))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.get(url("webhookdelivery_add")).status_code == 403
    assert client.get(url("webhookdelivery_delete", delivery.pk)).status_code == 403

    client.force_login(world.superuser)
    assert client.get(url("webhookdelivery_add")).status_code == 403
    assert client.get(url("webhookdelivery_delete", delivery.pk)).status_code == 403

    client.force_login(world.manager_b)
    assert client.get(url("webhookdelivery_change", delivery.pk)).status_code == 404
    assert "task.created" not in client.get(url("webhookdelivery_changelist")).content.decode()

    client.force_login(world.manager_a)
    change = client.get(url("webhooksubscription_change", subs[0].pk)).content.decode()
    assert "Pending" in change  # recent deliveries on the webhook's page
