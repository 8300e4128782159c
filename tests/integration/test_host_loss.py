"""A worker host killed mid-delivery delays no reminder by more than two minutes, with the
project's DEFAULT lease, requeue and time limits (issue 13, item 2; docs/deploy.md has the
arithmetic: lease 60 s + requeue after 5 s + one tick of 30 s + the send).

Two email "hosts" (two email workers, the Procfile's concurrency each) and the Procfile's
other workers (housekeeping with the one beat) share a private PostgreSQL and Redis
(test_delivery_faults.py's stack). 200 reminders are due in batches of 25. The SMTP server
holds the 21st exchange open; the host whose process is in that exchange is SIGKILLed
(process group: no shutdown, no ack), so nothing it sent was accepted without its stamp. Its
leased rows wait for their lease, the messages it had prefetched stay unacknowledged in
Redis (1-hour visibility timeout): the housekeeping tick enqueues every row again and the
other host sends it. Every Message-ID arrives exactly once, the last within 120 s of the kill.
"""

import asyncio
import email
import os
import subprocess
import time
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller

from tests.integration.conftest import Inbox, Worker, _free_port, wait_for
from tests.integration.test_delivery_faults import (  # noqa: F401 - fixtures
    Stack,
    assert_exactly_once,
    postgres,
    redis,
)

pytestmark = [pytest.mark.integration]

BOUND_SECONDS = 120
# Settings the fault suite shortens; this test runs with the defaults.
SHORTENED = (
    "DELIVERY_REQUEUE_AFTER_SECONDS",
    "DELIVERY_REQUEUE_EVERY_SECONDS",
    "REMINDER_LEASE_SECONDS",
    "EMAIL_TIMEOUT",
)


class PeerInbox(Inbox):
    """The inbox, also noting the client address of the exchange it holds (`held_peer`):
    the hold is decided as in Inbox, after the delay, under the lock."""

    held_peer = None

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        try:
            await asyncio.sleep(self.delay)
            with self.lock:
                hold = self.hold_at is not None and len(self.messages) == self.hold_at
                if hold:
                    self.hold_at = None
                    self.held_peer = tuple(session.peer)
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


@pytest.fixture
def smtp():
    inbox = PeerInbox(delay=0.05, hold_at=20)
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


def _pid_of_local_port(port: int) -> int:
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return int(out.split("pid=", 1)[1].split(",", 1)[0])


def test_a_killed_email_host_delays_no_reminder_past_two_minutes(postgres, redis, smtp, tmp_path):  # noqa: F811
    inbox, port = smtp
    stack = Stack(postgres, redis, port, tmp_path)
    for name in SHORTENED:
        stack.env.pop(name)
    stack.env["DELIVERY_BATCH_SIZE"] = "25"
    try:
        expected = stack.world()["message_ids"]
        host_b = Worker(queue="email", env=stack.env, name="hostb", concurrency=2)
        stack.workers.append(host_b.start())
        stack.start_workers()  # email (host a), webhooks, housekeeping + beat
        host_a = stack.workers[1]
        assert host_a.queue == "email", [w.queue for w in stack.workers]
        assert wait_for(inbox.holding.is_set, timeout=180), stack.output()
        holder = _pid_of_local_port(inbox.held_peer[1])
        group = os.getpgid(holder)
        victim = next(w for w in (host_a, host_b) if w.process.pid == group)
        survivor = host_b if victim is host_a else host_a
        victim.kill()
        killed_at = time.time()
        received_before = len(inbox.message_ids())
        arrived = wait_for(
            lambda: set(inbox.message_ids()) >= set(expected) and stack.finished(),
            timeout=BOUND_SECONDS + 60,
            interval=0.5,
        )
        assert arrived, f"{len(set(inbox.message_ids()))} of {len(expected)}\n{stack.output()}"
        last = max(inbox.accepted_at) - killed_at
        print(f"\nKilled {victim.name or 'host a'} with {received_before} received; the last "
              f"email {last:.1f} s after the kill.")  # fmt: skip
        wait_for(lambda: len(inbox.message_ids()) > len(expected), timeout=3)
        assert_exactly_once(inbox, expected)
        assert last < BOUND_SECONDS, stack.output()
        assert survivor.process.poll() is None
    finally:
        stack.kill_workers()
