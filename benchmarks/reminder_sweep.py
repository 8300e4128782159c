"""Benchmark: the reminder sweep over a million tasks, against a hand-written floor.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tracker_sweep_bench \\
        python -m benchmarks.reminder_sweep

Uses the (scratch!) PostgreSQL database DATABASE_URL names, and only it: migrates it and, once,
fills it with set-based SQL (a few minutes for 1,000,000 tasks; reused while the counts match,
`--rebuild` makes it again). At the fixed instant NOW about 10,000 reminders are due: due
soon, due today, overdue (with escalations to managers and coordinators) and awaiting
verification, to recipients in eight time zones, under default and custom plan policies.

Then, in one run, starting each time from an empty notifications table, it times

- the sweep as beat runs it: `notifications.services.reminders_sweep(now=NOW)`, which also
  enqueues the new rows after commit, one message per DELIVERY_BATCH_SIZE ids, on the broker
  CELERY_BROKER_URL names (Redis with REDIS_URL), to a private queue purged after each run;
- the sweep without enqueueing (`enqueue=False`, as `send_reminders` runs it), for reference;
- the floor: ONE hand-written `INSERT ... SELECT ... ON CONFLICT (dedupe_key) DO NOTHING
  RETURNING id` making the same rows, written from `notifications/schedule.py`'s rules (not
  from the sweep's code, so that the two check each other),

prints both medians, their ratio and the rows per kind, and checks that both made the same
rows (recipient, task, kind, due date, step, due_at, dedupe key); a mismatch is printed row by
row, with what `schedule.due_reminders` says, and the exit status is 1. It is a script, not a
test. The sweep reads every task in the database: use a database of its own.
"""

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections import Counter

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracker.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-not-a-secret")

# The benchmark instant: 03:30 UTC is 09:00 sharp in Kolkata (a reminder due "at" now is
# due), 12:30 in Seoul and Tokyo, 16:30 in Auckland (summer time), 04:30 in Berlin and 23:30
# the day before in New York, two days after its switch to summer time.
NOW = dt.datetime(2026, 3, 10, 3, 30, tzinfo=dt.UTC)
TASKS = 1_000_000
# Tasks placed around NOW (due within three weeks, overdue, done lately); the rest are closed
# or due months ahead. About 3 reminders each: ~10,000 rows.
HOT_TASKS = 3_350
DATA_VERSION = 2  # bump when the generator changes: old data is then rebuilt

ORG_PREFIX = "Sweep bench org "
USER_PREFIX = "sweep."
MINISTRIES = 6  # organizations 1..6; their members 1 and 2 are coordinators, 3 a manager
COMPANIES = 400  # organizations 7..406: a manager, contributors, sometimes a viewer
# Recipients' zones, weighted (Seoul and New York most).
USER_ZONES = [
    "Asia/Seoul", "Asia/Seoul", "Asia/Seoul", "Asia/Seoul", "America/New_York",
    "America/New_York", "America/New_York", "UTC", "Europe/Berlin", "Asia/Kolkata",
    "America/Los_Angeles", "Asia/Tokyo", "Pacific/Auckland",
]  # fmt: skip
# code, plan time zone, coordinating organizations, percent of the tasks
PLANS = [
    ("SWEEP-A", "Asia/Seoul", [1, 2], 30),
    ("SWEEP-B", "America/New_York", [2], 20),
    ("SWEEP-C", "UTC", [3], 10),
    ("SWEEP-D", "Europe/Berlin", [4], 10),
    ("SWEEP-E", "Pacific/Auckland", [5, 6], 8),
    ("SWEEP-F", "Asia/Tokyo", [6], 10),
    ("SWEEP-G", "Asia/Seoul", [1, MINISTRIES + 2], 7),  # a company without coordinators
    ("SWEEP-H", "America/New_York", [], 5),  # nobody coordinates: escalations reach no one
]
# Plans with a ReminderPolicy row (the others follow the settings' defaults).
POLICIES = {
    "SWEEP-C": {
        "before_days": [30, 7, 2],
        "overdue_every_days": 3,
        "escalate_manager_after_days": 1,
        "escalate_coordinators_after_days": None,
        "verification_reminder_after_days": 2,
        "due_to_lead_organization": False,
        "due_to_manager": True,
        "due_to_coordinators": True,
        "overdue_to_manager": False,
        "overdue_to_coordinators": True,
    },
    "SWEEP-D": {},  # a row that says what the defaults say
    "SWEEP-E": {
        "before_days": [],
        "overdue_every_days": 0,
        "escalate_manager_after_days": 0,
        "escalate_coordinators_after_days": 5,
        "verification_reminder_after_days": None,
        "overdue_to_assignee": False,
        "overdue_to_lead_organization": False,
        "overdue_to_manager": False,
        "overdue_to_coordinators": True,
    },
    "SWEEP-F": {
        "before_days": [3, 0],
        "escalate_coordinators_after_days": 7,
        "verification_reminder_after_days": 0,
        "due_to_manager": True,
    },
}


def h(salt: int, modulus: int, of: str = "g") -> str:
    """SQL for a deterministic pseudo-random integer in [0, modulus) drawn from `of`."""
    return f"mod(hashint8extended({of}::bigint, {salt}) & 2147483647, {modulus})::int"


def _marker(tasks: int) -> str:
    return f"Reminder sweep benchmark data v{DATA_VERSION}: {tasks} tasks"


# --- Data ----------------------------------------------------------------------------------


def _have_data(cursor, tasks: int) -> bool:
    cursor.execute("SELECT description FROM plans_plan WHERE code = %s", [PLANS[0][0]])
    row = cursor.fetchone()
    if row is None or row[0] != _marker(tasks):
        return False
    cursor.execute(
        "SELECT count(*) FROM plans_task t JOIN plans_plan p ON p.id = t.plan_id "
        "WHERE p.code LIKE 'SWEEP-%%'",
        [],
    )
    have_tasks = cursor.fetchone()[0]
    cursor.execute(
        "SELECT count(*) FROM tracker_organization WHERE name LIKE %s", [f"{ORG_PREFIX}%"]
    )
    have_orgs = cursor.fetchone()[0]
    cursor.execute("SELECT count(*) FROM plans_plan WHERE code LIKE 'SWEEP-%%'", [])
    have_plans = cursor.fetchone()[0]
    return (have_tasks, have_orgs, have_plans) == (tasks, MINISTRIES + COMPANIES, len(PLANS))


def _delete_data(cursor) -> None:
    bench_tasks = (
        "SELECT t.id FROM plans_task t JOIN plans_plan p ON p.id = t.plan_id "
        "WHERE p.code LIKE 'SWEEP-%%'"
    )
    bench_orgs = "SELECT id FROM tracker_organization WHERE name LIKE 'Sweep bench org %%'"
    bench_users = "SELECT id FROM tracker_user WHERE username LIKE 'sweep.%%'"
    for sql in [
        f"DELETE FROM notifications_notification WHERE task_id IN ({bench_tasks})",
        f"DELETE FROM notifications_notification WHERE recipient_id IN ({bench_users})",
        f"UPDATE notifications_webhookdelivery SET task_id = NULL WHERE task_id IN ({bench_tasks})",
        f"DELETE FROM plans_statusupdate WHERE task_id IN ({bench_tasks})",
        "DELETE FROM plans_task WHERE plan_id IN (SELECT id FROM plans_plan "
        "WHERE code LIKE 'SWEEP-%%')",
        "DELETE FROM notifications_reminderpolicy WHERE plan_id IN (SELECT id FROM plans_plan "
        "WHERE code LIKE 'SWEEP-%%')",
        "DELETE FROM plans_planparticipant WHERE plan_id IN (SELECT id FROM plans_plan "
        "WHERE code LIKE 'SWEEP-%%')",
        "DELETE FROM plans_plan WHERE code LIKE 'SWEEP-%%'",
        f"DELETE FROM tracker_membership WHERE organization_id IN ({bench_orgs}) "
        f"OR user_id IN ({bench_users})",
        f"DELETE FROM tracker_user WHERE id IN ({bench_users})",
        f"DELETE FROM tracker_organization WHERE id IN ({bench_orgs})",
    ]:
        cursor.execute(sql, [])


def _generate(cursor, tasks: int) -> None:
    """Everything in set-based statements; the ids are looked up through temporary maps."""
    from tracker.services import system_user

    system = system_user()
    m, c = MINISTRIES, COMPANIES
    zones = "ARRAY[" + ", ".join(f"'{z}'" for z in USER_ZONES) + "]"
    stride = max(1, tasks // HOT_TASKS)
    now = f"TIMESTAMPTZ '{NOW.isoformat()}'"
    today = f"DATE '{NOW.date().isoformat()}'"

    def run(label: str, sql: str, params=()) -> None:
        started = time.perf_counter()
        cursor.execute(sql, list(params))
        print(
            f"  {label}: {cursor.rowcount} rows, {time.perf_counter() - started:.1f} s", flush=True
        )

    cursor.execute("SET LOCAL synchronous_commit = off")
    cursor.execute("SET LOCAL work_mem = '64MB'")
    run(
        "organizations",
        f"""
        INSERT INTO tracker_organization (name, name_en, acronym, kind, country, website)
        SELECT '{ORG_PREFIX}' || lpad(n::text, 4, '0'), '{ORG_PREFIX}' || lpad(n::text, 4, '0'), '',
               CASE WHEN n <= {m} THEN 'ministry'
                    ELSE (ARRAY['company', 'company', 'company', 'agency', 'association',
                                'research_institute', 'university', 'financial_institution'])
                         [1 + mod(n, 8)] END,
               (ARRAY['KR', 'US', 'JP'])[1 + mod(n, 3)], ''
        FROM generate_series(1, {m + c}) AS n
        """,
    )
    cursor.execute(
        f"""
        CREATE TEMP TABLE sb_org ON COMMIT DROP AS
        SELECT substring(name FROM '[0-9]+$')::int AS n, id
        FROM tracker_organization WHERE name LIKE '{ORG_PREFIX}%%'
        """,
        [],
    )
    # Who is in which organization, as (organization number, member number, role).
    cursor.execute(
        f"""
        CREATE TEMP TABLE sb_member ON COMMIT DROP AS
        SELECT n, j, role, '{USER_PREFIX}o' || n || '.m' || j AS username, NULL::bigint AS user_id
        FROM (
            SELECT n, j, CASE WHEN j <= 2 THEN 'coordinator' ELSE 'manager' END AS role
            FROM generate_series(1, {m}) AS n, generate_series(1, 3) AS j
            UNION ALL
            SELECT o.n, j,
                   CASE WHEN mod(o.n, 40) = 0 THEN 'viewer'
                        WHEN j = 1 THEN 'manager'
                        WHEN j >= 4 AND j = o.k THEN 'viewer'
                        ELSE 'contributor' END
            FROM (SELECT n, CASE WHEN mod(n, 40) = 0 THEN 1 ELSE 2 + mod(n, 4) END AS k
                  FROM generate_series({m + 1}, {m + c}) AS n) AS o,
                 generate_series(1, o.k) AS j
        ) AS x
        """,
        [],
    )
    run(
        "users",
        f"""
        INSERT INTO tracker_user (password, is_superuser, username, first_name, last_name, email,
                                  is_staff, is_active, date_joined, time_zone, language,
                                  is_system, session_epoch)
        SELECT '!sweep-bench', false, username, 'Bench', username,
               CASE WHEN mod(n * 7 + j, 23) = 0 THEN '' ELSE username || '@example.org' END,
               true, mod(n * 5 + j, 17) <> 0, {now} - interval '400 days',
               ({zones})[1 + mod(n * 31 + j * 7, {len(USER_ZONES)})],
               CASE WHEN mod(n, 3) = 0 THEN 'en' ELSE 'ko' END, false, 0
        FROM sb_member
        """,
    )
    cursor.execute(
        "UPDATE sb_member m SET user_id = u.id FROM tracker_user u WHERE u.username = m.username",
        [],
    )
    run(
        "memberships",
        f"""
        INSERT INTO tracker_membership (role, created_at, user_id, organization_id)
        SELECT m.role, {now} - interval '400 days', m.user_id, o.id
        FROM sb_member m JOIN sb_org o ON o.n = m.n
        UNION ALL  -- a coordinator of two ministries (both coordinate plan A)
        SELECT 'coordinator', {now} - interval '300 days', m.user_id, o.id
        FROM sb_member m JOIN sb_org o ON o.n = 2 WHERE m.n = 1 AND m.j = 1
        UNION ALL  -- contributors of a second company
        SELECT 'contributor', {now} - interval '300 days', m.user_id, o.id
        FROM sb_member m JOIN sb_org o ON o.n = m.n + 1
        WHERE m.n > {m} AND m.n < {m + c} AND mod(m.n, 10) = 3 AND m.j = 2
        UNION ALL  -- the system account is never reminded, whatever its memberships say
        SELECT 'contributor', {now} - interval '300 days', {system.pk}, o.id
        FROM sb_org o WHERE o.n = {m + 1}
        """,
    )
    plans = ", ".join(  # tasks with r_plan in [lo, hi) go to the plan
        f"({number}, '{code}', '{zone}', {sum(p[3] for p in PLANS[: number - 1])}, "
        f"{sum(p[3] for p in PLANS[:number])})"
        for number, (code, zone, _, _) in enumerate(PLANS, start=1)
    )
    cursor.execute(
        f"""
        CREATE TEMP TABLE sb_plan ON COMMIT DROP AS
        SELECT * FROM (VALUES {plans}) AS v(pno, code, time_zone, lo, hi)
        """,
        [],
    )
    run(
        "plans",
        f"""
        INSERT INTO plans_plan (code, title, title_en, description, period_start, period_end,
                                status, time_zone, requires_evidence, created_at, updated_at)
        SELECT code, 'Reminder sweep benchmark plan ' || code,
               'Reminder sweep benchmark plan ' || code,
               CASE WHEN pno = 1 THEN %s ELSE '' END, DATE '2019-01-01', DATE '2030-12-31',
               'active', time_zone, false, {now} - interval '2600 days',
               {now} - interval '2600 days'
        FROM sb_plan
        """,
        [_marker(tasks)],
    )
    cursor.execute("ALTER TABLE sb_plan ADD COLUMN id bigint", [])
    cursor.execute("UPDATE sb_plan SET id = p.id FROM plans_plan p WHERE p.code = sb_plan.code", [])
    coordinating = ", ".join(
        f"('{code}', {n})" for code, _, organizations, _ in PLANS for n in organizations
    )
    run(
        "plan participants",
        f"""
        INSERT INTO plans_planparticipant (role, organization_id, plan_id)
        SELECT 'coordinating', o.id, p.id
        FROM (VALUES {coordinating}) AS v(code, n)
        JOIN sb_plan p ON p.code = v.code JOIN sb_org o ON o.n = v.n
        UNION ALL
        SELECT 'member', o.id, p.id
        FROM sb_org o JOIN sb_plan p ON mod(o.n, {len(PLANS)}) + 1 = p.pno
        WHERE o.n > {m} AND NOT EXISTS (
            SELECT 1 FROM (VALUES {coordinating}) AS v(code, n) WHERE v.code = p.code AND v.n = o.n)
        """,
    )
    _policies()
    for table in ("sb_org", "sb_member", "sb_plan"):  # temporary tables have no statistics
        cursor.execute(f"ANALYZE {table}", [])

    # The tasks: three layers (draws; facts; ids), the "created" history row in the same pass.
    def pick(whole: str, *parts: tuple[int, str]) -> str:
        return "CASE " + " ".join(f"WHEN {whole} < {u} THEN '{v}'" for u, v in parts) + " END"

    open_hot = pick(
        "r_status", (45, "in_progress"), (75, "planned"), (90, "at_risk"), (100, "blocked")
    )
    open_cold = pick(
        "r_status", (60, "planned"), (90, "in_progress"), (95, "at_risk"), (100, "blocked")
    )
    run(
        "tasks (+ 'created' status updates)",
        f"""
        WITH draws AS (
            SELECT g, mod(g, {stride}) = 0 AS hot,
                   {h(1, 100)} AS r_plan, {h(2, c)} AS r_org, {h(3, 100)} AS r_asg,
                   {h(4, 5)} AS r_asg_j, {h(5, 100)} AS r_mgr, {h(6, 100)} AS r_cat,
                   {h(7, 100000)} AS r_day, {h(8, 100)} AS r_status, {h(9, 1440)} AS r_min,
                   {h(10, 100)} AS r_new, {h(11, 1000)} AS r_age, {h(12, 28800)} AS r_done
            FROM generate_series(1, {tasks}) AS g
        ),
        kinds AS (
            SELECT d.*,
                   CASE WHEN hot THEN CASE WHEN r_cat < 62 THEN 'open' WHEN r_cat < 80 THEN 'done'
                                           WHEN r_cat < 90 THEN 'verified' ELSE 'cancelled' END
                        ELSE CASE WHEN r_cat < 55 THEN 'verified' WHEN r_cat < 63 THEN 'cancelled'
                                  ELSE 'open' END END AS cat
            FROM draws d
        ),
        facts AS (
            SELECT k.*,
                   CASE WHEN cat = 'open' THEN CASE WHEN hot THEN {open_hot} ELSE {open_cold} END
                        ELSE cat END AS status,
                   -- around NOW: open ones due from 40 days ago to 3 weeks ahead, more of
                   -- them today and yesterday (still before the deadline in New York)
                   CASE WHEN hot THEN {today} + CASE
                           WHEN cat <> 'open' THEN mod(r_day, 30) - 20
                           WHEN mod(r_day, 100) < 12 THEN 0
                           WHEN mod(r_day, 100) < 18 THEN -1
                           ELSE mod(r_day / 100, 62) - 40 END
                        WHEN cat = 'verified' THEN DATE '2019-01-01' + mod(r_day, 2602)
                        WHEN cat = 'cancelled' THEN DATE '2019-01-01' + mod(r_day, 4383)
                        ELSE DATE '2026-05-01' + mod(r_day, 1706) END AS due_date
            FROM kinds k
        ),
        timed AS (
            SELECT f.*,
                   CASE WHEN hot AND cat = 'open' AND due_date >= {today} AND r_new < 15
                            THEN {now} - r_min * interval '12 minutes'
                        WHEN hot
                            THEN {now} - (30 + mod(r_age, 370)) * interval '1 day'
                                 - r_min * interval '1 minute'
                        ELSE LEAST(due_date::timestamp AT TIME ZONE 'UTC'
                                       - (30 + mod(r_age, 700)) * interval '1 day'
                                       + r_min * interval '1 minute',
                                   {now} - interval '1 day' - r_min * interval '1 minute')
                   END AS created_at,
                   CASE WHEN cat = 'done' THEN {now} - r_done * interval '1 minute'
                        WHEN cat = 'verified' AND hot
                            THEN {now} - (10 + mod(r_age, 20)) * interval '1 day'
                                 - r_min * interval '1 minute'
                        WHEN cat = 'verified'
                            THEN due_date::timestamp AT TIME ZONE 'UTC'
                                 - r_min * interval '20 minutes'
                   END AS completed_at
            FROM facts f
        ),
        rows AS (
            SELECT t.*,
                   CASE WHEN cat = 'verified' THEN completed_at + (1 + mod(r_age, 9))
                        * interval '1 day' END AS verified_at,
                   {m} + 1 + r_org AS lead_n,
                   CASE WHEN r_asg < 5 THEN {m} + 1 + mod(r_org + 1, {c})
                        WHEN r_asg < 75 THEN {m} + 1 + r_org END AS asg_n,
                   CASE WHEN r_asg < 5 THEN 2 ELSE 1 + r_asg_j END AS asg_j,
                   CASE WHEN r_mgr < 60 THEN {m} + 1 + r_org
                        WHEN r_mgr < 70 THEN 1 + mod(r_org, {m}) END AS mgr_n,
                   CASE WHEN r_mgr < 60 THEN 1 ELSE 3 END AS mgr_j
            FROM timed t
        ),
        inserted AS (
            INSERT INTO plans_task (
                plan_id, ref, title, title_en, description, lead_organization_id, assignee_id,
                manager_id, start_date, due_date, deadline_at, status, priority, progress,
                visibility, completed_at, verified_at, version, created_at, updated_at)
            SELECT p.id, 'T-' || r.g, 'Benchmark task ' || r.g, 'Benchmark task ' || r.g, '',
                   lead.id, asg.user_id,
                   mgr.user_id, CASE WHEN mod(r.g, 3) = 0 THEN r.due_date - 90 END,
                   r.due_date, (r.due_date + 1)::timestamp AT TIME ZONE p.time_zone, r.status,
                   (ARRAY['low', 'normal', 'normal', 'high', 'critical'])[1 + mod(r.g, 5)],
                   CASE WHEN r.status IN ('done', 'verified') THEN 100 ELSE mod(r.g, 100) END,
                   CASE WHEN mod(r.g, 4) = 0 THEN 'plan' ELSE 'participants' END,
                   r.completed_at, r.verified_at, 1, r.created_at,
                   GREATEST(r.created_at, r.completed_at, r.verified_at)
            FROM rows r
            JOIN sb_plan p ON r.r_plan >= p.lo AND r.r_plan < p.hi
            JOIN sb_org lead ON lead.n = r.lead_n
            LEFT JOIN sb_member asg ON asg.n = r.asg_n AND asg.j = r.asg_j
            LEFT JOIN sb_member mgr ON mgr.n = r.mgr_n AND mgr.j = r.mgr_j
            RETURNING id, created_at
        )
        INSERT INTO plans_statusupdate (created_at, kind, status_from, status_to, note,
                                        evidence_url, task_id)
        SELECT created_at, 'created', '', 'planned', '', '', id FROM inserted
        """,
    )
    # Deadline moves (the anchor of the before-due reminders): a fifth of the tasks around
    # NOW, 2% of the others; some tasks moved twice (the latest move counts).
    run(
        "deadline changes",
        f"""
        WITH t AS (
            SELECT t.id, t.due_date, t.created_at, substr(t.ref, 3)::bigint AS g
            FROM plans_task t JOIN sb_plan p ON p.id = t.plan_id
        ),
        moves AS (
            SELECT id, due_date, g,
                   created_at + ({now} - created_at) * (0.4 + {h(41, 600)} / 1000.0) AS at
            FROM t
            WHERE (mod(g, {stride}) = 0 AND {h(40, 100)} < 20) OR {h(40, 100)} < 2
            UNION ALL
            SELECT id, due_date, g, created_at + ({now} - created_at) * ({h(42, 400)} / 1000.0)
            FROM t
            WHERE mod(g, {stride}) = 0 AND {h(40, 100)} < 8
        )
        INSERT INTO plans_statusupdate (created_at, kind, status_from, status_to, due_date_from,
                                        due_date_to, note, evidence_url, task_id)
        SELECT at, 'deadline_change', '', '', due_date - (1 + {h(43, 20)}), due_date,
               'Benchmark: moved', '', id
        FROM moves
        """,
    )


def _policies() -> None:
    from notifications.models import ReminderPolicy
    from plans.models import Plan

    for code, fields in POLICIES.items():
        row = ReminderPolicy.defaults(Plan.objects.get(code=code).pk)
        for name, value in fields.items():
            setattr(row, name, value)
        row.full_clean(validate_unique=False)
        row.save()


def _check_data(cursor) -> None:
    """deadline_at as Task.deadline_for computes it, on a sample (the model's own rule)."""
    from plans.models import Task

    cursor.execute(
        "SELECT t.due_date, p.time_zone, t.deadline_at FROM plans_task t "
        "JOIN plans_plan p ON p.id = t.plan_id WHERE p.code LIKE 'SWEEP-%%' "
        "AND mod(t.id, 97) = 0 LIMIT 5000",
        [],
    )
    for due_date, zone, deadline_at in cursor.fetchall():
        if Task.deadline_for(due_date, zone) != deadline_at:
            raise SystemExit(f"wrong deadline_at {deadline_at}: due {due_date} in {zone}")


def ensure_data(tasks: int, rebuild: bool) -> None:
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        if not rebuild and _have_data(cursor, tasks):
            print(f"reusing the benchmark data ({tasks} tasks)", flush=True)
            return
    started = time.perf_counter()
    print(f"creating the benchmark data ({tasks} tasks)...", flush=True)
    with transaction.atomic(), connection.cursor() as cursor:
        _delete_data(cursor)
        print(f"  old data removed: {time.perf_counter() - started:.1f} s", flush=True)
        _generate(cursor, tasks)
    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM (ANALYZE) tracker_organization, tracker_user, tracker_membership, plans_plan, "
            "plans_planparticipant, plans_task, plans_statusupdate, notifications_reminderpolicy",
            [],
        )
        _check_data(cursor)
    print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)


# --- The floor -----------------------------------------------------------------------------

# Written from notifications/schedule.py's docstring and `due_reminders`, and from who hears
# of each kind (services: assignee, manager, the lead organization's contributors and
# managers, the coordinators of the plan's coordinating organizations; per the plan's policy
# or the defaults). Per recipient zone: nine(d) = 09:00 of day d in the zone; cutoff = the
# latest day whose 09:00 has passed; first9(x) = the day of the first 09:00 at or after x.
FLOOR_SQL = """
WITH rules AS (
    SELECT p.id AS plan_id,
           CASE WHEN r.id IS NULL THEN %(before_days)s::jsonb ELSE r.before_days END AS before_days,
           CASE WHEN r.id IS NULL THEN %(every)s ELSE r.overdue_every_days END AS every,
           CASE WHEN r.id IS NULL THEN %(manager_after)s
                ELSE r.escalate_manager_after_days END AS manager_after,
           CASE WHEN r.id IS NULL THEN %(coordinators_after)s
                ELSE r.escalate_coordinators_after_days END AS coordinators_after,
           CASE WHEN r.id IS NULL THEN %(verify_after)s
                ELSE r.verification_reminder_after_days END AS verify_after,
           CASE WHEN r.id IS NULL THEN %(due_to_assignee)s ELSE r.due_to_assignee END AS d_asg,
           CASE WHEN r.id IS NULL THEN %(due_to_manager)s ELSE r.due_to_manager END AS d_mgr,
           CASE WHEN r.id IS NULL THEN %(due_to_lead_organization)s
                ELSE r.due_to_lead_organization END AS d_lead,
           CASE WHEN r.id IS NULL THEN %(due_to_coordinators)s
                ELSE r.due_to_coordinators END AS d_crd,
           CASE WHEN r.id IS NULL THEN %(overdue_to_assignee)s
                ELSE r.overdue_to_assignee END AS o_asg,
           CASE WHEN r.id IS NULL THEN %(overdue_to_manager)s
                ELSE r.overdue_to_manager END AS o_mgr,
           CASE WHEN r.id IS NULL THEN %(overdue_to_lead_organization)s
                ELSE r.overdue_to_lead_organization END AS o_lead,
           CASE WHEN r.id IS NULL THEN %(overdue_to_coordinators)s
                ELSE r.overdue_to_coordinators END AS o_crd
    FROM plans_plan p
    LEFT JOIN notifications_reminderpolicy r ON r.plan_id = p.id
),
steps AS (
    SELECT DISTINCT rules.plan_id, e.days::int AS days
    FROM rules, jsonb_array_elements_text(rules.before_days) AS e(days)
),
-- Open tasks that can be due soon (a step's day is at most tomorrow in UTC), or past their
-- deadline; done tasks. The phase says which series a task is in.
cand AS (
    SELECT t.id, t.plan_id, t.due_date, t.deadline_at, t.completed_at, t.assignee_id,
           t.manager_id, t.lead_organization_id, t.visibility,
           CASE WHEN t.status = 'done' THEN 'done'
                WHEN t.deadline_at <= %(now)s THEN 'overdue' ELSE 'before' END AS phase,
           CASE WHEN t.status <> 'done' AND t.deadline_at > %(now)s THEN GREATEST(
               t.created_at,
               (SELECT max(u.created_at) FROM plans_statusupdate u
                WHERE u.task_id = t.id AND u.kind = 'deadline_change')) END AS anchor
    FROM plans_task t
    WHERE (t.status IN ('planned', 'in_progress', 'at_risk', 'blocked')
           AND t.due_date <= (%(now)s AT TIME ZONE 'UTC')::date + 2
                             + (SELECT coalesce(max(days), 0) FROM steps))
       OR (t.status = 'done' AND t.completed_at IS NOT NULL)
),
lead AS (
    SELECT organization_id, array_agg(user_id) AS users
    FROM tracker_membership WHERE role IN ('contributor', 'manager')
    GROUP BY organization_id
),
coordinators AS (
    SELECT pp.plan_id, array_agg(DISTINCT m.user_id) AS users
    FROM plans_planparticipant pp
    JOIN tracker_membership m ON m.organization_id = pp.organization_id
    WHERE pp.role = 'coordinating' AND m.role = 'coordinator'
    GROUP BY pp.plan_id
),
-- (task, series, person), once each: the 'due' (due soon / due today) and 'overdue' series
-- go to whom the policy's flags name; the escalations and the verification reminder to the
-- manager or the coordinators.
heard AS (
    SELECT DISTINCT c.id AS task_id, x.series, x.user_id
    FROM cand c
    JOIN rules r ON r.plan_id = c.plan_id
    LEFT JOIN lead l ON l.organization_id = c.lead_organization_id
    LEFT JOIN coordinators k ON k.plan_id = c.plan_id
    CROSS JOIN LATERAL (
        SELECT 'due' AS series,
               unnest(CASE WHEN r.d_asg THEN ARRAY[c.assignee_id] END
                      || CASE WHEN r.d_mgr THEN ARRAY[c.manager_id] END
                      || CASE WHEN r.d_lead THEN l.users END
                      || CASE WHEN r.d_crd THEN k.users END) AS user_id
        WHERE c.phase = 'before'
        UNION ALL
        SELECT 'overdue',
               unnest(CASE WHEN r.o_asg THEN ARRAY[c.assignee_id] END
                      || CASE WHEN r.o_mgr THEN ARRAY[c.manager_id] END
                      || CASE WHEN r.o_lead THEN l.users END
                      || CASE WHEN r.o_crd THEN k.users END)
        WHERE c.phase = 'overdue'
        UNION ALL
        SELECT 'escalation_manager', c.manager_id
        WHERE c.phase = 'overdue' AND r.manager_after IS NOT NULL
        UNION ALL
        SELECT 'escalation_coordinators', unnest(k.users)
        WHERE c.phase = 'overdue' AND r.coordinators_after IS NOT NULL
        UNION ALL
        SELECT 'awaiting_verification', unnest(k.users)
        WHERE c.phase = 'done' AND r.verify_after IS NOT NULL
    ) AS x
    WHERE x.user_id IS NOT NULL
),
-- One row per (task, series, person) with the person's calendar.
seen AS (
    SELECT hd.series, hd.user_id, c.*, r.every, r.manager_after, r.coordinators_after,
           r.verify_after, u.time_zone AS tz,
           CASE WHEN (z.today + TIME '09:00') AT TIME ZONE u.time_zone <= %(now)s
                THEN z.today ELSE z.today - 1 END AS cutoff,
           CASE WHEN c.phase = 'overdue' THEN
               CASE WHEN (z.deadline_day + TIME '09:00') AT TIME ZONE u.time_zone >= c.deadline_at
                    THEN z.deadline_day ELSE z.deadline_day + 1 END END AS day0,
           CASE WHEN c.phase = 'done' THEN
               CASE WHEN (z.done_day + TIME '09:00') AT TIME ZONE u.time_zone >= c.completed_at
                    THEN z.done_day ELSE z.done_day + 1 END + r.verify_after END AS verify_day
    FROM heard hd
    JOIN cand c ON c.id = hd.task_id
    JOIN rules r ON r.plan_id = c.plan_id
    JOIN tracker_user u ON u.id = hd.user_id AND NOT u.is_system
    -- Nobody is reminded of a task they may not see (decision 0010): a superuser, or a
    -- member of its lead, a supporting or a coordinating organization, or of any participant
    -- when the task is visible plan-wide.
    AND (u.is_superuser OR EXISTS (
        SELECT 1 FROM tracker_membership vm
        WHERE vm.user_id = u.id AND (
            vm.organization_id = c.lead_organization_id
            OR vm.organization_id IN (SELECT so.organization_id
                                      FROM plans_task_supporting_organizations so
                                      WHERE so.task_id = c.id)
            OR vm.organization_id IN (SELECT pp.organization_id FROM plans_planparticipant pp
                                      WHERE pp.plan_id = c.plan_id
                                        AND (pp.role = 'coordinating'
                                             OR c.visibility = 'plan')))))
    CROSS JOIN LATERAL (
        SELECT (%(now)s AT TIME ZONE u.time_zone)::date AS today,
               (c.deadline_at AT TIME ZONE u.time_zone)::date AS deadline_day,
               (c.completed_at AT TIME ZONE u.time_zone)::date AS done_day
    ) AS z
),
due AS (
    -- Before the deadline: the nearest step whose day has come and whose 09:00 is before the
    -- deadline; sent only if that day is not before the anchor's day.
    SELECT s.user_id, s.id AS task_id,
           CASE WHEN b.days = 0 THEN 'due_today' ELSE 'due_soon' END AS kind,
           s.due_date, b.days AS step,
           (s.due_date - b.days + TIME '09:00') AT TIME ZONE s.tz AS due_at
    FROM seen s
    CROSS JOIN LATERAL (
        SELECT min(st.days) AS days FROM steps st
        WHERE st.plan_id = s.plan_id AND s.due_date - st.days <= s.cutoff
          AND (s.due_date - st.days + TIME '09:00') AT TIME ZONE s.tz < s.deadline_at
    ) AS b
    WHERE s.series = 'due' AND b.days IS NOT NULL
      AND s.due_date - b.days >= (s.anchor AT TIME ZONE s.tz)::date
    UNION ALL
    -- Overdue: day 0, then every `every` days; the step is the period (1, 2, ...).
    SELECT s.user_id, s.id, 'overdue', s.due_date, p.period + 1,
           (s.day0 + p.period * s.every + TIME '09:00') AT TIME ZONE s.tz
    FROM seen s
    CROSS JOIN LATERAL (
        SELECT CASE WHEN s.every > 0 THEN (s.cutoff - s.day0) / s.every ELSE 0 END AS period
    ) AS p
    WHERE s.series = 'overdue' AND s.day0 <= s.cutoff
    UNION ALL
    SELECT s.user_id, s.id, s.series, s.due_date,
           CASE s.series WHEN 'escalation_manager' THEN s.manager_after
                ELSE s.coordinators_after END AS step,
           (s.day0 + CASE s.series WHEN 'escalation_manager' THEN s.manager_after
                     ELSE s.coordinators_after END + TIME '09:00') AT TIME ZONE s.tz
    FROM seen s
    WHERE s.series IN ('escalation_manager', 'escalation_coordinators')
      AND s.day0 + CASE s.series WHEN 'escalation_manager' THEN s.manager_after
                   ELSE s.coordinators_after END <= s.cutoff
    UNION ALL
    SELECT s.user_id, s.id, 'awaiting_verification', s.due_date, s.verify_after,
           (s.verify_day + TIME '09:00') AT TIME ZONE s.tz
    FROM seen s
    WHERE s.series = 'awaiting_verification' AND s.verify_day <= s.cutoff
)
INSERT INTO notifications_notification (
    recipient_id, task_id, kind, due_date, step, dedupe_key, created_at, due_at,
    next_attempt_at, failure_reason, attempts)
SELECT user_id, task_id, kind, due_date, step,
       user_id || ':' || task_id || ':' || kind || ':' || to_char(due_date, 'YYYY-MM-DD')
           || ':' || step,
       now(), due_at, now(), '', 0
FROM due
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id
"""


def floor_params() -> dict:
    from notifications.models import ReminderPolicy

    default = ReminderPolicy.defaults()
    params = {
        name: getattr(default, name)
        for name in [
            "due_to_assignee", "due_to_manager", "due_to_lead_organization",
            "due_to_coordinators", "overdue_to_assignee", "overdue_to_manager",
            "overdue_to_lead_organization", "overdue_to_coordinators",
        ]
    }  # fmt: skip
    params.update(
        now=NOW,
        before_days=json.dumps(list(default.before_days or [])),
        every=default.overdue_every_days,
        manager_after=default.escalate_manager_after_days,
        coordinators_after=default.escalate_coordinators_after_days,
        verify_after=default.verification_reminder_after_days,
    )
    return params


# --- Measuring -----------------------------------------------------------------------------

ROW_SQL = (
    "SELECT dedupe_key, recipient_id, task_id, kind, due_date, step, due_at "
    "FROM notifications_notification"
)


def _empty() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE notifications_notification", [])


def _rows() -> set[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(ROW_SQL, [])
        return set(cursor.fetchall())


BENCH_QUEUE = f"bench-sweep-{os.getpid()}"


def _purge_queue() -> int:
    """Empty the benchmark's private queue (the messages of the last run); how many."""
    from tracker.celery import app

    with app.connection_for_write() as conn:
        try:
            return conn.default_channel.queue_purge(BENCH_QUEUE) or 0
        except Exception:  # noqa: BLE001 - a queue never declared holds nothing
            return 0


def run_sweep(enqueue: bool = False) -> tuple[float, int]:
    from notifications.services import reminders_sweep

    _empty()
    started = time.perf_counter()
    result = reminders_sweep(now=NOW, enqueue=enqueue)
    return (time.perf_counter() - started) * 1000, result.created


def run_floor(params: dict) -> tuple[float, int]:
    from django.db import connection, transaction

    _empty()
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        # The horizon comes from the policies, so the planner cannot see it: it expects ~12%
        # of the tasks as candidates (a few thousand in fact) and, over its cost threshold,
        # JIT-compiles the statement: 1.3 s at a million tasks for a 0.2 s plan.
        cursor.execute("SET LOCAL jit = off", [])
        cursor.execute(FLOOR_SQL, params)
        ids = [row[0] for row in cursor.fetchall()]
    return (time.perf_counter() - started) * 1000, len(ids)


def python_rows() -> tuple[float, set[tuple]]:
    """The rows `reminders_due` computes (the Python path over schedule.py; unsaved)."""
    from django.db import connection

    from notifications.services import reminders_due

    started = time.perf_counter()
    rows = reminders_due(now=NOW)
    elapsed = (time.perf_counter() - started) * 1000
    # due_at as the database returns it (UTC), to compare with the inserted rows.
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz", [NOW])
        utc = cursor.fetchone()[0].tzinfo
    return elapsed, {
        (r.dedupe_key, r.recipient_id, r.task_id, r.kind, r.due_date, r.step,
         r.due_at.astimezone(utc))
        for r in rows
    }  # fmt: skip


def explain_mismatch(
    only_sweep: set, only_floor: set, names=("the sweep", "the floor"), limit: int = 12
) -> None:
    """The differing rows, each with its task's facts and what schedule.py says for its
    recipient's zone (the rules both sides claim to follow)."""
    from django.db import connection

    from notifications.models import ReminderPolicy
    from notifications.schedule import Policy, TaskFacts, due_reminders, zone

    policies = {row.plan_id: row for row in ReminderPolicy.objects.all()}
    for label, rows in ((f"only in {names[0]}", only_sweep), (f"only in {names[1]}", only_floor)):
        print(f"{label}: {len(rows)} rows; by kind: {dict(Counter(r[3] for r in rows))}")
        for row in sorted(rows)[:limit]:
            key, user_id, task_id, kind, due_date, step, due_at = row
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    SELECT t.plan_id, p.code, p.time_zone, t.status, t.due_date, t.deadline_at,
                           t.completed_at, t.created_at,
                           (SELECT max(u.created_at) FROM plans_statusupdate u
                            WHERE u.task_id = t.id AND u.kind = 'deadline_change'),
                           (SELECT time_zone FROM tracker_user WHERE id = %s)
                    FROM plans_task t JOIN plans_plan p ON p.id = t.plan_id WHERE t.id = %s
                    """,
                    [user_id, task_id],
                )
                plan_id, code, plan_tz, status, due, deadline, done, created, moved, tz = (
                    cursor.fetchone()
                )
            facts = TaskFacts(due, deadline, status, done, max(filter(None, (created, moved))))
            rules = Policy.of(policies.get(plan_id) or ReminderPolicy.defaults())
            says = due_reminders(facts, rules, zone(tz), NOW)
            said = ", ".join(f"{d.kind}/{d.step}@{d.due_at.isoformat()}" for d in says)
            print(
                f"  {key} due_at={due_at.isoformat()} | plan {code} ({plan_tz}), {status}, "
                f"due {due}, deadline {deadline.isoformat()}, completed {done}, anchor "
                f"{facts.anchor_at.isoformat()}; recipient zone {tz}; schedule.py: {said}"
            )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=TASKS, help="tasks in the database")
    parser.add_argument("--rebuild", action="store_true", help="make the data again")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each (median)")
    parser.add_argument(
        "--skip-python",
        action="store_true",
        help="do not also compare with reminders_due (the Python path over schedule.py)",
    )
    args = parser.parse_args(argv)

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        print(
            "This benchmark needs a scratch PostgreSQL database of its own: set DATABASE_URL, "
            "e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/tracker_sweep_bench "
            "(it adds a million tasks to it and empties its notifications table).",
            file=sys.stderr,
        )
        return 2
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        print(f"DATABASE_URL names a {connection.vendor} database.", file=sys.stderr)
        return 2
    from django.conf import settings

    settings.NOTIFICATION_QUEUE = BENCH_QUEUE  # enqueued messages go to a private queue
    call_command("migrate", verbosity=0)
    ensure_data(args.tasks, args.rebuild)
    params = floor_params()

    # A first run of each, untimed: warms the caches and gives the rows to compare.
    _, created = run_sweep()
    sweep_rows = _rows()
    _, floor_created = run_floor(params)
    floor_rows = _rows()

    run_sweep(enqueue=True)  # warms the broker connection
    _purge_queue()

    sweep_ms, plain_ms, floor_ms, messages = [], [], [], []
    for n in range(args.repeat):
        order = [("sweep", sweep_ms), ("plain", plain_ms), ("floor", floor_ms)]
        for name, samples in order if n % 2 == 0 else reversed(order):
            if name == "floor":
                elapsed, made = run_floor(params)
            else:
                elapsed, made = run_sweep(enqueue=name == "sweep")
                if name == "sweep":
                    messages.append(_purge_queue())
            samples.append(elapsed)
            if made != (floor_created if name == "floor" else created):
                print(f"warning: the {name} made {made} rows this time")

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM plans_task", [])
        tasks = cursor.fetchone()[0]
        cursor.execute("SELECT current_setting('jit'), current_setting('server_version')", [])
        jit, version = cursor.fetchone()
    sweep, floor = statistics.median(sweep_ms), statistics.median(floor_ms)
    plain = statistics.median(plain_ms)
    kinds = sorted({row[3] for row in sweep_rows | floor_rows})
    sweep_kinds, floor_kinds = Counter(r[3] for r in sweep_rows), Counter(r[3] for r in floor_rows)
    print(f"database: PostgreSQL {version} (jit {jit}; the floor runs with jit off), "
          f"tasks: {tasks}, now: {NOW.isoformat()}, repeats: {args.repeat}")  # fmt: skip
    print(f"rows: sweep {created}, floor {floor_created}")
    for kind in kinds:
        print(f"  {kind:<24} sweep {sweep_kinds[kind]:>6}  floor {floor_kinds[kind]:>6}")
    from django.conf import settings

    print(
        f"sweep median: {sweep:.1f} ms  (reminders_sweep(now=NOW), enqueueing as beat runs it: "
        f"{statistics.median(messages):.0f} messages of up to {settings.DELIVERY_BATCH_SIZE} "
        f"ids to {settings.CELERY_BROKER_URL.split('://')[0]})"
    )
    print(f"  without enqueueing: {plain:.1f} ms  (reminders_sweep(now=NOW, enqueue=False))")
    print(f"floor median: {floor:.1f} ms  (one INSERT ... SELECT ... ON CONFLICT DO NOTHING)")
    print(f"ratio: {sweep / floor:.2f}  (with enqueueing; target <= 2 on PostgreSQL)")
    print(f"  ratio without enqueueing: {plain / floor:.2f}")
    print("  sweep runs (ms): " + ", ".join(f"{x:.0f}" for x in sweep_ms))
    print("  floor runs (ms): " + ", ".join(f"{x:.0f}" for x in floor_ms))
    status = 0
    if sweep_rows == floor_rows:
        print(f"rows match: yes ({len(sweep_rows)} rows)")
    else:
        print("rows match: NO")
        explain_mismatch(sweep_rows - floor_rows, floor_rows - sweep_rows)
        status = 1
    if not args.skip_python:
        try:
            python_ms, reference = python_rows()
        except ImportError:  # the Python path is gone: nothing to compare with
            print("reminders_due (Python path): not found in notifications.services, skipped")
            return status
        same = reference == floor_rows
        print(
            f"reminders_due (Python path, computing only): {python_ms:.0f} ms, "
            f"{len(reference)} rows; same rows as the floor: {'yes' if same else 'NO'}"
        )
        if not same:
            names = ("reminders_due", "the floor")
            explain_mismatch(reference - floor_rows, floor_rows - reference, names)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
