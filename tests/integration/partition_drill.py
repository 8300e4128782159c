"""Silent network cuts, for real. Two network namespaces joined by a veth pair (made by
test_partition.py): this driver runs in the client one; a private PostgreSQL and Redis run in
the service one, listening on its veth address. A cut sets the service side of the pair down:
every packet is dropped, nothing answers and nothing resets, as when a host is cut off (a
connection then fails only when a timeout of its own says so). The clients are the tracker's
own, with the project's default settings.

    python -m tests.integration.partition_drill database   # a web request's connection
    python -m tests.integration.partition_drill broker     # a Celery worker's consumer

Environment: DRILL_SERVICE_NS (the service namespace), DRILL_SERVICE_LINK (its end of the
pair), DRILL_SERVICE_ADDRESS (its address). Prints one JSON line: what happened and when."""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.private_services import PrivatePostgres, PrivateRedis

ROOT = Path(__file__).resolve().parents[2]
NS = os.environ.get("DRILL_SERVICE_NS", "")
LINK = os.environ.get("DRILL_SERVICE_LINK", "")
HOST = os.environ.get("DRILL_SERVICE_ADDRESS", "127.0.0.1")
IN_NS = ["ip", "netns", "exec", NS]


def _wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{HOST}:{port} did not come up")


class NsPostgres(PrivatePostgres):
    """The private cluster, run in the service namespace on its veth address."""

    def __init__(self):
        super().__init__()
        self.as_postgres = [*IN_NS, *self.as_postgres]

    def init(self) -> "NsPostgres":
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "--no-sync", "-E", "UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {HOST}/16 trust\n")
        return self.start()

    def start(self) -> "NsPostgres":
        options = (
            f"-p {self.port} -c listen_addresses={HOST} -k {self.dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "-t", "60", "start",
        )  # fmt: skip
        _wait_port(self.port)
        return self

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{database}"


class NsRedis(PrivateRedis):
    def start(self) -> "NsRedis":
        self.process = subprocess.Popen(
            [
                *IN_NS, shutil.which("redis-server") or "redis-server", "--port", str(self.port),
                "--bind", HOST, "--protected-mode", "no", "--save", "", "--appendonly", "no",
                "--dir", str(self.dir),
            ],
            stdout=(self.dir / "redis.log").open("a"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        _wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"


class Cut:
    """The service namespace's end of the pair down (every packet dropped) while on."""

    def _link(self, state: str) -> None:
        subprocess.run([*IN_NS, "ip", "link", "set", LINK, state], check=True)

    def on(self) -> None:
        self._link("down")

    def off(self) -> None:
        self._link("up")


def _django(env: dict) -> None:
    os.environ.update(env)
    import django

    django.setup()


def database() -> dict:
    """The request cycle of a web process (decision 0014's health check, then the request's
    queries) on a connection whose path to PostgreSQL is cut after it was opened."""
    server = NsPostgres().init()
    try:
        _django({"DATABASE_URL": server.url("postgres"), "REDIS_URL": ""})
        from django.db import OperationalError, close_old_connections, connection

        def request() -> tuple[str, float]:
            """What Django does around a request: close_old_connections() at its start and
            end (CONN_MAX_AGE, CONN_HEALTH_CHECKS), one query in between."""
            started = time.monotonic()
            close_old_connections()
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
                    cursor.fetchone()
                outcome = "ok"
            except OperationalError as exc:
                outcome = f"OperationalError: {str(exc).strip()[:200]}"
            finally:
                close_old_connections()
            return outcome, round(time.monotonic() - started, 1)

        before = request()
        connection_before = id(connection.connection)
        cut = Cut()
        cut.on()
        try:
            during = request()
            # A new connection while the path is still cut: DATABASE_CONNECT_TIMEOUT.
            during_connect = request()
        finally:
            cut.off()
        after = request()
        return {
            "before": before,
            "during": during,
            "during_connect": during_connect,
            "after": after,
            "reconnected": id(connection.connection) != connection_before,
        }
    finally:
        with contextlib.suppress(Exception):
            from django.db import connection

            connection.close()
        server.destroy()


def broker(cut_seconds: float = 30.0) -> dict:
    """A Celery worker (the Procfile's housekeeping worker: prefork, no gossip, mingle or
    heartbeat) consuming from Redis; the path to Redis is cut for `cut_seconds` while it
    waits in BRPOP, then restored. A task sent afterwards must reach it: the consumer noticed the
    dead connection and reconnected."""
    redis = NsRedis().start()
    log = Path(redis.dir) / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tracker.settings",
        "DJANGO_SECRET_KEY": "partition-drill",
        "DJANGO_ENV_FILE": "/nonexistent",
        "DATABASE_URL": f"sqlite:///{redis.dir}/unused.sqlite3",
        "REDIS_URL": redis.url,
    }
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "tracker", "worker", "--loglevel=INFO",
            "--pool=prefork", "--concurrency=1", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "-Q", "housekeeping", "-n", "drill@%h",
        ],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        _django({"DATABASE_URL": env["DATABASE_URL"], "REDIS_URL": redis.url})
        from tracker.celery import app

        deadline = time.monotonic() + 120
        while " ready." not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        first = app.send_task("tracker.heartbeat", queue="housekeeping").id
        ran_before = _wait_in_log(log, first, 60)
        time.sleep(2)  # the consumer back in BRPOP
        cut = Cut()
        cut.on()
        time.sleep(cut_seconds)
        cut.off()
        restored = time.monotonic()
        second = app.send_task("tracker.heartbeat", queue="housekeeping").id
        ran_after = _wait_in_log(log, second, 120)
        return {
            "ran_before": ran_before is not None,
            "ran_after_restore_s": None if ran_after is None else round(ran_after - restored, 1),
            "log": [
                line
                for line in log.read_text().splitlines()
                if any(word in line for word in ("WARNING", "Cannot connect", "Connected to"))
            ][-20:],
        }
    finally:
        with contextlib.suppress(Exception):
            os.killpg(worker.pid, 9)
            worker.wait(timeout=10)
        redis.destroy()


def _wait_in_log(log: Path, task_id: str, timeout: float) -> float | None:
    """When the worker logged that it received the task `task_id` (monotonic), or None: the
    consumer got the message (the task itself fails here: no database, none needed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f"{task_id}] received" in log.read_text():
            return time.monotonic()
        time.sleep(0.2)
    return None


if __name__ == "__main__":
    scenario = sys.argv[1]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracker.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "partition-drill")
    os.environ["DJANGO_ENV_FILE"] = "/nonexistent"
    result = {"database": database, "broker": broker}[scenario]()
    print(json.dumps(result))
