"""A network path cut silently (every packet dropped, nothing reset) fails fast and heals,
with the project's default settings (issue 13, item 1): a web request's database connection
and a Celery worker's consumer on Redis. partition_drill.py runs each drill inside a network
namespace of its own, with a private PostgreSQL and Redis in a second one across a veth pair;
the cut takes that pair down. Needs root (CI runs as root) and `ip`; skipped otherwise."""

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def namespaces():
    """Two namespaces joined by a veth pair: (client namespace, environment of the drill).
    Addresses only on the pair, no route anywhere else; all removed afterwards."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2 (`ip`)")
    tag = uuid.uuid4().hex[:6]
    client, service = f"trk-c-{tag}", f"trk-s-{tag}"
    client_link, service_link = f"trkc{tag}", f"trks{tag}"
    octet = int(tag[:2], 16)
    try:
        _ip("netns", "add", client)
        _ip("netns", "add", service)
        _ip("link", "add", client_link, "type", "veth", "peer", "name", service_link)
        _ip("link", "set", client_link, "netns", client)
        _ip("link", "set", service_link, "netns", service)
        for ns, link, host in ((client, client_link, 1), (service, service_link, 2)):
            _ip("-n", ns, "addr", "add", f"10.213.{octet}.{host}/24", "dev", link)
            _ip("-n", ns, "link", "set", link, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        for ns in (client, service):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        pytest.skip(f"cannot make network namespaces here: {exc}")
    env = {
        "DRILL_SERVICE_NS": service,
        "DRILL_SERVICE_LINK": service_link,
        "DRILL_SERVICE_ADDRESS": f"10.213.{octet}.2",
    }
    try:
        yield client, env
    finally:
        for ns in (client, service):  # deleting a namespace deletes its end of the pair
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def drill(namespaces, scenario: str, **env) -> dict:
    client, drill_env = namespaces
    done = subprocess.run(
        ["ip", "netns", "exec", client, sys.executable, "-m", "tests.integration.partition_drill",
         scenario],
        cwd=ROOT, env={**os.environ, **drill_env, **env}, capture_output=True, text=True,
        timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_request_on_a_silently_cut_database_connection_fails_fast_and_the_next_reconnects(
    namespaces,
):
    """Decision 0014 takes an idle connection whose socket has nothing to read as usable:
    after a silent cut it has nothing to read. The request's query then fails within
    DATABASE_TCP_USER_TIMEOUT (20 s) with an OperationalError instead of hanging for the
    kernel's 15 minutes (without the timeout it hangs: set DATABASE_TCP_USER_TIMEOUT=0), a
    new connection during the cut fails within DATABASE_CONNECT_TIMEOUT, and once the path is
    back the next request connects afresh and succeeds."""
    result = drill(namespaces, "database")
    print(f"\nDatabase cut: {result}")
    assert result["before"][0] == "ok"
    outcome, seconds = result["during"]
    assert outcome.startswith("OperationalError"), result
    assert seconds < 40, result
    outcome, seconds = result["during_connect"]
    assert outcome.startswith("OperationalError") and seconds < 15, result
    assert result["after"][0] == "ok" and result["reconnected"], result


def test_a_worker_consumer_notices_a_silent_redis_cut_and_reconnects(namespaces):
    """The worker waits in BRPOP when the path to Redis is cut for 30 s. It drops the dead
    connection (REDIS_HEALTH_CHECK_INTERVAL, TCP keepalive and user timeout), retries while
    the path is cut, reconnects when it is back, and consumes a task sent then."""
    result = drill(namespaces, "broker")
    print(f"\nRedis cut: reached the worker {result['ran_after_restore_s']} s after the path "
          "was back")  # fmt: skip
    log = "\n".join(result["log"])
    assert result["ran_before"], log
    assert "Connection to broker lost" in log, log
    assert result["ran_after_restore_s"] is not None and result["ran_after_restore_s"] < 30, log
