"""Benchmark: each workspace page at 10,000 tasks, next to the API's task list, in one run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tracker_bench python -m benchmarks.pages

Uses the (scratch!) database DATABASE_URL names: migrates it and, once, adds a plan of 10,000
tasks (`--tasks`) led by 20 firms, a forum whose 20 outcomes are the sources of 1,000 of them,
and 50 notifications for the plan's coordinator. Then it signs the coordinator in and, round
after round, requests every page once (pages and the API interleaved, so a load change on the
machine touches all of them alike), and prints for each page its median, its query count and
its ratio to the API's task list page (GET /api/v1/tasks/?plan=...&page_size=50, the same
session). It is a script, not a test: it asserts nothing.
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
# The test client speaks plain HTTP: no redirect to HTTPS with DEBUG off.
os.environ.setdefault("DJANGO_SSL_REDIRECT_BY_PROXY", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from benchmarks.api_list import ensure_data  # noqa: E402
from notifications.models import Notification  # noqa: E402
from plans.models import Forum, Outcome, Task  # noqa: E402
from tracker.models import Organization  # noqa: E402

# Pages link their stylesheets: serve the names as they are (no collectstatic manifest needed).
settings.STORAGES["staticfiles"]["BACKEND"] = (
    "django.contrib.staticfiles.storage.StaticFilesStorage"
)

PLAN_CODE = "BENCH-PAGES"
TASKS = 10_000
OUTCOMES = 20
LINKED = 1_000
NOTIFICATIONS = 50


def ensure_pages_data(total: int):
    plan, user = ensure_data(total, plan_code=PLAN_CODE, username="bench.pages")
    forum = Forum.objects.filter(name="Benchmark forum").first()
    if forum is None:
        with transaction.atomic():
            forum = Forum.objects.create(
                name="Benchmark forum", kind="ministerial", held_on=dt.date(2025, 6, 1)
            )
            ministry = Organization.objects.get(name="Benchmark Ministry")
            outcomes = Outcome.objects.bulk_create(
                Outcome(forum=forum, kind="commitment", title=f"Benchmark outcome {n}")
                for n in range(OUTCOMES)
            )
            Outcome.parties.through.objects.bulk_create(
                Outcome.parties.through(outcome_id=o.pk, organization_id=ministry.pk)
                for o in outcomes
            )
            link = Task.source_outcomes.through
            tasks = list(Task.objects.filter(plan=plan).order_by("pk")[:LINKED])
            link.objects.bulk_create(
                link(task_id=t.pk, outcome_id=outcomes[i % OUTCOMES].pk)
                for i, t in enumerate(tasks)
            )
    if not Notification.objects.filter(recipient=user).exists():
        now = timezone.now()
        tasks = list(Task.objects.filter(plan=plan).order_by("pk")[:NOTIFICATIONS])
        Notification.objects.bulk_create(
            Notification(
                recipient=user,
                task=t,
                kind="due_soon",
                due_date=t.due_date,
                step=7,
                dedupe_key=f"bench-pages:{user.pk}:{t.pk}",
                created_at=now,
                due_at=now,
                email_sent_at=now,
            )  # fmt: skip
            for t in tasks
        )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE")
    return plan, user, forum


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=TASKS)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args(argv)

    call_command("migrate", verbosity=0)
    plan, user, forum = ensure_pages_data(args.tasks)
    task = Task.objects.filter(plan=plan, source_outcomes__forum=forum).order_by("pk").first()
    outcome = forum.outcomes.order_by("pk").first()
    client = Client()
    client.force_login(user)

    pages = {
        "API task list (50 rows)": f"/api/v1/tasks/?plan={plan.pk}&page_size=50",
        "home": reverse("workspace:home"),
        "task list": reverse("workspace:tasks") + f"?plan={plan.pk}",
        "task list, sorted by due": reverse("workspace:tasks") + f"?plan={plan.pk}&sort=due",
        "task page": reverse("workspace:task", args=[task.pk]),
        "plan dashboard": reverse("workspace:plan", args=[plan.pk]),
        "plan print view": reverse("workspace:plan-print", args=[plan.pk]),
        "forums": reverse("workspace:forums"),
        "forum page": reverse("workspace:forum", args=[forum.pk]),
        "outcome page": reverse("workspace:outcome", args=[outcome.pk]),
        "inbox": reverse("workspace:inbox"),
    }
    queries = {}
    for name, url in pages.items():  # warm-up, status check and query count
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        if response.status_code != 200:
            print(f"{name}: GET {url} answered {response.status_code}")
            return 1
        queries[name] = len(captured)
    samples = {name: [] for name in pages}
    for _ in range(args.repeat):
        for name, url in pages.items():
            started = time.perf_counter()
            response = client.get(url)
            samples[name].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (name, response.status_code)

    tasks = Task.objects.filter(plan=plan).count()
    print(f"database: {connection.vendor}, tasks in plan: {tasks}, rounds: {args.repeat}, "
          f"viewer: {user.username} (coordinator of the plan)")  # fmt: skip
    floor = statistics.median(samples["API task list (50 rows)"])
    print(f"{'page':<28} {'median ms':>10} {'queries':>8} {'x API list':>11}")
    for name in pages:
        median = statistics.median(samples[name])
        print(f"{name:<28} {median:>10.1f} {queries[name]:>8} {median / floor:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
