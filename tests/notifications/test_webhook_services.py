"""Who may manage an organization's webhooks, through the services (the API and the admin
call the same ones). One table: role -> outcome, per service."""

import pytest

from notifications import services
from notifications.exceptions import ORGANIZATION_NOT_MANAGED, WEBHOOK_DISABLED, WebhookDisabled
from notifications.models import WebhookSubscription
from plans.exceptions import NotAllowed, NotVisible
from tracker.services import system_user

pytestmark = pytest.mark.django_db

URL = "https://erp.example.com/hooks"
ALLOW, DENY, HIDDEN = "allow", "deny", "hidden"

# On a webhook of organization A (the task's lead organization).
EXPECTED = {
    "coordinator_a": ALLOW,
    "manager_a": ALLOW,
    "contributor_a": DENY,
    "viewer_a": DENY,
    "manager_b": HIDDEN,
    "superuser": ALLOW,
}


def outcome(call) -> str:
    try:
        call()
    except NotVisible:
        return HIDDEN
    except NotAllowed:
        return DENY
    return ALLOW


@pytest.fixture
def subscription(world):
    subscription, _ = services.webhook_subscription_create(
        actor=system_user(), organization=world.a, url=URL, events=["task.created"]
    )
    return subscription


WRITES = {
    "update": lambda actor, sub: services.webhook_subscription_update(
        actor=actor, subscription=sub, description="ERP"
    ),
    "rotate": lambda actor, sub: services.webhook_subscription_rotate_secret(
        actor=actor, subscription=sub
    ),
    "enable": lambda actor, sub: services.webhook_subscription_enable(
        actor=actor, subscription=sub
    ),
    "ping": lambda actor, sub: services.webhook_subscription_ping(actor=actor, subscription=sub),
    "delete": lambda actor, sub: services.webhook_subscription_delete(
        actor=actor, subscription=sub
    ),
}


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("role", EXPECTED)
def test_writes_on_a_webhook(world, subscription, role, write):
    result = outcome(lambda: WRITES[write](getattr(world, role), subscription))
    assert result == EXPECTED[role]
    still_there = WebhookSubscription.objects.filter(pk=subscription.pk).exists()
    assert still_there == (write != "delete" or result != ALLOW)


@pytest.mark.parametrize("role", EXPECTED)
def test_create_for_organization_a(world, role):
    actor = getattr(world, role)
    expected = {HIDDEN: DENY}.get(EXPECTED[role], EXPECTED[role])  # B's manager: 403 too
    result = outcome(
        lambda: services.webhook_subscription_create(
            actor=actor, organization=world.a, url=URL, events=["task.created"]
        )
    )
    assert result == expected
    assert WebhookSubscription.objects.filter(organization=world.a).exists() == (expected == ALLOW)


def test_a_manager_of_b_is_told_why_and_nothing_is_written(world):
    with pytest.raises(NotAllowed) as error:
        services.webhook_subscription_create(
            actor=world.manager_b, organization=world.a, url=URL, events=["task.created"]
        )
    assert error.value.message == ORGANIZATION_NOT_MANAGED.format(organization=world.a)
    assert not WebhookSubscription.objects.exists()
    # With the permission (their own organization) the same call works.
    services.webhook_subscription_create(
        actor=world.manager_b, organization=world.b, url=URL, events=["task.created"]
    )


def test_a_disabled_webhook_cannot_be_pinged(world, subscription):
    services.webhook_subscription_update(
        actor=world.manager_a, subscription=subscription, is_active=False
    )
    subscription.refresh_from_db()
    assert subscription.disabled_reason == f"Disabled by {world.manager_a}."
    with pytest.raises(WebhookDisabled) as error:
        services.webhook_subscription_ping(actor=world.manager_a, subscription=subscription)
    assert error.value.message == WEBHOOK_DISABLED
    assert error.value.http_status == 409


def test_switching_on_by_update_resets_like_enable(world, subscription):
    WebhookSubscription.objects.filter(pk=subscription.pk).update(consecutive_failures=2)
    services.webhook_subscription_update(
        actor=world.manager_a, subscription=subscription, is_active=False
    )
    services.webhook_subscription_update(
        actor=world.manager_a, subscription=subscription, is_active=True
    )
    subscription.refresh_from_db()
    assert subscription.is_active and subscription.consecutive_failures == 0
    assert subscription.disabled_at is None


def test_enable_is_idempotent(world, subscription):
    before = WebhookSubscription.objects.get(pk=subscription.pk).updated_at
    services.webhook_subscription_enable(actor=world.manager_a, subscription=subscription)
    services.webhook_subscription_enable(actor=world.manager_a, subscription=subscription)
    assert WebhookSubscription.objects.get(pk=subscription.pk).updated_at == before
