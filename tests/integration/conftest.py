"""A real `celery worker` process over Redis against the test database, and a local SMTP
server (aiosmtpd) for the reminder emails."""

import asyncio
import email
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from email.policy import default as default_policy
from pathlib import Path
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url_of_test_db() -> str:
    s = connection.settings_dict
    auth = quote(s["USER"] or "")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{s['NAME']}"


class Worker:
    """A celery worker subprocess consuming one private queue, in a process group of its own.
    `env`: extra environment variables (settings) of this worker; `name` tells apart the logs
    of several workers on one queue; `concurrency` its pool size; `extra_args` more options
    (e.g. `-B` for an embedded beat)."""

    def __init__(
        self,
        queue: str,
        env: dict[str, str] | None = None,
        name: str = "",
        concurrency: int = 1,
        extra_args: list[str] | None = None,
    ):
        self.queue = queue
        self.env = env or {}
        self.name = name
        self.concurrency = concurrency
        self.extra_args = extra_args or []
        # The xdist process in the name: two processes never write one log (tests/conftest.py).
        process = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self.log = ROOT / "var" / f"test-worker-{queue}{'-' + name if name else ''}-{process}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "Worker":
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tracker.settings",
            "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "integration-test-key"),
            "DATABASE_URL": database_url_of_test_db(),
            # Webhook receivers of the tests listen on http://127.0.0.1 (as in tests/settings.py).
            "WEBHOOK_REQUIRE_HTTPS": "0",
            "WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
            **self.env,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tracker",
                "worker",
                "--loglevel=INFO",
                "--pool=prefork",
                f"--concurrency={self.concurrency}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-Q",
                self.queue,
                "-n",
                f"{self.queue}{'-' + self.name if self.name else ''}@%h",
                *self.extra_args,
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL the whole process group (the main process and its pool): no shutdown, no
        acknowledgement, no clean-up, as when a machine dies."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture
def celery_worker_process():
    worker = Worker(queue=f"test-{uuid.uuid4().hex[:10]}").start()
    try:
        yield worker
    finally:
        worker.stop()


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


# --- SMTP ---------------------------------------------------------------------------------


class Inbox:
    """aiosmtpd handler keeping every message it accepted.

        A message counts as received only when the handler answers 250, and it is recorded right
        before that answer with no await in between. If the client disappears during the DATA
        exchange, aiosmtpd cancels the handler at its await: such a message is never recorded
        (it goes to `cut`). `delay` makes every DATA exchange take that long; `hold_at = n` holds
        the exchange of message n + 1 open (setting `holding`, at `held_at`) until the client goes
        away. `accepted_at` has the wall-clock time of each 250; `peers` the client address and
    port of the SMTP connection each accepted message came over (one per connection)."""

    def __init__(self, delay: float = 0.0, hold_at: int | None = None):
        self.delay = delay
        self.hold_at = hold_at
        self.messages = []
        self.accepted_at: list[float] = []
        self.peers: list = []
        self.cut: list[str] = []
        self.holding = threading.Event()
        self.held_at: float | None = None
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            with self.lock:
                hold = self.hold_at is not None and len(self.messages) == self.hold_at
                if hold:
                    self.hold_at = None  # once
            if hold:
                self.held_at = time.time()
                self.holding.set()
                while True:  # until the client disappears (cancelled)
                    await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            with self.lock:
                self.cut.append(message["Message-ID"])
            raise
        with self.lock:
            self.messages.append((envelope.rcpt_tos, message))
            self.accepted_at.append(time.time())
            self.peers.append(tuple(session.peer) if session.peer else None)
        return "250 Message accepted for delivery"

    def message_ids(self) -> list[str]:
        with self.lock:
            return [message["Message-ID"] for _rcpt, message in self.messages]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    """A local SMTP server in a thread: (inbox, port)."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


@pytest.fixture
def reminder_queue(monkeypatch, settings, smtp_server) -> str:
    """A private queue that is the notification queue of this process and of the workers it
    starts, whose email goes to the local SMTP server."""
    _inbox, port = smtp_server
    queue = f"test-rem-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("NOTIFICATION_QUEUE", queue)
    monkeypatch.setenv("EMAIL_URL", f"smtp://127.0.0.1:{port}")
    monkeypatch.setenv("SITE_URL", "https://tracker.example.org")
    settings.NOTIFICATION_QUEUE = queue
    settings.SITE_URL = "https://tracker.example.org"
    return queue


@pytest.fixture
def reminder_worker(reminder_queue):
    """A worker on the reminder queue."""
    worker = Worker(queue=reminder_queue).start()
    try:
        yield worker
    finally:
        worker.stop()
