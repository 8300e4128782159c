"""Several worker "hosts" on one machine: network namespaces joined by a bridge of their own.

Used by tests/integration/test_multihost.py (a host cut off, a host killed) and by
benchmarks/scale_out.py (emails/s with 1, 2 and 3 hosts). Needs root (`ip netns`, veth,
bridge), the PostgreSQL server binaries and `redis-server`; `unavailable()` says why a
cluster cannot be made here.

Layout: an unusual private /24, 10.213.47.0/24, only on the cluster's own bridge; no default
route, so nothing inside reaches out, and the root namespace has no address on the bridge;
every namespace knows the others' MAC addresses (permanent neighbour entries, no ARP).


    services  10.213.47.2   PostgreSQL (initdb in a temporary folder, as the postgres user),
                            Redis, an aiosmtpd sink recording every Message-ID with its
                            arrival time and the address it came from, and exactly one
                            `celery beat` (the Procfile's)
    host1..N  10.213.47.11+ the Procfile's workers (email, webhooks, housekeeping), each with
                            concurrency 1, named <queue>@hostN

Every process runs from this checkout with the project's default settings; the caller's
environment is passed on, so a setting exported before the run (REMINDER_LEASE_SECONDS=90,
...) reaches every process. A fault is made from outside: `cut(host)` disables the host's
port on the bridge, so every frame from or to it is dropped, both ways, silently (no reset, no
"host unreachable": the neighbour entries are permanent, so no failed ARP tells the sockets;
they just wait, as across a partition; `tc ... netem loss 100%` would do the same, but this
machine's kernel, which CI's is like, has no netem), `restore(host)` enables the port again,
`kill(host)` SIGKILLs every process of the host's namespace.

Everything the cluster made (namespaces, bridge, processes, temporary folders) is removed by
`down()`, also after a failure (`with Cluster(...) as cluster:`). Logs stay under
var/multihost-<label>/ for a look after a failed run. The first cluster of a checkout runs
the migrations (a minute or more) and keeps a copy of the migrated PostgreSQL cluster under
var/multihost-cache/, used while the migrations and the installed packages stay the same.

The module is also the command run inside the namespaces: `python -m
tests.integration.multihost sink|seed` (the SMTP sink; making and enqueueing due reminders);
`... faults [--wait 900]` (as root) runs the test's two faults and prints how late the last
email came, however late, without asserting anything.
"""

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUBNET = "10.213.47"  # unusual on purpose; only on the cluster's bridge
SERVICES_IP = f"{SUBNET}.2"
PG_PORT, REDIS_PORT, SMTP_PORT = 5432, 6379, 2525
DATABASE = "tracker"
SITE_URL = "https://tracker.example.org"
NAME_PREFIX = "jtmh"  # namespaces jtmh<tag>s, jtmh<tag>h1 ...; bridge jtmh<tag>br

# Environment of the test process that must not reach the cluster's processes.
_NOT_PASSED_ON = (
    "DATABASE_URL",
    "REDIS_URL",
    "EMAIL_URL",
    "NOTIFICATION_QUEUE",
    "WEBHOOK_QUEUE",
    "HOUSEKEEPING_QUEUE",
    "CELERY_TASK_ALWAYS_EAGER",
    "DJANGO_SETTINGS_MODULE",
)


class ClusterError(RuntimeError):
    pass


def _bin_dir() -> Path:
    venv = ROOT / ".venv" / "bin"
    return venv if (venv / "python").exists() else Path(sys.executable).parent


def _postgres_bin() -> Path | None:
    from tests.integration.private_services import postgres_bin

    return postgres_bin()


def _run(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode:
        raise ClusterError(f"{shlex.join(args)}: exit {done.returncode}\n{done.stderr.strip()}")
    return done


AS_POSTGRES = ["runuser", "-u", "postgres", "--"]


def _schema_key() -> str:
    """What a migrated database depends on: every migration of the checkout, the installed
    packages (Django's and the libraries' own migrations) and the PostgreSQL version."""
    import hashlib
    from importlib import metadata

    digest = hashlib.sha256(str(_postgres_bin()).encode())
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + path.read_bytes())
    packages = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
    digest.update("\n".join(packages).encode())
    return digest.hexdigest()[:16]


def unavailable() -> str:
    """Why no cluster can be made here ("" when one can): not root, a tool missing, or the
    kernel refusing network namespaces (a probe namespace is made and removed)."""
    if os.geteuid() != 0:
        return "needs root (ip netns, veth, bridge)"
    for tool in ("ip", "bridge", "redis-server", "redis-cli", "runuser"):
        if not shutil.which(tool):
            return f"`{tool}` not found"
    if _postgres_bin() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not found"
    probe = f"{NAME_PREFIX}probe{uuid.uuid4().hex[:6]}"
    try:
        made = _run("ip", "netns", "add", probe, check=False)
        if made.returncode:
            return f"cannot make a network namespace: {made.stderr.strip()}"
        veth = _run(
            "ip", "link", "add", probe[:15], "type", "veth", "peer", "name", "p" + probe[:14],
            check=False,
        )  # fmt: skip
        if veth.returncode:
            return f"cannot make a veth pair: {veth.stderr.strip()}"
        _run("ip", "link", "del", probe[:15], check=False)
    finally:
        _run("ip", "netns", "del", probe, check=False)
    return ""


def procfile() -> dict[str, list[str]]:
    """The Procfile's processes: {name: argv}."""
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if ":" in line and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = shlex.split(command)
    return entries


def _procfile_command(argv: list[str], host: str) -> list[str]:
    """A Procfile command for `host`: this checkout's venv, concurrency 1, the host's name in
    place of %h (the namespaces share the machine's hostname)."""
    out = []
    for arg in argv:
        if arg.startswith(".venv/bin/"):
            arg = str(_bin_dir() / arg.removeprefix(".venv/bin/"))
        elif arg.startswith("--concurrency="):
            arg = "--concurrency=1"
        arg = arg.replace("%h", host)
        out.append(arg)
    return out


@dataclass
class Arrival:
    message_id: str
    at: float
    host: str


@dataclass
class RunResult:
    expected: list[str]
    arrivals: list[Arrival]
    enqueued_at: float
    fault: str = ""
    fault_host: str = ""
    fault_at: float | None = None
    leased_at_fault: int | None = None
    state: dict = field(default_factory=dict)

    @property
    def counts(self) -> Counter:
        return Counter(a.message_id for a in self.arrivals)

    def per_host(self) -> dict[str, int]:
        return dict(sorted(Counter(a.host for a in self.arrivals).items()))

    @property
    def missing(self) -> list[str]:
        counts = self.counts
        return [m for m in self.expected if not counts[m]]

    @property
    def repeated(self) -> list[str]:
        return [m for m, n in self.counts.items() if n > 1]

    @property
    def unexpected(self) -> list[str]:
        expected = set(self.expected)
        return [m for m in self.counts if m not in expected]

    @property
    def last_at(self) -> float | None:
        return max((a.at for a in self.arrivals), default=None)

    @property
    def duration(self) -> float:
        return (self.last_at or self.enqueued_at) - self.enqueued_at

    @property
    def last_after_fault(self) -> float | None:
        if self.fault_at is None or self.last_at is None:
            return None
        return self.last_at - self.fault_at

    def late(self) -> list[tuple[str, float]]:
        """Arrivals after the fault: (host, seconds after the fault), in order."""
        if self.fault_at is None:
            return []
        return [(a.host, a.at - self.fault_at) for a in self.arrivals if a.at > self.fault_at]

    def summary(self) -> str:
        lines = [
            f"emails expected {len(self.expected)}, received {len(self.arrivals)}, "
            f"missing {len(self.missing)}, twice or more {len(self.repeated)}, "
            f"unexpected {len(self.unexpected)}",
            f"per host: {self.per_host()}",
            f"duration (enqueue to last email): {self.duration:.1f} s",
        ]
        if self.fault_at is not None:
            before = sum(1 for a in self.arrivals if a.at <= self.fault_at)
            last = self.last_after_fault
            lines.append(
                f"fault: {self.fault} {self.fault_host} at "
                f"{self.fault_at - self.enqueued_at:.1f} s after enqueue, "
                f"{before} emails received by then, "
                f"rows leased and unsent at the fault: {self.leased_at_fault}"
            )
            late: dict[str, list[float]] = {}
            for host, seconds in self.late():
                late.setdefault(host, []).append(seconds)
            after = ", ".join(
                f"{host} {len(times)} ({min(times):.1f}-{max(times):.1f} s)"
                for host, times in sorted(late.items())
            )
            lines.append(
                "last email "
                + (f"{last:.1f} s after the fault" if last is not None else "never")
                + f"; after the fault: {after or 'none'}"
            )
        if self.state:
            lines.append(f"database: {self.state}")
        return "\n".join(lines)


class Cluster:
    """A services namespace and `hosts` worker namespaces on their own bridge."""

    def __init__(self, hosts: int = 2, label: str = "test", env: dict[str, str] | None = None):
        self.tag = uuid.uuid4().hex[:5]
        self.bridge = f"{NAME_PREFIX}{self.tag}br"
        self.services = f"{NAME_PREFIX}{self.tag}s"
        self.hosts = [f"host{i}" for i in range(1, hosts + 1)]
        self.namespace = {"services": self.services}
        self.namespace.update(
            {h: f"{NAME_PREFIX}{self.tag}h{i}" for i, h in enumerate(self.hosts, 1)}
        )
        self.address = {"services": SERVICES_IP}
        self.address.update({h: f"{SUBNET}.{10 + i}" for i, h in enumerate(self.hosts, 1)})
        self.host_of_address = {ip: name for name, ip in self.address.items()}
        self.veth = {name: f"{NAME_PREFIX}{self.tag}v{i}" for i, name in enumerate(self.namespace)}
        self.tmp = Path(tempfile.mkdtemp(prefix="tracker-multihost-"))
        self.pg_dir: Path | None = None
        self.logs = ROOT / "var" / f"multihost-{label}"
        self.extra_env = env or {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.arrivals_file = self.tmp / "arrivals.jsonl"
        self.hold_file = self.tmp / "hold"  # the address whose next exchange the sink holds
        self.holding_file = self.tmp / "holding"  # written by the sink when it holds one
        self.psql = str((_postgres_bin() or Path("/usr/bin")) / "psql")
        self._made_bridge = False
        self._made_namespaces: list[str] = []
        self._cut: set[str] = set()

    # --- set-up and tear-down -----------------------------------------------------------

    def __enter__(self) -> "Cluster":
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    def up(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for old in self.logs.glob("*.log"):
            old.unlink()
        self._network()
        self._postgres()
        self._start("redis", "services", [
            shutil.which("redis-server"), "--bind", SERVICES_IP, "--port", str(REDIS_PORT),
            "--save", "", "--appendonly", "no", "--protected-mode", "no",
            "--dir", str(self.tmp),
        ])  # fmt: skip
        self._start("sink", "services", [
            str(_bin_dir() / "python"), "-m", "tests.integration.multihost", "sink",
            "--bind", SERVICES_IP, "--port", str(SMTP_PORT), "--out", str(self.arrivals_file),
            "--hold", str(self.hold_file), "--holding", str(self.holding_file),
        ])  # fmt: skip
        self._wait(lambda: "ready" in self.log("sink"), 60, "the SMTP sink did not start")
        self._wait(
            lambda: _run(*self._in("services"), "redis-cli", "-h", SERVICES_IP, "-p",
                         str(REDIS_PORT), "ping", check=False).stdout.strip() == "PONG",
            30, "Redis did not answer",
        )  # fmt: skip
        beat = _procfile_command(procfile()["beat"], "services")
        # Its schedule file in the cluster's folder, not the checkout's var/.
        self._start("beat", "services", [*beat, "--schedule", str(self.tmp / "beat-schedule")])

    def _network(self) -> None:
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        self._made_bridge = True
        _run("ip", "link", "set", self.bridge, "up")
        for name, ns in self.namespace.items():
            _run("ip", "netns", "add", ns)
            self._made_namespaces.append(ns)
            veth, peer = self.veth[name], self.veth[name] + "p"
            _run("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
            _run("ip", "link", "set", peer, "netns", ns)
            _run("ip", "-n", ns, "link", "set", peer, "name", "eth0")
            _run("ip", "-n", ns, "addr", "add", f"{self.address[name]}/24", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            _run("ip", "link", "set", veth, "master", self.bridge, "up")
        mac = {}
        for name, ns in self.namespace.items():
            (link,) = json.loads(_run("ip", "-n", ns, "-j", "link", "show", "eth0").stdout)
            mac[name] = link["address"]
        for name, ns in self.namespace.items():
            for other in self.namespace:
                if other != name:
                    _run(
                        "ip", "-n", ns, "neigh", "replace", self.address[other],
                        "lladdr", mac[other], "dev", "eth0", "nud", "permanent",
                    )  # fmt: skip

    def _postgres(self) -> None:
        """initdb and migrate, or a copy of the cluster migrated by an earlier run of this
        checkout (var/multihost-cache/, keyed on the migrations and the installed packages)."""
        self.pg_dir = Path(tempfile.mkdtemp(prefix="tracker-multihost-pg-"))
        shutil.chown(self.pg_dir, "postgres", "postgres")
        data = self.pg_dir / "data"
        cached = ROOT / "var" / "multihost-cache" / f"pgdata-{_schema_key()}"
        if cached.is_dir():
            _run("cp", "-a", str(cached), str(data))
            self._pg_ctl("start")
            return
        _run(
            *AS_POSTGRES, str(_postgres_bin() / "initdb"), "-D", str(data), "-A", "trust",
            "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {SUBNET}.0/24 trust\n")
        self._pg_ctl("start")
        self.sql_admin(f'CREATE DATABASE "{DATABASE}"')
        self.python("manage.py", "migrate", "--noinput", "-v", "0", timeout=900)
        self._pg_ctl("stop")
        cached.parent.mkdir(parents=True, exist_ok=True)
        for old in cached.parent.glob("pgdata-*"):
            if "." not in old.name:  # not another run's copy in progress
                shutil.rmtree(old, ignore_errors=True)
        partial = cached.with_name(cached.name + f".{self.tag}")
        _run("cp", "-a", str(data), str(partial))
        try:
            partial.rename(cached)
        except OSError:  # another run stored it first
            shutil.rmtree(partial, ignore_errors=True)
        self._pg_ctl("start")

    def _pg_ctl(self, action: str) -> None:
        options = (
            f"-p {PG_PORT} -c listen_addresses={SERVICES_IP} -k {self.pg_dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        more = ["-o", options, "-l", str(self.pg_dir / "server.log")] if action == "start" else []
        _run(
            *self._in("services"), *AS_POSTGRES, str(_postgres_bin() / "pg_ctl"),
            "-D", str(self.pg_dir / "data"), *more, "-m", "fast", "-w", "-t", "60", action,
        )  # fmt: skip

    def down(self) -> None:
        """Remove everything, whatever state it is in: each step on its own."""
        for ns in list(self._made_namespaces):
            with contextlib.suppress(Exception):
                self._kill_namespace(ns)
        for process in self.processes.values():
            with contextlib.suppress(Exception):
                process.wait(timeout=10)
        # The links first: a namespace whose last process is gone is freed by the kernel
        # later (its veth's root end then lingers for a while, seen once).
        for veth in self.veth.values():
            _run("ip", "link", "del", veth, check=False)
        for ns in list(self._made_namespaces):
            with contextlib.suppress(Exception):
                _run("ip", "netns", "del", ns)
                self._made_namespaces.remove(ns)
        if self._made_bridge:
            with contextlib.suppress(Exception):
                _run("ip", "link", "del", self.bridge)
                self._made_bridge = False
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.pg_dir is not None:
            shutil.rmtree(self.pg_dir, ignore_errors=True)

    def _kill_namespace(self, ns: str) -> None:
        pids = _run("ip", "netns", "pids", ns, check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)

    # --- processes ----------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _NOT_PASSED_ON}
        env.update(
            DJANGO_SETTINGS_MODULE="tracker.settings",
            DATABASE_URL=f"postgres://postgres@{SERVICES_IP}:{PG_PORT}/{DATABASE}",
            REDIS_URL=f"redis://{SERVICES_IP}:{REDIS_PORT}/0",
            EMAIL_URL=f"smtp://{SERVICES_IP}:{SMTP_PORT}",
            SITE_URL=SITE_URL,
            DJANGO_DEBUG="0",
            DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY") or "multihost-not-a-secret",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def _in(self, name: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace[name]]

    def _start(self, key: str, where: str, argv: list[str]) -> subprocess.Popen:
        process = subprocess.Popen(
            [*self._in(where), *argv],
            cwd=ROOT,
            env=self.env(),
            stdout=(self.logs / f"{key}.log").open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[key] = process
        return process

    def log(self, key: str) -> str:
        path = self.logs / f"{key}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs_tail(self, lines: int = 15) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(out)

    @staticmethod
    def _wait(predicate, timeout: float, message: str, interval: float = 0.2) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(interval)
        if not predicate():
            raise ClusterError(message)

    def python(self, *args: str, where: str = "services", timeout: float = 300) -> str:
        """`python *args` in a namespace (from the checkout); its stdout."""
        done = subprocess.run(
            [*self._in(where), str(_bin_dir() / "python"), *args],
            cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if done.returncode:
            raise ClusterError(f"python {shlex.join(args)}: exit {done.returncode}\n{done.stderr}")
        return done.stdout

    def sql_admin(self, sql: str, database: str = "postgres") -> str:
        return _run(
            *self._in("services"), self.psql, "-h", SERVICES_IP, "-p", str(PG_PORT),
            "-U", "postgres", "-d", database, "-tAqc", sql,
        ).stdout.strip()  # fmt: skip

    def sql(self, sql: str) -> str:
        return self.sql_admin(sql, DATABASE)

    def start_workers(self, hosts: list[str] | None = None) -> None:
        """The Procfile's workers on each of `hosts` (all by default), waiting until ready."""
        hosts = hosts or self.hosts
        entries = {n: argv for n, argv in procfile().items() if "worker" in argv}
        for host in hosts:
            for name, argv in entries.items():
                key = f"{host}-{name}"
                (self.logs / f"{key}.log").write_text("")
                self._start(key, host, _procfile_command(argv, host))
        for host in hosts:
            for name in entries:
                key = f"{host}-{name}"
                self._wait(
                    lambda key=key: " ready." in self.log(key), 180,
                    f"worker {key} did not start:\n{self.log(key)[-3000:]}",
                )  # fmt: skip

    def stop_workers(self) -> None:
        """Every worker on every host gone (SIGKILL: nothing of theirs matters any more)."""
        for host in self.hosts:
            self.restore(host)
            self._kill_namespace(self.namespace[host])
        for key, process in list(self.processes.items()):
            if key.startswith("host"):
                with contextlib.suppress(Exception):
                    process.wait(timeout=20)
                del self.processes[key]

    def reset(self) -> None:
        """Between runs: no worker, an empty broker, no reminder rows (the next `seed`
        deletes them), a new count of arrivals."""
        self.stop_workers()
        _run(*self._in("services"), "redis-cli", "-h", SERVICES_IP, "-p", str(REDIS_PORT),
             "FLUSHALL")  # fmt: skip

    # --- faults -------------------------------------------------------------------------

    def cut(self, host: str) -> None:
        """Drop every frame from or to `host`, silently: its bridge port disabled."""
        _run("bridge", "link", "set", "dev", self.veth[host], "state", "0")
        self._cut.add(host)

    def restore(self, host: str) -> None:
        if host in self._cut:
            _run("bridge", "link", "set", "dev", self.veth[host], "state", "3")  # forwarding
            self._cut.discard(host)

    def kill(self, host: str) -> None:
        """SIGKILL every process of `host` (as when the machine dies)."""
        self._kill_namespace(self.namespace[host])

    # --- a delivery run -----------------------------------------------------------------

    def arrivals(self) -> list[Arrival]:
        if not self.arrivals_file.exists():
            return []
        out = []
        for line in self.arrivals_file.read_text().splitlines():
            with contextlib.suppress(ValueError):
                row = json.loads(line)
                out.append(
                    Arrival(row["id"], row["t"], self.host_of_address.get(row["peer"], row["peer"]))
                )
        return out

    def leased_unsent(self) -> int:
        return int(
            self.sql(
                "SELECT count(*) FROM notifications_notification WHERE email_sent_at IS NULL "
                "AND email_failed_at IS NULL AND next_attempt_at > now()"
            )
        )

    def db_state(self) -> dict:
        rows = self.sql(
            "SELECT (email_sent_at IS NOT NULL)::int, (email_failed_at IS NOT NULL)::int, "
            "attempts, count(*) FROM notifications_notification GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        )
        state = {"sent": 0, "failed": 0, "open": 0, "attempts": {}}
        for line in rows.splitlines():
            sent, failed, attempts, count = (int(x) for x in line.split("|"))
            key = "sent" if sent else "failed" if failed else "open"
            state[key] += count
            state["attempts"][attempts] = state["attempts"].get(attempts, 0) + count
        return state

    def deliver(
        self,
        emails: int,
        *,
        fault: str = "",
        fault_host: str = "host1",
        fault_after: float = 1 / 3,
        cut_seconds: float = 60,
        wait_after_fault: float = 150,
        timeout: float = 600,
        settle: float = 3.0,
    ) -> RunResult:
        """Make `emails` due reminders, enqueue them as the sweep does, and wait until every
        one arrived (then `settle` seconds more, for any repeat) or the time is up: `timeout`
        after the enqueue, or `wait_after_fault` after a fault. `fault`: "cut" (`fault_host`
        cut off for `cut_seconds`, then restored) or "kill", once `fault_after` of the emails
        arrived, while the sink holds an SMTP exchange of `fault_host` open (before its 250;
        see `_sink`)."""
        self.arrivals_file.write_text("")
        for stale in (self.hold_file, self.holding_file):
            stale.unlink(missing_ok=True)
        seeded = self.python("-m", "tests.integration.multihost", "seed", "--emails", str(emails))
        answer = json.loads(seeded.strip().splitlines()[-1])
        result = RunResult(
            expected=answer["message_ids"], arrivals=[], enqueued_at=answer["enqueued_at"]
        )
        expected = set(result.expected)
        deadline = result.enqueued_at + timeout
        restore_at = None
        holding_since = 0.0
        while time.time() < deadline:
            arrivals = self.arrivals()
            if fault and result.fault_at is None and len(arrivals) >= emails * fault_after:
                if not self.hold_file.exists():
                    # The sink holds the next exchange of `fault_host` open, before its 250.
                    self.hold_file.write_text(self.address[fault_host])
                    holding_since = time.time()
                elif time.time() - holding_since > 60:
                    raise ClusterError(f"{fault_host} sent nothing more to hold")
                if self.holding_file.exists():
                    if fault == "cut":
                        self.cut(fault_host)
                        restore_at = time.time() + cut_seconds
                    else:
                        self.kill(fault_host)
                    result.fault, result.fault_host, result.fault_at = (
                        fault,
                        fault_host,
                        time.time(),
                    )
                    result.leased_at_fault = self.leased_unsent()
                    deadline = min(deadline, result.fault_at + wait_after_fault)
            if restore_at is not None and time.time() >= restore_at:
                self.restore(fault_host)
                restore_at = None
            if restore_at is None and expected <= {a.message_id for a in arrivals}:
                time.sleep(settle)
                break
            time.sleep(0.1)
        if restore_at is not None:
            self.restore(fault_host)
        result.arrivals = self.arrivals()
        result.state = self.db_state()
        return result


# --- commands run inside the namespaces ----------------------------------------------------


def _sink(bind: str, port: int, out: Path, hold: Path, holding: Path) -> None:
    """An SMTP server recording each accepted message (one JSON line: Message-ID, arrival
    time, client address), written and flushed before the 250 answer.

    When the file `hold` names a client address, the next DATA exchange from it is held open
    (no answer, not recorded; `holding` written) until the client goes away, once: a fault
    made then finds that client inside an exchange, before any 250, with every earlier email
    of its batch answered and stamped. (A fault between a 250 and its stamp would make the
    one repeat no design avoids: the SMTP server has the email, the row says unsent, it is
    sent again after the lease with the same Message-ID; tests/integration/
    test_reminders_kill.py holds its kill out of that window the same way.)"""
    import asyncio

    from aiosmtpd.controller import Controller

    lock = __import__("threading").Lock()

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            if hold.exists() and not holding.exists() and hold.read_text() == session.peer[0]:
                holding.write_text(str(time.time()))
                while True:  # until the client disappears (aiosmtpd cancels this handler)
                    await asyncio.sleep(0.05)
            content = envelope.content
            start = content.find(b"\nMessage-ID:")
            if start < 0:
                start = content.find(b"\nMessage-Id:")
            end = content.find(b"\n", start + 1)
            message_id = content[start + 12 : end].strip().decode() if start >= 0 else ""
            line = json.dumps({"id": message_id, "t": time.time(), "peer": session.peer[0]})
            with lock, out.open("a") as file:
                file.write(line + "\n")
            return "250 OK"

    controller = Controller(Handler(), hostname=bind, port=port)
    controller.start()
    print("ready", flush=True)
    stop = __import__("threading").Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()


def _seed(emails: int) -> None:
    """`emails` due reminders (the previous run's deleted), enqueued after commit as the
    sweep does (one message per DELIVERY_BATCH_SIZE ids); prints their Message-IDs and the
    time of the enqueue as JSON."""
    import django

    django.setup()
    from django.db import transaction

    from benchmarks.delivery import make_reminders
    from notifications import emails as notification_emails
    from notifications import services
    from notifications.models import Notification

    ids = make_reminders(emails)
    keys = Notification.objects.filter(pk__in=ids).values_list("dedupe_key", flat=True)
    message_ids = [notification_emails.message_id(key) for key in keys]
    enqueued_at = time.time()
    with transaction.atomic():
        services._enqueue_notifications_on_commit(ids)
    print(json.dumps({"message_ids": message_ids, "enqueued_at": enqueued_at}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Commands run inside the cluster.")
    commands = parser.add_subparsers(dest="command", required=True)
    sink = commands.add_parser("sink")
    sink.add_argument("--bind", required=True)
    sink.add_argument("--port", type=int, required=True)
    sink.add_argument("--out", type=Path, required=True)
    sink.add_argument("--hold", type=Path, required=True)
    sink.add_argument("--holding", type=Path, required=True)
    seed = commands.add_parser("seed")
    seed.add_argument("--emails", type=int, required=True)
    faults = commands.add_parser(
        "faults", help="(as root, outside) the test's two runs, waiting longer, no assertions"
    )
    faults.add_argument("--emails", type=int, default=1000)
    faults.add_argument("--wait", type=float, default=900, help="seconds after the fault")
    args = parser.parse_args(argv)
    if args.command == "sink":
        _sink(args.bind, args.port, args.out, args.hold, args.holding)
    elif args.command == "seed":
        _seed(args.emails)
    else:
        if reason := unavailable():
            print(f"cannot build the cluster: {reason}", file=sys.stderr)
            return 2
        with Cluster(hosts=2, label="faults") as cluster:
            for fault in ("cut", "kill"):
                cluster.reset()
                cluster.start_workers()
                result = cluster.deliver(args.emails, fault=fault, wait_after_fault=args.wait)
                print(f"--- {fault}\n{result.summary()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
