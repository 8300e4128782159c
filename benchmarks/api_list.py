"""Benchmark: one page of the task list through the full stack, against a hand-written floor.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tracker_bench python -m benchmarks.api_list

Uses the (scratch!) database DATABASE_URL names: migrates it, and adds 100,000 tasks to a
plan of its own if they are not there yet (a few minutes, once). Then, in one run, it times

- the API: GET /api/v1/tasks/?status=in_progress&ordering=due_date&page_size=50 with a bearer
  token, through Django's full request stack (middleware, authentication, policy scope,
  filters, cursor pagination, serialization, JSON rendering), in-process via the test client;
- the floor: the same 50 rows and fields fetched with one hand-written SQL query and encoded
  with orjson,

and prints both medians and their ratio. It is a script, not a test: it asserts nothing.
"""

import argparse
import datetime as dt
import os
import statistics
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracker.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-not-a-secret")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("API_THROTTLE_TOKEN", "100000000/minute")
os.environ.setdefault("API_THROTTLE_USER", "100000000/minute")

import django  # noqa: E402

django.setup()

import orjson  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402

from plans import services  # noqa: E402
from plans.models import Plan, Task  # noqa: E402
from tracker.models import Organization, User  # noqa: E402
from tracker.services import api_token_create, system_user  # noqa: E402

PLAN_CODE = "BENCH-100K"
TASKS = 100_000
URL = "/api/v1/tasks/?status=in_progress&ordering=due_date&page_size=50"
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


FLOOR_SQL = """
SELECT t.id, t.plan_id, p.code, t.workstream_id, t.ref, t.title, t.description,
       t.lead_organization_id,
       ARRAY(SELECT s.organization_id FROM plans_task_supporting_organizations s
             WHERE s.task_id = t.id ORDER BY 1),
       ARRAY(SELECT o.outcome_id FROM plans_task_source_outcomes o
             WHERE o.task_id = t.id ORDER BY 1),
       t.assignee_id, t.manager_id, t.parent_id,
       ARRAY(SELECT d.to_task_id FROM plans_task_depends_on d
             WHERE d.from_task_id = t.id ORDER BY 1),
       t.start_date, t.due_date, p.time_zone, t.deadline_at, t.status, t.priority, t.progress,
       t.visibility, (t.deadline_at <= now()), t.completed_at, t.verified_at, t.version,
       t.created_at, t.updated_at
FROM plans_task t JOIN plans_plan p ON p.id = t.plan_id
WHERE t.status = 'in_progress'
ORDER BY t.due_date, t.id
LIMIT 51
"""
KEYS = [
    "id", "plan", "plan_code", "workstream", "ref", "title", "description", "lead_organization",
    "supporting_organizations", "source_outcomes", "assignee", "manager", "parent",
    "depends_on", "start_date", "due_date", "time_zone", "deadline_at", "status", "priority",
    "progress", "visibility", "is_overdue", "completed_at", "verified_at", "version",
    "created_at", "updated_at",
]  # fmt: skip


def floor_once() -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(FLOOR_SQL)
        rows = cursor.fetchall()
    results = [dict(zip(KEYS, row, strict=True)) for row in rows[:50]]
    return orjson.dumps({"next": "cursor" if len(rows) > 50 else None, "results": results})


def median_ms(fn, repeat: int) -> float:
    for _ in range(max(3, repeat // 10)):  # warm-up
        fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=TASKS)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)

    call_command("migrate", verbosity=0)
    plan, user = ensure_data(args.tasks)
    _, token = api_token_create(actor=user, user=user, name="benchmark", scope="read")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    first = client.get(URL)
    if first.status_code != 200:
        print(f"API answered {first.status_code}: {first.content[:300]!r}")
        return 1
    api_rows = len(first.json()["results"])
    floor_rows = len(orjson.loads(floor_once())["results"])

    def api_once():
        response = client.get(URL)
        assert response.status_code == 200
        return response.content

    api = median_ms(api_once, args.repeat)
    floor = median_ms(floor_once, args.repeat)
    tasks = Task.objects.filter(plan=plan).count()
    print(f"database: {connection.vendor}, tasks in plan: {tasks}, rows per page: "
          f"{api_rows} (floor {floor_rows}), repeats: {args.repeat}")  # fmt: skip
    print(f"API   median: {api:.2f} ms  (GET {URL})")
    print(f"floor median: {floor:.2f} ms  (one hand-written SQL query + orjson)")
    print(f"ratio: {api / floor:.2f}  (target <= 1.5 on PostgreSQL)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
