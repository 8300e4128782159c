"""Benchmark: one page of the task list through the full stack, against a fair floor.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tracker_bench python -m benchmarks.api_list
    ... python -m benchmarks.api_list --http     # also over HTTP: gunicorn vs a WSGI floor

Uses the (scratch!) database DATABASE_URL names: migrates it, and adds 100,000 tasks to a
plan of its own if they are not there yet (a few minutes, once): a ministry coordinates it,
20 firms lead and support its tasks. Two readers: a coordinator of the ministry (like
coordinator.kr: sees every task) and a contributor of one firm (like samsung: sees the tasks
it leads or supports, a tenth of them). For each, in one run and with samples interleaved
(API, floor, API, floor, ... so a change of load on the machine touches both alike), it times

- the API: GET /api/v1/tasks/?status=in_progress&ordering=due_date&page_size=50 with a bearer
  token, through Django's full request stack (middleware, authentication, throttles, policy
  scope, filters, cursor pagination, serialization, JSON rendering), in-process;
- the floor: the token looked up (one query, its secret's HMAC checked), then the same 50 rows
  and fields with one hand-written SQL query carrying the reader's scope (memberships as
  subqueries, supporting organizations as EXISTS), encoded with orjson: the same rows for
  each reader as the API's;

and prints both medians and their ratio (target <= 2.0), then `q=` and `ordering=priority`
against the unfiltered list (target <= 1.5), and GET /api/v1/users/me/ against its floor.
With `--http`, gunicorn (2 sync workers) serves the project and a minimal WSGI app serves the
floor, side by side; a client with 2 threads alternates between them and the script prints the
requests/s of each and their ratio (target >= 0.5). It is a script, not a test: it asserts
nothing.
"""

import argparse
import datetime as dt
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracker.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-not-a-secret")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("API_THROTTLE_TOKEN", "100000000/minute")
os.environ.setdefault("API_THROTTLE_USER", "100000000/minute")
# As in production: DEBUG off (a local .env turns it on), plain HTTP behind "a proxy".
os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DJANGO_SSL_REDIRECT_BY_PROXY", "1")

import django  # noqa: E402

django.setup()

import orjson  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402

from plans import services  # noqa: E402
from plans.models import Plan, Task  # noqa: E402
from tracker import tokens  # noqa: E402
from tracker.models import Membership, Organization, User  # noqa: E402
from tracker.services import api_token_create, system_user  # noqa: E402

PLAN_CODE = "BENCH-100K"
TASKS = 100_000
URL = "/api/v1/tasks/?status=in_progress&ordering=due_date&page_size=50"
SEARCH_URL = "/api/v1/tasks/?q=B-01234&page_size=50"
PRIORITY_URL = "/api/v1/tasks/?status=in_progress&ordering=-priority&page_size=50"
ME_URL = "/api/v1/users/me/"
FIRM_USER = "bench.firm"
STATUSES = ["planned", "in_progress", "at_risk", "blocked", "done", "verified", "cancelled"]


def ensure_data(
    total: int, plan_code: str = PLAN_CODE, username: str = "bench.coordinator"
) -> tuple[Plan, User]:
    system = system_user()
    ministry, _ = Organization.objects.get_or_create(
        name="Benchmark Ministry", defaults={"kind": "ministry", "country": "KR"}
    )
    companies = [
        Organization.objects.get_or_create(
            name=f"Benchmark Company {i}", defaults={"kind": "company", "country": "KR"}
        )[0]
        for i in range(20)
    ]
    plan = Plan.objects.filter(code=plan_code).first()
    if plan is None:
        plan = services.plan_create(
            actor=system, code=plan_code, title="Benchmark plan", coordinating=[ministry],
            members=companies, period_start=dt.date(2025, 1, 1), period_end=dt.date(2027, 12, 31),
        )  # fmt: skip
    user, created = User.objects.get_or_create(username=username)
    if created:
        services.membership_create(
            actor=system, user=user, organization=ministry, role="coordinator"
        )
    have = Task.objects.filter(plan=plan).count()
    if have < total:
        print(f"creating {total - have} tasks (once)...", flush=True)
        support = Task.supporting_organizations.through
        start = dt.date(2025, 1, 1)
        batch = 5000
        for offset in range(have, total, batch):
            with transaction.atomic():
                rows = []
                for n in range(offset, min(offset + batch, total)):
                    due = start + dt.timedelta(days=n % 1000)
                    status = STATUSES[n % len(STATUSES)]
                    rows.append(
                        Task(
                            plan=plan,
                            ref=f"B-{n:06d}",
                            title=f"Benchmark task {n}",
                            lead_organization=companies[n % len(companies)],
                            due_date=due,
                            deadline_at=Task.deadline_for(due, plan.time_zone),
                            status=status,
                            progress=100 if status in ("done", "verified") else n % 100,
                            priority=["low", "normal", "high", "critical"][n % 4],
                        )  # fmt: skip
                    )
                created_tasks = Task.objects.bulk_create(rows)
                support.objects.bulk_create(
                    support(task_id=t.pk, organization_id=companies[(i + 1) % 20].pk)
                    for i, t in enumerate(created_tasks)
                )
            print(f"  {min(offset + batch, total)}/{total}", flush=True)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("ANALYZE")
    return plan, user


def ensure_firm_user(username: str = FIRM_USER) -> User:
    """A contributor of Benchmark Company 0 (like samsung: its own tasks and those it supports)."""
    company = Organization.objects.get(name="Benchmark Company 0")
    user, created = User.objects.get_or_create(username=username)
    if created:
        services.membership_create(
            actor=system_user(), user=user, organization=company, role="contributor"
        )
    return user


# The token lookup the API makes (the token and its user, by the token's prefix).
TOKEN_SQL = """
SELECT k.id, k.key_hash, k.expires_at, k.revoked_at, u.id, u.is_active
FROM tracker_apitoken k JOIN tracker_user u ON u.id = k.user_id
WHERE k.prefix = %s
"""
# The reader's VIEW scope, as the policy states it, in plain SQL (%(u)s: the reader's id).
SCOPE_SQL = """(
  t.plan_id IN (SELECT pp.plan_id FROM plans_planparticipant pp
                JOIN tracker_membership m ON m.organization_id = pp.organization_id
                WHERE m.user_id = %(u)s AND m.role = 'coordinator' AND pp.role = 'coordinating')
  OR t.lead_organization_id IN (SELECT m.organization_id FROM tracker_membership m
                                WHERE m.user_id = %(u)s)
  OR EXISTS (SELECT 1 FROM plans_task_supporting_organizations s
             JOIN tracker_membership m ON m.organization_id = s.organization_id
             WHERE s.task_id = t.id AND m.user_id = %(u)s)
  OR ((t.assignee_id = %(u)s OR t.manager_id = %(u)s)
      AND t.plan_id IN (SELECT pp.plan_id FROM plans_planparticipant pp
                        JOIN tracker_membership m ON m.organization_id = pp.organization_id
                        WHERE m.user_id = %(u)s AND pp.role = 'coordinating'))
  OR (t.visibility = 'plan'
      AND t.plan_id IN (SELECT pp.plan_id FROM plans_planparticipant pp
                        JOIN tracker_membership m ON m.organization_id = pp.organization_id
                        WHERE m.user_id = %(u)s))
)"""
FLOOR_SQL = f"""
SELECT t.id, t.plan_id, p.code, t.workstream_id, t.ref, COALESCE(t.title_en, t.title_ko),
       t.title_en, t.title_ko, COALESCE(t.description_en, t.description_ko, ''),
       t.description_en, t.description_ko, t.lead_organization_id,
       ARRAY(SELECT s.organization_id FROM plans_task_supporting_organizations s
             WHERE s.task_id = t.id ORDER BY 1),
       ARRAY(SELECT o.outcome_id FROM plans_task_source_outcomes o
             WHERE o.task_id = t.id ORDER BY 1),
       t.assignee_id, t.manager_id, t.parent_id,
       ARRAY(SELECT d.to_task_id FROM plans_task_depends_on d
             WHERE d.from_task_id = t.id ORDER BY 1),
       t.start_date, t.due_date, p.time_zone, t.deadline_at, t.status, t.priority, t.progress,
       t.visibility, (t.status IN ('planned', 'in_progress', 'at_risk', 'blocked')
                      AND t.deadline_at <= now()),
       t.completed_at, t.verified_at, t.version, t.created_at, t.updated_at
FROM plans_task t JOIN plans_plan p ON p.id = t.plan_id
WHERE t.status = 'in_progress' AND {SCOPE_SQL}
ORDER BY t.due_date, t.id
LIMIT 51
"""
KEYS = [
    "id", "plan", "plan_code", "workstream", "ref", "title", "title_en", "title_ko",
    "description", "description_en", "description_ko", "lead_organization",
    "supporting_organizations", "source_outcomes", "assignee", "manager", "parent",
    "depends_on", "start_date", "due_date", "time_zone", "deadline_at", "status", "priority",
    "progress", "visibility", "is_overdue", "completed_at", "verified_at", "version",
    "created_at", "updated_at",
]  # fmt: skip
ME_SQL = """
SELECT u.id, u.username, u.first_name, u.last_name, u.email, u.time_zone, u.language
FROM tracker_user u WHERE u.id = %s
"""
ME_MEMBERSHIPS_SQL = """
SELECT m.id, m.organization_id, m.role FROM tracker_membership m WHERE m.user_id = %s
ORDER BY m.id
"""


def token_user(cursor, raw: str) -> int | None:
    """The floor's authentication: the token row and its user, the secret's HMAC checked."""
    prefix, secret = tokens.parse(raw)
    cursor.execute(TOKEN_SQL, [prefix])
    row = cursor.fetchone()
    if row is None or not tokens.matches(secret, row[1]) or row[3] is not None or not row[5]:
        return None
    return row[4]


def floor_page(raw_token: str) -> bytes:
    with connection.cursor() as cursor:
        user_id = token_user(cursor, raw_token)
        cursor.execute(FLOOR_SQL, {"u": user_id})
        rows = cursor.fetchall()
    results = [dict(zip(KEYS, row, strict=True)) for row in rows[:50]]
    return orjson.dumps({"next": "cursor" if len(rows) > 50 else None, "results": results})


def floor_me(raw_token: str) -> bytes:
    with connection.cursor() as cursor:
        user_id = token_user(cursor, raw_token)
        cursor.execute(ME_SQL, [user_id])
        me = dict(zip(["id", "username", "first_name", "last_name", "email", "time_zone",
                       "language"], cursor.fetchone(), strict=True))  # fmt: skip
        cursor.execute(ME_MEMBERSHIPS_SQL, [user_id])
        me["memberships"] = [
            {"id": i, "organization": o, "role": r} for i, o, r in cursor.fetchall()
        ]
    return orjson.dumps(me)


def interleaved(fns: dict, repeat: int) -> dict[str, float]:
    """Median ms of each function, sampled in turn (a, b, c, a, b, c, ...)."""
    for fn in fns.values():  # warm-up
        for _ in range(max(3, repeat // 10)):
            fn()
    samples = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def api_call(client, url):
    def once():
        response = client.get(url)
        assert response.status_code == 200, response.content[:300]
        return response.content

    return once


# --- Over HTTP -----------------------------------------------------------------------------

FLOOR_APP = '''
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracker.settings")
import django
django.setup()
from benchmarks import api_list


def application(environ, start_response):
    """The floor as a WSGI app: the token, the scoped page, orjson: nothing else."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    body = api_list.floor_page(auth.split()[1])
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


def serve(args: list[str], port: int, env: dict) -> subprocess.Popen:
    gunicorn = shutil.which("gunicorn") or os.path.join(os.path.dirname(sys.executable), "gunicorn")
    process = subprocess.Popen(
        [gunicorn, "--workers", "2", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
         *args],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/")
            conn.getresponse().read()
            return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"gunicorn did not start on port {port}")


def hammer(port: int, path: str, token: str, seconds: float, threads: int = 2) -> float:
    """Requests/s a client with `threads` threads gets for `seconds` (each waits for its
    answer before sending the next, a new connection each time: sync workers close them)."""
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def run(slot):
        while time.monotonic() < stop:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
            conn.close()
            counts[slot] += 1

    started = time.monotonic()
    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.monotonic() - started)


def over_http(tokens_by_reader: dict, port: int, rounds: int, seconds: float) -> None:
    env = {**os.environ, "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver"}
    env.setdefault("DJANGO_SSL_REDIRECT_BY_PROXY", "1")
    folder = tempfile.mkdtemp(prefix="api_list_floor_")
    with open(os.path.join(folder, "floor_app.py"), "w") as handle:
        handle.write(FLOOR_APP)
    floor_env = {**env, "PYTHONPATH": os.pathsep.join([folder, os.getcwd()])}
    project = serve(["tracker.wsgi:application"], port, env)
    floor = serve(["floor_app:application"], port + 1, floor_env)
    try:
        for reader, token in tokens_by_reader.items():
            hammer(port, URL, token, 1.0)  # warm-up
            hammer(port + 1, URL, token, 1.0)
            api, low = [], []
            for _ in range(rounds):  # alternate, so load drift touches both
                api.append(hammer(port, URL, token, seconds))
                low.append(hammer(port + 1, URL, token, seconds))
            a, f = statistics.median(api), statistics.median(low)
            print(f"HTTP {reader:11s} API {a:7.1f} req/s   floor {f:7.1f} req/s   "
                  f"ratio {a / f:.2f}  (target >= 0.5; gunicorn 2 sync workers, 2 client "
                  f"threads, {rounds} x {seconds:.0f} s each)")  # fmt: skip
    finally:
        for process in (project, floor):
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=TASKS)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--http", action="store_true", help="also over HTTP (gunicorn)")
    parser.add_argument("--port", type=int, default=8010, help="gunicorn ports: this and +1")
    parser.add_argument("--rounds", type=int, default=5, help="HTTP rounds per reader")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per HTTP round")
    args = parser.parse_args(argv)

    call_command("migrate", verbosity=0)
    plan, coordinator = ensure_data(args.tasks)
    firm = ensure_firm_user()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Statistics, and the search indexes' pending entries (GIN's fast update list)
            # merged, as autovacuum does on a live database after bulk inserts.
            cursor.execute("VACUUM ANALYZE plans_task")
    readers = {"coordinator": coordinator, "firm": firm}
    raw_tokens, clients = {}, {}
    for name, user in readers.items():
        _, raw = api_token_create(actor=user, user=user, name="benchmark", scope="read")
        raw_tokens[name] = raw
        clients[name] = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")

    tasks = Task.objects.filter(plan=plan).count()
    options = str(connection.settings_dict.get("OPTIONS", {}).get("options", ""))
    print(f"database: {connection.vendor}, tasks in plan: {tasks}, repeats: {args.repeat}, "
          f"JIT: {'off' if 'jit=off' in options else 'on'}")  # fmt: skip
    for name, client in clients.items():
        first = client.get(URL)
        if first.status_code != 200:
            print(f"API answered {first.status_code}: {first.content[:300]!r}")
            return 1
        api_rows = first.json()["results"]
        floor_rows = orjson.loads(floor_page(raw_tokens[name]))["results"]
        same = [row["id"] for row in api_rows] == [row["id"] for row in floor_rows]
        result = interleaved(
            {
                "api": api_call(client, URL),
                "floor": lambda name=name: floor_page(raw_tokens[name]),
                "q": api_call(client, SEARCH_URL),
                "priority": api_call(client, PRIORITY_URL),
                "me": api_call(client, ME_URL),
                "me_floor": lambda name=name: floor_me(raw_tokens[name]),
            },
            args.repeat,
        )
        api, floor = result["api"], result["floor"]
        visible = Membership.objects.filter(user=readers[name]).count()
        print(f"\n{name} ({visible} membership(s)): {len(api_rows)} rows per page, floor "
              f"{len(floor_rows)}, same rows: {same}")  # fmt: skip
        print(f"  API   median {api:7.2f} ms  (GET {URL})")
        print(f"  floor median {floor:7.2f} ms  (token lookup + one scoped SQL query + orjson)")
        print(f"  ratio        {api / floor:7.2f}  (target <= 2.0)")
        print(f"  q=           {result['q']:7.2f} ms  ratio to the list {result['q'] / api:.2f}"
              f"  (GET {SEARCH_URL}; target <= 1.5)")  # fmt: skip
        print(
            f"  priority     {result['priority']:7.2f} ms  ratio to the list "
            f"{result['priority'] / api:.2f}  (GET {PRIORITY_URL}; target <= 1.5)"
        )
        print(f"  users/me     {result['me']:7.2f} ms  floor {result['me_floor']:.2f} ms  ratio "
              f"{result['me'] / result['me_floor']:.2f}")  # fmt: skip
    if args.http:
        print()
        over_http(raw_tokens, args.port, args.rounds, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
