"""The verification snippets of docs/integration/webhooks.md, run as an integrator would run
them (a Python process; the TypeScript one compiled with the tsc of clients/typescript, then a
Node process) on what a local receiver got from a real delivery:
a task transition's webhook, POSTed over HTTP by `webhook_deliver` as the Celery task does,
then a ping after a rotation that keeps the old secret (two signatures)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from notifications import services
from notifications.models import WebhookDelivery
from plans import services as plan_services
from plans.models import Task
from tracker.services import system_user

pytestmark = pytest.mark.django_db

SNIPPETS = Path(settings.BASE_DIR) / "docs" / "integration" / "snippets"
NODE = shutil.which("node")
# TypeScript and @types/node as `npm ci` in clients/typescript installs them (.ci/run does,
# in its generated-clients step, before the tests).
NODE_MODULES = Path(settings.BASE_DIR) / "clients" / "typescript" / "node_modules"
TSC = NODE_MODULES / ".bin" / "tsc"


@pytest.fixture(scope="module")
def compiled_ts(tmp_path_factory):
    """verify_webhook.ts compiled (strict) to an ES module; its path."""
    if NODE is None or not TSC.exists():
        missing = "node" if NODE is None else f"{TSC} (npm ci in clients/typescript)"
        if os.environ.get("CI"):
            pytest.fail(f"CI runs the TypeScript snippet, but {missing} is missing")
        pytest.skip(f"{missing} is missing (CI installs it)")
    out = tmp_path_factory.mktemp("verify_webhook_ts")
    compiled = subprocess.run(
        [str(TSC), "--strict", "--noUncheckedIndexedAccess", "--target", "es2022",
         "--module", "es2022", "--moduleResolution", "bundler", "--types", "node",
         "--typeRoots", str(NODE_MODULES / "@types"), "--outDir", str(out),
         str(SNIPPETS / "verify_webhook.ts")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    (out / "package.json").write_text('{"type": "module"}')
    return out / "verify_webhook.js"


def _python(secret, headers_file, body_file, script=None):
    return [sys.executable, str(SNIPPETS / "verify_webhook.py"), secret, headers_file, body_file]


def _node(secret, headers_file, body_file, script=None):
    return [NODE, str(script), secret, headers_file, body_file]


RUNNERS = [pytest.param(_python, id="python"), pytest.param(_node, id="typescript")]


def _deliver_all():
    for delivery in WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING):
        services.webhook_deliver(delivery_id=delivery.pk)


def _run(command, received, tmp_path, secret, *, body=None, headers=None, script=None):
    headers_file, body_file = tmp_path / "headers.json", tmp_path / "body"
    headers_file.write_text(json.dumps(headers if headers is not None else received.headers))
    body_file.write_bytes(body if body is not None else received.body)
    result = subprocess.run(
        command(secret, str(headers_file), str(body_file), script),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() in ("valid", "invalid"), result.stderr
    return result.returncode == 0


@pytest.mark.parametrize("command", RUNNERS)
def test_the_snippets_verify_a_live_delivery(
    command, world, receiver, enqueued, django_capture_on_commit_callbacks, tmp_path, request
):
    script = request.getfixturevalue("compiled_ts") if command is _node else None

    def check(*args, **kwargs):
        return _run(*args, script=script, **kwargs)

    subscription, secret = services.webhook_subscription_create(
        actor=system_user(), organization=world.a, url=receiver.url, events=["task.status_changed"]
    )
    receiver.secret = secret
    # The change commits (its on-commit hooks record the event); Celery's queue is left out
    # (`enqueued`) and the delivery runs here, as the worker's task would run it.
    with django_capture_on_commit_callbacks(execute=True):
        plan_services.task_transition(
            actor=system_user(),
            task=world.task,
            to_status=Task.Status.IN_PROGRESS,
            expected_from=Task.Status.PLANNED,
        )
    _deliver_all()
    assert len(receiver.requests) == 1
    received = receiver.requests[0]
    assert received.valid and received.json["type"] == "task.status_changed"

    assert check(command, received, tmp_path, secret)
    # Header names in any case, as frameworks hand them over.
    assert check(command, received, tmp_path, secret, headers={
        name.title(): value for name, value in received.headers.items()
    })  # fmt: skip
    # A changed body, another secret, a changed id or timestamp: refused.
    tampered = received.body.replace(b"in_progress", b"cancelled")
    assert tampered != received.body
    assert not check(command, received, tmp_path, secret, body=tampered)
    _, stranger = services.webhook_subscription_create(
        actor=system_user(), organization=world.a, url=receiver.url + "?x", events=["task.created"]
    )
    assert not check(command, received, tmp_path, stranger)
    for name, value in (("webhook-id", "msg_other"), ("webhook-timestamp", "1")):
        assert not check(
            command, received, tmp_path, secret, headers={**received.headers, name: value}
        )
    # The body re-serialized from its JSON is not the body that was signed.
    reserialized = json.dumps(received.json, indent=2).encode()
    assert not check(command, received, tmp_path, secret, body=reserialized)

    # After a rotation that keeps the old secret, both secrets verify (two signatures).
    _, new_secret = services.webhook_subscription_rotate_secret(
        actor=system_user(), subscription=subscription
    )
    receiver.secret = new_secret
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_subscription_ping(actor=system_user(), subscription=subscription)
    _deliver_all()
    ping = receiver.requests[-1]
    assert (
        ping.json["type"] == "webhook.ping" and len(ping.headers["webhook-signature"].split()) == 2
    )
    assert check(command, ping, tmp_path, new_secret)
    assert check(command, ping, tmp_path, secret)


def test_the_snippets_refuse_an_old_timestamp(request):
    """Replays: the same function with a clock 301 s after the signature."""
    from notifications import signing

    secret, body = signing.new_secret(), b'{"type": "webhook.ping"}'
    headers = signing.headers(secret, "msg_1", 1_700_000_000, body)
    sys.path.insert(0, str(SNIPPETS))
    try:
        import verify_webhook
    finally:
        sys.path.remove(str(SNIPPETS))
    assert verify_webhook.verify(secret, headers, body, now=1_700_000_300)
    assert not verify_webhook.verify(secret, headers, body, now=1_700_000_301)
    assert not verify_webhook.verify(secret, headers, body, now=1_699_999_699)
    compiled = request.getfixturevalue("compiled_ts")
    script = (
        f"import {{ verify }} from {json.dumps(compiled.as_uri())};"
        f"const [s, h] = [{json.dumps(secret)}, {json.dumps(headers)}];"
        f"const b = {json.dumps(body.decode())};"
        "console.log(JSON.stringify([verify(s, h, b, {now: 1700000300}),"
        " verify(s, h, b, {now: 1700000301}), verify(s, h, b, {now: 1699999699})]));"
    )
    result = subprocess.run(
        [NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60
    )
    assert json.loads(result.stdout) == [True, False, False], result.stderr


def test_the_guide_shows_the_tested_snippets_verbatim():
    guide = (SNIPPETS.parent / "webhooks.md").read_text()
    for name, fence in (("verify_webhook.py", "python"), ("verify_webhook.ts", "ts")):
        code = (SNIPPETS / name).read_text().rstrip()
        assert f"```{fence}\n{code}\n```" in guide, name
