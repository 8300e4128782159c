"""Webhook models: URL and event rules, database constraints, the secret at rest."""

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications import encryption, services
from notifications.models import EVENTS_EMPTY, WebhookDelivery, WebhookSubscription
from notifications.webhook_http import TARGET_CREDENTIALS, TARGET_NOT_HTTPS, TARGET_NOT_PUBLIC
from tracker.services import system_user

pytestmark = pytest.mark.django_db

EVENTS = ["task.status_changed"]


def create(world, url="https://erp.example.com/hooks", events=EVENTS, organization=None):
    return services.webhook_subscription_create(
        actor=system_user(), organization=organization or world.a, url=url, events=events
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://erp.example.com/hooks",
        # The test settings allow local targets over http (WEBHOOK_REQUIRE_HTTPS off,
        # WEBHOOK_ALLOW_PRIVATE_TARGETS on); tests/notifications/test_webhook_targets.py
        # switches them back.
        "http://localhost:8080/hook",
        "http://127.0.0.1:9000/hook",
        "https://127.0.0.1/hook",
    ],
)
def test_accepted_urls(world, url):
    subscription, _secret = create(world, url=url)
    assert subscription.url == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://erp.example.com/hooks", TARGET_NOT_HTTPS),
        ("http://localhost.example.com/hooks", TARGET_NOT_HTTPS),
        ("https://user:pw@erp.example.com/hooks", TARGET_CREDENTIALS),
        ("https://127.0.0.1/hook", TARGET_NOT_PUBLIC),
    ],
)
def test_refused_urls_say_why(world, settings, url, message):
    settings.WEBHOOK_REQUIRE_HTTPS = True
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(ValidationError) as error:
        create(world, url=url)
    assert message in error.value.message_dict["url"]
    assert not WebhookSubscription.objects.exists()


def test_events_are_validated_and_normalized(world):
    with pytest.raises(ValidationError) as error:
        create(world, events=[])
    assert error.value.message_dict["events"] == [EVENTS_EMPTY]
    with pytest.raises(ValidationError) as error:
        create(world, events=["task.created", "task.deleted", "task.due_later"])
    assert "Unknown events: task.deleted, task.due_later." in error.value.message_dict["events"][0]
    subscription, _ = create(world, events=["task.updated", "task.created", "task.updated"])
    assert subscription.events == ["task.created", "task.updated"]


def test_one_webhook_per_url_and_organization(world):
    create(world)
    with pytest.raises(ValidationError) as error:
        create(world)
    assert "already has a webhook for this URL" in str(error.value)
    create(world, organization=world.b)  # another organization may use the same URL


def test_the_secret_is_stored_encrypted_only(world):
    subscription, secret = create(world)
    key_part = secret.removeprefix("whsec_")
    row = WebhookSubscription.objects.filter(pk=subscription.pk).values().get()
    for column, value in row.items():
        assert secret not in str(value), column
        assert key_part not in str(value), column
    assert encryption.decrypt(row["secret_encrypted"]) == secret


def test_a_secret_encrypted_under_another_key_does_not_open(world, settings):
    subscription, _secret = create(world)
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "a-different-secret-key-for-this-test-only"
    with pytest.raises(encryption.InvalidToken):
        subscription.signing_secrets(timezone.now())
    # Listed as a fallback, the old key still opens it (rotation the Django way).
    settings.SECRET_KEY_FALLBACKS = [old_key]
    assert subscription.signing_secrets(timezone.now())


def test_an_explicit_encryption_key_is_used(world, settings):
    settings.WEBHOOK_ENCRYPTION_KEY = Fernet.generate_key().decode()
    subscription, secret = create(world)
    assert subscription.signing_secrets(timezone.now()) == [secret]
    settings.WEBHOOK_ENCRYPTION_KEY = ""
    with pytest.raises(encryption.InvalidToken):
        subscription.signing_secrets(timezone.now())


def test_delivery_status_constraint(world):
    subscription, _ = create(world)
    now = timezone.now()
    delivery = WebhookDelivery.objects.create(
        subscription=subscription,
        event="task.created",
        message_id="msg_1",
        payload={},
        next_attempt_at=now,
        created_at=now,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(status="lost")
    with pytest.raises(IntegrityError), transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(status="succeeded")  # no time
    with pytest.raises(IntegrityError), transaction.atomic():
        WebhookDelivery.objects.create(
            subscription=subscription,
            event="task.created",
            message_id="msg_1",
            payload={},
            next_attempt_at=now,
            created_at=now,
        )


def test_an_active_webhook_has_no_disabled_date(world):
    subscription, _ = create(world)
    with pytest.raises(IntegrityError), transaction.atomic():
        WebhookSubscription.objects.filter(pk=subscription.pk).update(disabled_at=timezone.now())
