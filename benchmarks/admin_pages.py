"""Benchmark: the admin's four busiest pages at 100,000 tasks, for a coordinator and a firm user.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tracker_bench python -m benchmarks.admin_pages

Uses the (scratch!) database DATABASE_URL names: migrates it and, once, adds a plan of
100,000 tasks (`--tasks`) led by 20 firms (benchmarks.api_list's data), a coordinator of the
plan's ministry (coordinator.kr-like) and a manager of the first firm (samsung-like: leads
5,000 of the tasks and supports 5,000 others). Then it signs each in and, round after round,
requests every page once for both users (interleaved, so a load change on the machine touches
all of them alike), and prints each page's median and query count. Targets (issue 11): under
300 ms and at most 20 queries. It is a script, not a test: it asserts nothing.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracker.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-not-a-secret")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
# The test client speaks plain HTTP: no redirect to HTTPS with DEBUG off.
os.environ.setdefault("DJANGO_SSL_REDIRECT_BY_PROXY", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402

from benchmarks.api_list import ensure_data  # noqa: E402
from plans import services  # noqa: E402
from plans.models import Task  # noqa: E402
from tracker.models import Membership, Organization, User  # noqa: E402
from tracker.services import system_user  # noqa: E402

# Pages link their stylesheets: serve the names as they are (no collectstatic manifest needed).
settings.STORAGES["staticfiles"]["BACKEND"] = (
    "django.contrib.staticfiles.storage.StaticFilesStorage"
)

PLAN_CODE = "BENCH-ADMIN"
TASKS = 100_000
TARGET_MS, TARGET_QUERIES = 300, 20


def ensure_users(total: int):
    plan, coordinator = ensure_data(total, plan_code=PLAN_CODE, username="bench.admin.kr")
    firm_user, created = User.objects.get_or_create(username="bench.admin.firm")
    if created or not Membership.objects.filter(user=firm_user).exists():
        services.membership_create(
            actor=system_user(),
            user=firm_user,
            organization=Organization.objects.get(name="Benchmark Company 0"),
            role="manager",
        )
    coordinator.refresh_from_db()
    firm_user.refresh_from_db()
    return plan, coordinator, firm_user


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=TASKS)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--profile",
        metavar="PAGE",
        help="instead of timing, profile PAGE (e.g. 'task changelist') for both viewers with "
        "pyinstrument, --repeat requests each, and print where the time goes",
    )
    args = parser.parse_args(argv)

    call_command("migrate", verbosity=0)
    plan, coordinator, firm_user = ensure_users(args.tasks)
    firm = Organization.objects.get(name="Benchmark Company 0")
    firm_task = Task.objects.filter(plan=plan, lead_organization=firm).order_by("pk").first()

    pages = {
        "task changelist": reverse("admin:plans_task_changelist"),
        "plan changelist": reverse("admin:plans_plan_changelist"),
        "plan change page": reverse("admin:plans_plan_change", args=[plan.pk]),
        "task change page": reverse("admin:plans_task_change", args=[firm_task.pk]),
    }
    viewers = {"coordinator": coordinator, "firm user": firm_user}
    clients = {}
    for label, user in viewers.items():
        clients[label] = Client()
        clients[label].force_login(user)

    runs = [(label, name) for name in pages for label in viewers]
    queries = {}
    for label, name in runs:  # warm-up, status check and query count
        with CaptureQueriesContext(connection) as captured:
            response = clients[label].get(pages[name])
        if response.status_code != 200:
            print(f"{label}, {name}: GET {pages[name]} answered {response.status_code}")
            return 1
        queries[label, name] = len(captured)
    if args.profile:
        return profile(clients, pages, args.profile, args.repeat)
    samples = {run: [] for run in runs}
    for _ in range(args.repeat):
        for label, name in runs:
            started = time.perf_counter()
            response = clients[label].get(pages[name])
            samples[label, name].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (label, name, response.status_code)

    tasks = Task.objects.filter(plan=plan).count()
    print(f"database: {connection.vendor}, tasks in plan: {tasks}, rounds: {args.repeat}; "
          f"coordinator: {coordinator.username} (coordinating ministry), firm user: "
          f"{firm_user.username} (manager of {firm.name})")  # fmt: skip
    print(f"targets: under {TARGET_MS} ms and at most {TARGET_QUERIES} queries")
    print(f"{'page':<20} {'viewer':<12} {'median ms':>10} {'queries':>8}  met")
    for label, name in runs:
        median = statistics.median(samples[label, name])
        count = queries[label, name]
        met = "yes" if median < TARGET_MS and count <= TARGET_QUERIES else "NO"
        print(f"{name:<20} {label:<12} {median:>10.1f} {count:>8}  {met}")
    return 0


def profile(clients, pages, name, repeat) -> int:
    from pyinstrument import Profiler

    if name not in pages:
        print(f"no page {name!r}; pages: {', '.join(pages)}")
        return 1
    for label, client in clients.items():
        profiler = Profiler(interval=0.0005)
        profiler.start()
        for _ in range(repeat):
            client.get(pages[name])
        profiler.stop()
        print(f"=== {name}, {label}, {repeat} requests")
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
