"""Where webhooks may point (the SSRF guard of notifications/webhook_http.py): refused at save
(API, admin, service) and again at every send; the name resolved once and the connection made
to the address checked, with Host, SNI and the certificate check on the name; redirects not
followed; the delivery log showing a status code and nothing a port scan could use.

The test settings allow local http receivers (tests/settings.py); the `production` fixture
switches both rules back on. DNS is the outside world: `fake_dns` answers for the names a
test chooses and counts the lookups; every other lookup (IP literals) is the real resolver's.
"""

import datetime as dt
import importlib
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.apps import apps
from django.urls import reverse
from rest_framework.test import APIClient

from notifications import services, signing
from notifications.models import WebhookDelivery, WebhookSubscription
from notifications.services import AUTO_DISABLED, webhook_deliver
from notifications.webhook_http import (
    DELIVERY_FAILED,
    TARGET_CREDENTIALS,
    TARGET_NOT_HTTPS,
    TARGET_NOT_PUBLIC,
    TARGET_REFUSED,
    address_allowed,
)
from tests.notifications.receiver import start_receiver, stop_receiver
from tracker.services import system_user

pytestmark = pytest.mark.django_db
Status = WebhookDelivery.Status
LIST = "/api/v1/webhooks/"
NAME = "hooks.example.com"
PUBLIC = "93.184.216.34"
ROOT = Path(__file__).resolve().parents[2]

# The targets of the finding, each accepted before.
FINDING = [
    "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://127.0.0.1:6379/",
    "https://10.0.0.1/",
    "https://[::1]/",
    "https://metadata.google.internal/computeMetadata/v1/",
]
# Other spellings of the same places.
MORE = [
    "https://localhost/hooks",
    "https://hooks.localhost/",
    "https://127.0.0.1:8443/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:169.254.169.254]/",
    "https://0.0.0.0/",
    "https://192.168.1.10/",
    "https://172.16.0.1/",
    "https://100.64.0.1/",
    "https://[fd00:ec2::254]/",
    "https://[fe80::1]/",
    "https://[fc00::1]/",
    "https://224.0.0.1/",
    "https://240.0.0.1/",
    "https://[64:ff9b::a00:1]/",
    "https://[2002:a00:1::]/",
    "https://metadata.goog/",
    "https://2130706433/",
    "https://0x7f.1/",
    "https://user:pw@erp.example.com/hooks",
    "http://erp.example.com/hooks",
]


def _settings_in(**env) -> dict:
    """The two target settings as tracker.settings reads them from `env` alone."""
    probe = (
        "import json; from django.conf import settings; print(json.dumps("
        "[settings.WEBHOOK_REQUIRE_HTTPS, settings.WEBHOOK_ALLOW_PRIVATE_TARGETS]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={
            "PATH": os.environ["PATH"],
            "DJANGO_SETTINGS_MODULE": "tracker.settings",
            "DJANGO_ENV_FILE": str(ROOT / "var" / "no-such-env-file"),
            "DJANGO_SECRET_KEY": "a-test-key-for-the-settings-probe-only",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_defaults_are_https_and_public_targets_only():
    assert _settings_in(DJANGO_DEBUG="0") == [True, False]
    assert _settings_in(DJANGO_DEBUG="1") == [False, False]  # local receivers need the opt-in
    assert _settings_in(
        DJANGO_DEBUG="1", WEBHOOK_REQUIRE_HTTPS="1", WEBHOOK_ALLOW_PRIVATE_TARGETS="1"
    ) == [True, True]


@pytest.fixture
def production(settings):
    settings.WEBHOOK_REQUIRE_HTTPS = True
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    return settings


@pytest.fixture
def receiver():
    receiver = start_receiver()
    try:
        yield receiver
    finally:
        stop_receiver(receiver)


class FakeDns:
    """socket.getaddrinfo with chosen answers per name (a list per lookup: the last one
    repeats; an empty one: the name does not resolve) and every looked-up host recorded."""

    def __init__(self, monkeypatch):
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []
        real = socket.getaddrinfo

        def getaddrinfo(host, port, *args, **kwargs):
            self.lookups.append(host)
            if host not in self.answers:
                return real(host, port, *args, **kwargs)
            answers = self.answers[host]
            addresses = answers.pop(0) if len(answers) > 1 else answers[0]
            if not addresses:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
                if ":" in a
                else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses
            ]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def answer(self, name: str, *lookups: list[str]) -> None:
        self.answers[name] = list(lookups)


@pytest.fixture
def fake_dns(monkeypatch):
    return FakeDns(monkeypatch)


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def fields(response) -> list[str]:
    return [error["field"] for error in response.json()["errors"]]


def messages(response) -> list[str]:
    return [error["message"] for error in response.json()["errors"]]


def old_row(world, url: str) -> WebhookSubscription:
    """A subscription saved before these rules (written directly, past the service)."""
    subscription = WebhookSubscription(organization=world.a, url=url, events=["task.updated"])
    subscription.set_secret(signing.new_secret())
    subscription.save()
    return subscription


def record(world) -> WebhookDelivery:
    [delivery] = services.webhook_events_record(
        event="task.updated", task_id=world.task.pk, fields=["title"]
    )
    return delivery


def subscribe(world, url: str, receiver=None) -> WebhookSubscription:
    subscription, secret = services.webhook_subscription_create(
        actor=system_user(), organization=world.a, url=url, events=["task.updated"]
    )
    if receiver is not None:
        receiver.secret = secret
    return subscription


# --- The addresses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "public", "with_private_allowed"),
    [
        ("93.184.216.34", True, True),
        ("2606:2800:220:1:248:1893:25c8:1946", True, True),
        ("127.0.0.1", False, True),
        ("::1", False, True),
        ("10.0.0.1", False, True),
        ("172.16.0.1", False, True),
        ("192.168.1.1", False, True),
        ("100.64.0.1", False, True),  # shared address space
        ("169.254.1.1", False, True),  # link-local
        ("fe80::1", False, True),
        ("fc00::1", False, True),
        ("0.0.0.0", False, True),
        ("::", False, True),
        ("224.0.0.1", False, True),  # multicast
        ("ff02::1", False, True),
        ("240.0.0.1", False, True),  # reserved
        ("192.0.0.8", False, True),  # IETF protocol assignments
        ("::ffff:10.0.0.1", False, True),  # IPv4-mapped
        ("2002:a00:1::", False, True),  # 6to4 of 10.0.0.1
        ("64:ff9b::a00:1", False, True),  # NAT64 of 10.0.0.1
        ("64:ff9b::5db8:d822", True, True),  # NAT64 of a public address
        ("::ffff:93.184.216.34", True, True),
        # Cloud metadata: never, whatever the settings.
        ("169.254.169.254", False, False),
        ("fd00:ec2::254", False, False),
        ("::ffff:169.254.169.254", False, False),
        ("64:ff9b::a9fe:a9fe", False, False),
        ("100.100.100.200", False, False),
    ],
)
def test_which_addresses_are_allowed(settings, address, public, with_private_allowed):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    assert address_allowed(ipaddress.ip_address(address)) is public
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    assert address_allowed(ipaddress.ip_address(address)) is with_private_allowed


# --- At save ----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", FINDING + MORE)
def test_refused_at_save_through_the_api(world, production, target):
    response = api(world.manager_a).post(
        LIST,
        {"organization": world.a.pk, "url": target, "events": ["task.created"]},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert fields(response) == ["url"]
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize("target", FINDING)
def test_refused_when_changed_through_the_api(world, production, target):
    subscription = subscribe(world, "https://erp.example.com/hooks")
    response = api(world.manager_a).patch(f"{LIST}{subscription.pk}/", {"url": target})
    assert response.status_code == 400
    assert fields(response) == ["url"]
    subscription.refresh_from_db()
    assert subscription.url == "https://erp.example.com/hooks"


@pytest.mark.parametrize("target", FINDING)
def test_refused_at_save_in_the_admin(client, world, production, target):
    client.force_login(world.manager_a)
    response = client.post(
        reverse("admin:notifications_webhooksubscription_add"),
        {"organization": world.a.pk, "url": target, "events": ["task.created"]},
    )
    assert response.status_code == 200  # the form again
    assert response.context["adminform"].form.errors["url"]
    assert not WebhookSubscription.objects.exists()


def test_refused_when_changed_in_the_admin(client, world, production):
    subscription = subscribe(world, "https://erp.example.com/hooks")
    client.force_login(world.manager_a)
    response = client.post(
        reverse("admin:notifications_webhooksubscription_change", args=[subscription.pk]),
        {"organization": world.a.pk, "url": "https://10.0.0.1/", "events": ["task.created"]},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["url"] == [TARGET_NOT_PUBLIC]
    subscription.refresh_from_db()
    assert subscription.url == "https://erp.example.com/hooks"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("http://erp.example.com/hooks", TARGET_NOT_HTTPS),
        ("https://user:pw@erp.example.com/hooks", TARGET_CREDENTIALS),
        ("https://user@erp.example.com/hooks", TARGET_CREDENTIALS),
        ("https://169.254.169.254/", TARGET_NOT_PUBLIC),
    ],
)
def test_the_service_names_the_reason(world, production, target, message):
    response = api(world.manager_a).post(
        LIST, {"organization": world.a.pk, "url": target, "events": ["task.created"]}
    )
    assert messages(response) == [message]


def test_plain_http_to_a_local_port_is_refused_even_when_http_is_allowed(world, production):
    production.WEBHOOK_REQUIRE_HTTPS = False
    response = api(world.manager_a).post(
        LIST,
        {"organization": world.a.pk, "url": "http://127.0.0.1:6379/", "events": ["task.created"]},
    )
    assert response.status_code == 400
    assert messages(response) == [TARGET_NOT_PUBLIC]


def test_metadata_is_refused_even_when_private_targets_are_allowed(world, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    for target in (
        "https://169.254.169.254/latest/meta-data/",
        "https://metadata.google.internal/",
        "https://[fd00:ec2::254]/",
    ):
        response = api(world.manager_a).post(
            LIST, {"organization": world.a.pk, "url": target, "events": ["task.created"]}
        )
        assert (response.status_code, fields(response)) == (400, ["url"]), target
    # ...while the allowance does what it says for the rest.
    assert subscribe(world, "https://10.0.0.1/hooks").url == "https://10.0.0.1/hooks"


def test_a_name_is_refused_at_save_when_any_of_its_addresses_is_private(
    world, production, fake_dns
):
    fake_dns.answer(NAME, [PUBLIC, "10.1.2.3"])
    response = api(world.manager_a).post(
        LIST,
        {"organization": world.a.pk, "url": f"https://{NAME}/hooks", "events": ["task.created"]},
    )
    assert (response.status_code, messages(response)) == (400, [TARGET_NOT_PUBLIC])

    fake_dns.answer(NAME, [PUBLIC])
    assert subscribe(world, f"https://{NAME}/hooks").url == f"https://{NAME}/hooks"
    assert subscribe(world, f"https://{PUBLIC}/hooks").url == f"https://{PUBLIC}/hooks"


def test_a_name_that_does_not_resolve_yet_is_accepted_and_checked_at_send(
    world, production, fake_dns
):
    fake_dns.answer(NAME, [])  # no address (yet)
    subscription = subscribe(world, f"https://{NAME}/hooks")
    fake_dns.answer(NAME, ["10.9.8.7"])
    delivery = webhook_deliver(delivery_id=record(world).pk)
    assert (delivery.status, delivery.last_error) == (Status.FAILED, TARGET_REFUSED)
    assert WebhookSubscription.objects.filter(pk=subscription.pk).exists()


# --- At send ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "127.0.0.1",
        "2130706433",  # decimal
        "0x7f.1",  # hex, short form
        "0177.0.0.1",  # octal
        "127.1",
        "[::ffff:127.0.0.1]",
        "0.0.0.0",
    ],
)
def test_a_local_address_in_any_spelling_is_refused_at_send(world, production, receiver, host):
    production.WEBHOOK_REQUIRE_HTTPS = False  # the receiver speaks http: only the address counts
    subscription = old_row(world, f"http://{host}:{receiver.port}/hooks/tracker")
    delivery = webhook_deliver(delivery_id=record(world).pk)
    assert receiver.requests == []
    assert (delivery.status, delivery.last_status_code) == (Status.FAILED, None)
    assert delivery.last_error == TARGET_REFUSED
    assert WebhookSubscription.objects.filter(pk=subscription.pk).exists()  # kept


def test_a_name_resolving_to_a_private_address_is_refused_at_send(
    world, production, receiver, fake_dns
):
    production.WEBHOOK_REQUIRE_HTTPS = False
    fake_dns.answer(NAME, [PUBLIC, "127.0.0.1"])  # one bad address is enough
    old_row(world, f"http://{NAME}:{receiver.port}/hooks/tracker")
    delivery = webhook_deliver(delivery_id=record(world).pk)
    assert receiver.requests == []
    assert delivery.last_error == TARGET_REFUSED
    assert fake_dns.lookups == [NAME]


def test_credentials_are_refused_at_send(world, settings, receiver):
    old_row(world, f"http://user:secret@127.0.0.1:{receiver.port}/hooks/tracker")
    delivery = webhook_deliver(delivery_id=record(world).pk)
    assert receiver.requests == []
    assert delivery.last_error == TARGET_REFUSED


def test_plain_http_is_refused_at_send_when_https_is_required(world, settings, receiver):
    settings.WEBHOOK_REQUIRE_HTTPS = True
    old_row(world, receiver.url)
    delivery = webhook_deliver(delivery_id=record(world).pk)
    assert receiver.requests == []
    assert delivery.last_error == TARGET_REFUSED


def test_a_refused_subscription_is_kept_and_its_refusals_count_as_failures(
    world, production, client
):
    production.WEBHOOK_MAX_ATTEMPTS = 1
    production.WEBHOOK_DISABLE_AFTER = 2
    subscription = old_row(world, "https://10.0.0.1/hooks")
    for _ in range(2):
        delivery = webhook_deliver(delivery_id=record(world).pk)
        assert (delivery.status, delivery.last_error) == (Status.GAVE_UP, TARGET_REFUSED)
    subscription.refresh_from_db()
    assert not subscription.is_active
    assert subscription.disabled_reason == AUTO_DISABLED.format(count=2)

    # Switched on again, a ping is accepted and refused at its send, with the reason shown.
    services.webhook_subscription_enable(actor=world.manager_a, subscription=subscription)
    response = api(world.manager_a).post(f"{LIST}{subscription.pk}/ping/")
    assert response.status_code == 202
    ping = WebhookDelivery.objects.get(event="webhook.ping")
    assert webhook_deliver(delivery_id=ping.pk).last_error == TARGET_REFUSED
    log = api(world.viewer_a).get(f"{LIST}{subscription.pk}/deliveries/").json()["results"]
    assert log[0]["last_error"] == TARGET_REFUSED


# --- How the connection is made ---------------------------------------------------------------


def test_the_name_is_resolved_once_and_the_checked_address_is_used(world, receiver, fake_dns):
    """Private targets allowed (the receiver is local). The first answer is the receiver; any
    later lookup would answer 127.0.0.2, where nothing listens: a sender that resolved the name
    again to connect (DNS rebinding's way in) would fail."""
    fake_dns.answer(NAME, ["127.0.0.1"])
    subscribe(world, f"http://{NAME}:{receiver.port}/hooks/tracker", receiver)
    fake_dns.answer(NAME, ["127.0.0.1"], ["127.0.0.2"])
    fake_dns.lookups.clear()  # the check at save looked it up too

    delivery = webhook_deliver(delivery_id=record(world).pk)

    assert delivery.status == Status.SUCCEEDED, delivery.last_error
    assert fake_dns.lookups.count(NAME) == 1
    # Only the checked address itself is looked up besides (the socket layer parsing it).
    assert set(fake_dns.lookups) <= {NAME, "127.0.0.1"}
    [request] = receiver.requests
    assert request.valid
    assert request.headers["host"] == f"{NAME}:{receiver.port}"


def test_every_checked_address_is_tried_in_turn(world, receiver, fake_dns):
    # ::1 first (nothing listens there: the receiver is on 127.0.0.1), then 127.0.0.1.
    fake_dns.answer(NAME, ["::1", "127.0.0.1"])
    subscribe(world, f"http://{NAME}:{receiver.port}/hooks/tracker", receiver)
    delivery = webhook_deliver(delivery_id=record(world).pk)
    assert delivery.status == Status.SUCCEEDED, delivery.last_error
    assert len(receiver.requests) == 1


def _certificate(tmp_path, name: str, issuer=None):
    """A key and certificate for `name`, signed by `issuer` (key, certificate), or a CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if issuer is None:
        builder = builder.issuer_name(subject).add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        )
        signing_key = key
    else:
        issuer_key, issuer_certificate = issuer
        builder = (
            builder.issuer_name(issuer_certificate.subject)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                critical=False,
            )
        )
        signing_key = issuer_key
    certificate = builder.sign(signing_key, hashes.SHA256())
    return key, certificate


def _write(path, key, certificate):
    path.write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture
def tls_receiver_for(tmp_path, monkeypatch):
    """An https receiver on 127.0.0.1 whose certificate names `name`, issued by a CA the
    sender trusts (SSL_CERT_FILE, which httpx reads)."""
    ca = _certificate(tmp_path, "Test CA")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca[1].public_bytes(serialization.Encoding.PEM))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    started = []

    def start(name: str):
        chain = _write(tmp_path / f"{name}.pem", *_certificate(tmp_path, name, issuer=ca))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain)
        receiver = start_receiver(context)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        stop_receiver(receiver)


def test_tls_names_and_verifies_the_host_name_while_connecting_to_the_address(
    world, settings, fake_dns, tls_receiver_for
):
    settings.WEBHOOK_REQUIRE_HTTPS = True  # private targets stay allowed: the receiver is local
    receiver = tls_receiver_for(NAME)
    fake_dns.answer(NAME, ["127.0.0.1"])
    subscribe(world, f"https://{NAME}:{receiver.port}/hooks/tracker", receiver)
    fake_dns.answer(NAME, ["127.0.0.1"], ["127.0.0.2"])  # a second lookup would miss

    delivery = webhook_deliver(delivery_id=record(world).pk)

    assert delivery.status == Status.SUCCEEDED, delivery.last_error
    assert receiver.server_names == [NAME]  # SNI
    assert receiver.requests[0].headers["host"] == f"{NAME}:{receiver.port}"


def test_a_certificate_for_another_name_is_refused(world, settings, fake_dns, tls_receiver_for):
    settings.WEBHOOK_REQUIRE_HTTPS = True
    receiver = tls_receiver_for("other.example.com")
    fake_dns.answer(NAME, ["127.0.0.1"])
    subscribe(world, f"https://{NAME}:{receiver.port}/hooks/tracker", receiver)

    delivery = webhook_deliver(delivery_id=record(world).pk)

    assert (delivery.status, delivery.last_error) == (Status.FAILED, DELIVERY_FAILED)
    assert receiver.requests == []


def test_a_redirect_is_not_followed(world, receiver):
    receiver.statuses = [307]
    receiver.location = receiver.url + "/elsewhere"
    subscribe(world, receiver.url, receiver)
    delivery = webhook_deliver(delivery_id=record(world).pk)
    assert (delivery.status, delivery.last_status_code) == (Status.FAILED, 307)
    assert delivery.last_error == "HTTP 307"
    assert [r.path for r in receiver.requests] == ["/hooks/tracker"]


# --- What the log tells -----------------------------------------------------------------------


def test_the_log_shows_the_status_code_and_nothing_the_target_said(world, receiver, client):
    receiver.statuses = [503]
    receiver.reason = "Redis 7.2 ready"
    receiver.body = b"-ERR unknown command 'POST'"
    subscription = subscribe(world, receiver.url, receiver)
    delivery = webhook_deliver(delivery_id=record(world).pk)
    assert (delivery.last_status_code, delivery.last_error) == (503, "HTTP 503")

    response = api(world.viewer_a).get(f"{LIST}{subscription.pk}/deliveries/")
    assert response.json()["results"][0]["last_error"] == "HTTP 503"
    client.force_login(world.manager_a)
    for page in (
        reverse("admin:notifications_webhookdelivery_changelist"),
        reverse("admin:notifications_webhookdelivery_change", args=[delivery.pk]),
        reverse("admin:notifications_webhooksubscription_change", args=[subscription.pk]),
    ):
        content = client.get(page).content.decode()
        assert "HTTP 503" in content
        assert "Redis" not in content and "unknown command" not in content


class _NotHttp:
    """A TCP service that is not HTTP (Redis, SMTP...): greets, then hangs up."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            with connection:
                connection.sendall(b"-ERR unknown command\r\n")

    def close(self):
        self.socket.close()


def test_an_open_port_and_a_closed_port_look_the_same(world, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 2
    service = _NotHttp()
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there any more
    try:
        old_row(world, f"http://127.0.0.1:{service.port}/")
        delivery = webhook_deliver(delivery_id=record(world).pk)
        WebhookSubscription.objects.all().delete()
        old_row(world, f"http://127.0.0.1:{closed_port}/")
        other = webhook_deliver(delivery_id=record(world).pk)
    finally:
        service.close()
    assert delivery.last_error == other.last_error == DELIVERY_FAILED
    assert delivery.last_status_code is other.last_status_code is None


def test_the_migration_forgets_what_targets_said_before(world):
    migration = importlib.import_module("notifications.migrations.0006_webhook_targets")
    subscription = old_row(world, "https://erp.example.com/hooks")
    texts = {
        ("HTTP 503 Redis 7.2 ready", 503): "HTTP 503",
        ("ConnectError: [Errno 111] Connection refused", None): DELIVERY_FAILED,
        ("RemoteProtocolError: illegal status line: bytearray(b'-ERR')", None): DELIVERY_FAILED,
        ("Timed out after 10.0 s.", None): DELIVERY_FAILED,
        (services.SUBSCRIPTION_DISABLED, None): services.SUBSCRIPTION_DISABLED,
        (services.LEASE_EXPIRED, None): services.LEASE_EXPIRED,
        ("", 204): "",
    }
    rows = {}
    for (text, code), expected in texts.items():
        [delivery] = services.webhook_events_record(event="task.updated", task_id=world.task.pk)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            last_error=text, last_status_code=code
        )
        rows[delivery.pk] = expected
    assert subscription.deliveries.count() == len(texts)

    migration.forget_what_targets_said(apps, None)

    assert dict(WebhookDelivery.objects.values_list("pk", "last_error")) == rows
