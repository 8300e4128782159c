"""Benchmark: reminder emails mailed by one real `celery worker`, against smtplib.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tracker_delivery_bench \\
    REDIS_URL=redis://127.0.0.1:6379/0 python -m benchmarks.delivery

Uses the (scratch!) database DATABASE_URL names and the Redis of REDIS_URL (a private queue,
removed afterwards). It starts a local aiosmtpd server (port `--smtp-port`, default a free
one) in a process of its own (`--sink thread`: in this process, as before), makes N due
reminders (default 2,000: 200 tasks x 10 recipients, each recipient in English or Korean),
and in one run

- floor: sends the same N rendered messages with smtplib over ONE connection to that server,
  before the worker and again after it (the machine's load drifts: the ratio is taken
  against the mean of the two);
- worker: starts `celery -A tracker worker --concurrency 1` (prefork, one pool process) on a
  private notification queue, waits until it is ready, enqueues the N rows as the sweep does
  (one message per DELIVERY_BATCH_SIZE ids, after commit) and times until every row is
  stamped sent and the server has every message.

The sink runs in its own process so that both senders meet it alike: the worker is a process
of its own, and smtplib sending from the sink's own process would share its interpreter lock
with the sink (each slowing the other) while the worker does not.

It prints both rates in emails/s, their ratio (target: the worker at least 0.3x smtplib),
how many SMTP connections the worker opened, and checks every Message-ID arrived exactly
once (exit status 1 otherwise). It is a script, not a test.
"""

import argparse
import contextlib
import datetime as dt
import logging
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracker.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-not-a-secret")

ROOT = Path(__file__).resolve().parents[1]
PLAN_CODE = "BENCH-DELIVERY"
USER_PREFIX = "bench.delivery."
RECIPIENTS = 10


class Sink:
    """aiosmtpd handler: counts messages, their Message-IDs and client connections."""

    def __init__(self):
        self.lock = threading.Lock()
        self.message_ids: list[str] = []
        self.peers: set = set()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        content = envelope.content
        start = content.find(b"Message-ID:")
        if start < 0:
            start = content.find(b"Message-Id:")
        end = content.find(b"\n", start)
        message_id = content[start + 11 : end].strip().decode() if start >= 0 else ""
        with self.lock:
            self.message_ids.append(message_id)
            self.peers.add(tuple(session.peer))
        return "250 OK"

    def reset(self):
        with self.lock:
            self.message_ids.clear()
            self.peers.clear()

    def count(self) -> int:
        with self.lock:
            return len(self.message_ids)


class SinkProcess:
    """The same sink in a process of its own (`--serve-sink PORT FILE`): one line per message,
    "peer<TAB>Message-ID", appended to FILE and flushed; read back here."""

    def __init__(self, port: int, path: Path):
        self.path = path
        path.write_text("")
        self.mark = 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.delivery", "--serve-sink", str(port), str(path)],
            cwd=ROOT,
            start_new_session=True,
        )
        if not wait_for(lambda: _listening(port), timeout=60, interval=0.1):
            self.stop()
            raise RuntimeError("the SMTP sink did not start")

    def _lines(self) -> list[list[str]]:
        lines = self.path.read_text().splitlines()
        return [line.split("\t", 1) for line in lines[self.mark :] if "\t" in line]

    @property
    def message_ids(self) -> list[str]:
        return [message_id for _peer, message_id in self._lines()]

    @property
    def peers(self) -> set[str]:
        return {peer for peer, _message_id in self._lines()}

    def reset(self):
        self.mark = len(self.path.read_text().splitlines())

    def count(self) -> int:
        return len(self._lines())

    def stop(self):
        stop_worker(self.process)


class FileSink(Sink):
    """The sink of the sink process: every message written to a file at once."""

    def __init__(self, path: Path):
        super().__init__()
        self.file = path.open("a", buffering=1)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        answer = await super().handle_DATA(server, session, envelope)
        peer = ":".join(str(part) for part in session.peer)
        self.file.write(f"{peer}\t{self.message_ids[-1]}\n")
        return answer


def serve_sink(port: int, path: Path) -> int:
    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    controller = Controller(FileSink(path), hostname="127.0.0.1", port=port)
    controller.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    controller.stop()
    return 0


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_reminders(total: int) -> list[int]:
    """N due, unsent reminders (deleting the previous run's), their ids."""
    from django.db import transaction
    from django.utils import timezone

    from notifications.models import Notification
    from plans import services
    from plans.models import Plan, Task
    from tracker.models import Organization, User
    from tracker.services import system_user

    system = system_user()
    ministry, _ = Organization.objects.get_or_create(
        name="Delivery bench ministry", defaults={"kind": "ministry", "country": "KR"}
    )
    plan = Plan.objects.filter(code=PLAN_CODE).first()
    if plan is None:
        plan = services.plan_create(
            actor=system, code=PLAN_CODE, title="Delivery benchmark plan",
            coordinating=[ministry], members=[], period_start=dt.date(2025, 1, 1),
            period_end=dt.date(2027, 12, 31),
        )  # fmt: skip
    tasks_needed = -(-total // RECIPIENTS)
    have = Task.objects.filter(plan=plan).count()
    if have < tasks_needed:
        due = dt.date(2026, 6, 1)
        Task.objects.bulk_create(
            Task(
                plan=plan,
                ref=f"D-{n:05d}",
                title=f"Delivery benchmark task {n}",
                title_en=f"Delivery benchmark task {n}",
                title_ko=f"발송 벤치마크 과제 {n}",
                lead_organization=ministry,
                due_date=due,
                deadline_at=Task.deadline_for(due, plan.time_zone),
            )  # fmt: skip
            for n in range(have, tasks_needed)
        )
    users = []
    for n in range(RECIPIENTS):
        user, _ = User.objects.get_or_create(
            username=f"{USER_PREFIX}{n}",
            defaults={
                "email": f"recipient{n}@example.org",
                "language": "ko" if n % 2 else "en",
                "time_zone": "Asia/Seoul" if n % 2 else "America/New_York",
                "first_name": "Bench",
                "last_name": str(n),
            },
        )
        users.append(user)
    tasks = list(Task.objects.filter(plan=plan).order_by("pk")[:tasks_needed])
    now = timezone.now()
    run = uuid.uuid4().hex[:8]
    with transaction.atomic():
        Notification.objects.filter(recipient__username__startswith=USER_PREFIX).delete()
        rows = Notification.objects.bulk_create(
            Notification(
                recipient=users[n % RECIPIENTS],
                task=tasks[n // RECIPIENTS],
                kind="due_soon",
                due_date=tasks[n // RECIPIENTS].due_date,
                step=7,
                dedupe_key=f"bench-delivery:{run}:{n}",
                created_at=now,
                due_at=now,
                next_attempt_at=now,
            )  # fmt: skip
            for n in range(total)
        )
    return [row.pk for row in rows]


def smtplib_floor(ids: list[int], port: int) -> tuple[float, int]:
    """The same messages, rendered beforehand (not timed), sent with smtplib over one
    connection: (seconds, messages)."""
    from notifications import emails
    from notifications.models import Notification

    rows = Notification.objects.select_related(
        "recipient", "recipient__notification_preference", "task", "task__plan"
    ).filter(pk__in=ids)
    rendered = []
    for notification in rows:
        message = emails.build(notification)
        # As Django's SMTP backend sends it.
        data = message.message().as_bytes(linesep="\r\n")
        rendered.append((message.from_email, message.recipients(), data))
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for sender, recipients, data in rendered:
            smtp.sendmail(sender, recipients, data)
    return time.perf_counter() - started, len(rendered)


def start_worker(queue: str, port: int, log: Path) -> subprocess.Popen:
    from django.db import connection

    s = connection.settings_dict
    database_url = (
        f"postgres://{s['USER'] or ''}{':' + s['PASSWORD'] if s.get('PASSWORD') else ''}"
        f"@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "NOTIFICATION_QUEUE": queue,
        "EMAIL_URL": f"smtp://127.0.0.1:{port}",
        "SITE_URL": os.environ.get("SITE_URL", "https://tracker.example.org"),
        "DJANGO_DEBUG": "0",  # as in production (no query log)
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tracker",
            "worker",
            "--loglevel=INFO",
            "--pool=prefork",
            "--concurrency=1",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-Q",
            queue,
            "-n",
            f"{queue}@%h",
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_worker(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_for(predicate, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=2000, help="due reminders to mail")
    parser.add_argument("--smtp-port", type=int, default=0, help="the sink's port (0: free)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for all")
    parser.add_argument(
        "--sink",
        choices=["process", "thread"],
        default="process",
        help="run the SMTP sink in its own process (default) or in this one",
    )
    parser.add_argument("--serve-sink", nargs=2, metavar=("PORT", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_sink:
        return serve_sink(int(args.serve_sink[0]), Path(args.serve_sink[1]))

    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")) or (
        not os.environ.get("REDIS_URL")
    ):
        print(
            "Set DATABASE_URL (a scratch PostgreSQL database) and REDIS_URL, e.g. "
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/tracker_delivery_bench "
            "REDIS_URL=redis://127.0.0.1:6379/0",
            file=sys.stderr,
        )
        return 2
    import django

    django.setup()
    from aiosmtpd.controller import Controller
    from django.conf import settings
    from django.core.management import call_command
    from django.db import transaction

    from notifications import emails, services
    from notifications.models import Notification

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: every command
    call_command("migrate", verbosity=0)
    settings.SITE_URL = os.environ.get("SITE_URL", "https://tracker.example.org")
    port = args.smtp_port or _free_port()
    queue = f"bench-delivery-{uuid.uuid4().hex[:8]}"
    settings.NOTIFICATION_QUEUE = queue
    log = ROOT / "var" / f"bench-delivery-{queue}.log"
    log.parent.mkdir(exist_ok=True)
    if args.sink == "process":
        sink = SinkProcess(port, ROOT / "var" / f"bench-delivery-{queue}.sink")
        controller = sink
    else:
        sink = Sink()
        controller = Controller(sink, hostname="127.0.0.1", port=port)
        controller.start()
    worker = None
    try:
        ids = make_reminders(args.emails)
        floor_seconds, floor_count = smtplib_floor(ids, port)
        floor_before = floor_count / floor_seconds
        wait_for(lambda: sink.count() >= floor_count, timeout=60)
        sink.reset()

        worker = start_worker(queue, port, log)
        if not wait_for(lambda: " ready." in log.read_text(), timeout=120, interval=0.2):
            print("the worker did not start:\n" + log.read_text(), file=sys.stderr)
            return 1
        sent = Notification.objects.filter(pk__in=ids, email_sent_at__isnull=False)
        started = time.perf_counter()
        with transaction.atomic():
            services._enqueue_notifications_on_commit(ids)
        all_sent = wait_for(
            lambda: sink.count() >= len(ids) and sent.count() == len(ids), timeout=args.timeout
        )
        worker_seconds = time.perf_counter() - started
        if not all_sent:
            print(
                f"only {sent.count()} of {len(ids)} stamped sent, {sink.count()} received "
                f"after {args.timeout} s; worker log: {log}",
                file=sys.stderr,
            )
            return 1
        worker_rate = len(ids) / worker_seconds
        keys = Notification.objects.filter(pk__in=ids).values_list("dedupe_key", flat=True)
        expected = {emails.message_id(key) for key in keys}
        counts = Counter(sink.message_ids)
        exactly_once = set(counts) == expected and set(counts.values()) == {1}
        worker_peers = len(sink.peers)
        stop_worker(worker)
        sink.reset()
        floor_seconds, floor_count = smtplib_floor(ids, port)
        floor_after = floor_count / floor_seconds
        floor_rate = (floor_before + floor_after) / 2
        batches = -(-len(ids) // settings.DELIVERY_BATCH_SIZE)
        print(f"emails: {len(ids)}; batches of {settings.DELIVERY_BATCH_SIZE}: {batches}")
        print(f"SMTP sink: {'its own process' if args.sink == 'process' else 'this process'}")
        print(
            f"smtplib, one connection: {floor_rate:.0f} emails/s (before the worker "
            f"{floor_before:.0f}, after {floor_after:.0f}; messages rendered beforehand)"
        )
        print(
            f"celery worker (1 process): {worker_rate:.0f} emails/s ({len(ids)} in "
            f"{worker_seconds:.2f} s, from enqueue to the last stamp; "
            f"{worker_peers} SMTP connections)"
        )
        print(f"ratio: {worker_rate / floor_rate:.2f}  (target >= 0.3)")
        print(f"every Message-ID exactly once: {'yes' if exactly_once else 'NO'}")
        return 0 if exactly_once else 1
    finally:
        if worker is not None:
            stop_worker(worker)
        controller.stop()
        from tracker.celery import app

        with app.connection_for_write() as conn, contextlib.suppress(Exception):
            conn.default_channel.queue_delete(queue)


if __name__ == "__main__":
    sys.exit(main())
