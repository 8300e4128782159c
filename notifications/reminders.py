"""Reminders: the plans' reminder policies, the sweep that inserts the due reminders (one
statement on PostgreSQL, `reminders_due` over notifications/schedule.py elsewhere), their
webhook events, and the read state of notifications. Their emails: email_delivery."""

import datetime as dt
import functools
import json
import logging
from dataclasses import dataclass

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper
from django.utils import timezone, translation

from plans import permissions as policy
from plans import selectors as plan_selectors
from plans.api.serializers import TaskSerializer
from plans.exceptions import NotVisible
from plans.models import Task
from tracker.models import User

from .email_delivery import _enqueue_notifications_on_commit, _notifications_lost
from .models import (
    Notification,
    ReminderPolicy,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from .outbox import _now
from .webhooks import _enqueue_on_commit, _iso, _new_delivery

logger = logging.getLogger(__name__)


def reminder_policy_for(*, actor: User, plan) -> ReminderPolicy:
    """The plan's policy, created with the settings' defaults the first time (lazily).
    Creating it is part of changing it: the plan's coordinators only."""

    policy.ensure(actor, policy.VIEW, plan)
    existing = ReminderPolicy.objects.filter(plan=plan).first()
    if existing is not None:
        return existing
    policy.ensure(actor, policy.CHANGE, plan)
    with transaction.atomic():
        row = ReminderPolicy.defaults(plan.pk)
        row.full_clean(validate_unique=False)
        ReminderPolicy.objects.bulk_create([row], ignore_conflicts=True)
    return ReminderPolicy.objects.get(plan=plan)


@transaction.atomic
def reminder_policy_update(*, actor: User, reminder_policy, **fields) -> ReminderPolicy:
    """Change a plan's reminder policy (its coordinators)."""

    if reminder_policy.pk is None:
        policy.ensure(actor, policy.ADD, ReminderPolicy)
    policy.ensure(actor, policy.CHANGE, reminder_policy.plan)
    for name, value in fields.items():
        setattr(reminder_policy, name, value)
    reminder_policy.full_clean()
    reminder_policy.save()
    return reminder_policy


@dataclass
class SweepResult:
    created: int
    notification_ids: list[int]
    requeued: int


def _reminder_candidates(now: dt.datetime, horizon_days: int) -> list[dict]:
    """Tasks that may have a reminder due (one query): open tasks due within the horizon or
    past their deadline, and done tasks awaiting verification."""
    from django.db.models import Max, OuterRef, Q, Subquery

    from plans.models import StatusUpdate

    def sees(field):  # does the person the task names still see it (plans.permissions)?
        return ExpressionWrapper(policy.person_sees_task_q(field), output_field=BooleanField())

    last_move = (
        StatusUpdate.objects.filter(task=OuterRef("pk"), kind=StatusUpdate.Kind.DEADLINE_CHANGE)
        .order_by()
        .values("task")
        .annotate(at=Max("created_at"))
        .values("at")[:1]
    )
    horizon = now.date() + dt.timedelta(days=horizon_days + 2)
    return list(
        Task.objects.filter(
            Q(status__in=Task.OPEN_STATUSES, due_date__lte=horizon)
            | Q(status__in=Task.OPEN_STATUSES, deadline_at__lte=now)
            | Q(status=Task.Status.DONE, completed_at__isnull=False)
        )
        .annotate(
            last_move_at=Subquery(last_move),
            assignee_sees=sees("assignee_id"),
            manager_sees=sees("manager_id"),
        )
        .order_by()
        .values(
            "pk",
            "plan_id",
            "due_date",
            "deadline_at",
            "status",
            "completed_at",
            "created_at",
            "last_move_at",
            "assignee_id",
            "manager_id",
            "lead_organization_id",
            "assignee_sees",
            "manager_sees",
        )  # fmt: skip
    )


def _reminder_recipients(tasks: list[dict]) -> tuple[dict, dict]:
    """Lead-organization contributors and managers per organization, and coordinators per
    plan (two queries)."""
    from plans.models import PlanParticipant
    from tracker.models import Membership

    Role = Membership.Role
    lead: dict[int, set[int]] = {}
    for row in Membership.objects.filter(
        organization_id__in={t["lead_organization_id"] for t in tasks},
        role__in=[Role.CONTRIBUTOR, Role.MANAGER],
    ).values("organization_id", "user_id"):
        lead.setdefault(row["organization_id"], set()).add(row["user_id"])
    coordinators: dict[int, set[int]] = {}
    for row in PlanParticipant.objects.filter(
        plan_id__in={t["plan_id"] for t in tasks}, role=PlanParticipant.Role.COORDINATING
    ).values("plan_id", "organization__memberships__user_id", "organization__memberships__role"):
        user_id = row["organization__memberships__user_id"]
        if user_id is not None and row["organization__memberships__role"] == Role.COORDINATOR:
            coordinators.setdefault(row["plan_id"], set()).add(user_id)
    return lead, coordinators


def _who(kind: str, task: dict, rules, lead: dict, coordinators: dict) -> set[int]:
    from .schedule import (
        AWAITING_VERIFICATION,
        DUE_SOON,
        DUE_TODAY,
        ESCALATION_COORDINATORS,
        ESCALATION_MANAGER,
    )

    plan_coordinators = coordinators.get(task["plan_id"], set())
    # The assignee and manager are reminded only while they may still see the task.
    assignee = task["assignee_id"] if task["assignee_sees"] else None
    manager = task["manager_id"] if task["manager_sees"] else None
    if kind == ESCALATION_MANAGER:
        return {manager} - {None}
    if kind in (ESCALATION_COORDINATORS, AWAITING_VERIFICATION):
        return set(plan_coordinators)
    prefix = "due" if kind in (DUE_SOON, DUE_TODAY) else "overdue"
    users: set[int] = set()
    if getattr(rules, f"{prefix}_to_assignee") and assignee:
        users.add(assignee)
    if getattr(rules, f"{prefix}_to_manager") and manager:
        users.add(manager)
    if getattr(rules, f"{prefix}_to_lead_organization"):
        users |= lead.get(task["lead_organization_id"], set())
    if getattr(rules, f"{prefix}_to_coordinators"):
        users |= plan_coordinators
    return users


UNKNOWN_ZONE = "Reminders skip the users in time zone %r: %s does not know it."


@functools.lru_cache(maxsize=64)
def _zone_known(name: str) -> bool:
    """A user's zone this Python knows (the validator checks on write; a zone may still
    vanish with a tzdata update). One bad zone must not stop everyone's reminders."""
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        logger.warning(UNKNOWN_ZONE, name, "Python's tzdata")
        return False
    return True


@functools.lru_cache(maxsize=1)
def _postgresql_zones() -> frozenset[str]:
    """The zone names the PostgreSQL server knows (its tzdata may be older than Python's)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_timezone_names")
        return frozenset(row[0] for row in cursor.fetchall())


def _sweep_zones() -> list[str]:
    """The recipients' zones PostgreSQL can compute in; users in others are skipped, logged."""
    names = set(
        User.objects.filter(is_system=False)
        .order_by()
        .values_list("time_zone", flat=True)
        .distinct()
    )
    known = names & _postgresql_zones()
    for name in sorted(names - known):
        logger.warning(UNKNOWN_ZONE, name, "the PostgreSQL server")
    return sorted(known)


def reminders_due(*, now: dt.datetime, whole_day: bool = False) -> list[Notification]:
    """The Notification rows due at `now` (unsaved), in a fixed number of queries: policies,
    candidate tasks, lead organizations' members, plans' coordinators, users."""
    from .schedule import Policy, TaskFacts, due_reminders, zone

    policies = {row.plan_id: row for row in ReminderPolicy.objects.all()}
    default = ReminderPolicy.defaults()
    horizon = max([max(p.before_days or [0]) for p in [default, *policies.values()]], default=0)
    tasks = _reminder_candidates(now, horizon)
    if not tasks:
        return []
    lead, coordinators = _reminder_recipients(tasks)

    wanted: list[tuple[dict, object, set[int]]] = []
    user_ids: set[int] = set()
    for task in tasks:
        rules = policies.get(task["plan_id"], default)
        recipients = {
            kind: _who(kind, task, rules, lead, coordinators) for kind in Notification.Kind.values
        }
        wanted.append((task, rules, recipients))
        for users in recipients.values():
            user_ids |= users
    users = {
        row["pk"]: row
        for row in User.objects.filter(pk__in=user_ids, is_system=False).values("pk", "time_zone")
        if _zone_known(row["time_zone"])
    }

    created_at = _now()
    rows: list[Notification] = []
    for task, rules, recipients in wanted:
        facts = TaskFacts(
            due_date=task["due_date"],
            deadline_at=task["deadline_at"],
            status=task["status"],
            completed_at=task["completed_at"],
            anchor_at=max(filter(None, (task["created_at"], task["last_move_at"]))),
        )
        schedule_policy = Policy.of(rules)
        by_zone: dict[str, list] = {}
        for kind, user_set in recipients.items():
            for user_id in user_set:
                user = users.get(user_id)
                if user is None:
                    continue
                tz_name = user["time_zone"]
                if tz_name not in by_zone:
                    by_zone[tz_name] = due_reminders(
                        facts, schedule_policy, zone(tz_name), now, whole_day
                    )
                for due in by_zone[tz_name]:
                    if due.kind != kind:
                        continue
                    rows.append(
                        Notification(
                            recipient_id=user_id,
                            task_id=task["pk"],
                            kind=kind,
                            due_date=task["due_date"],
                            step=due.step,
                            dedupe_key=Notification.key(
                                user_id, task["pk"], kind, task["due_date"], due.step
                            ),
                            created_at=created_at,
                            due_at=due.due_at,
                            next_attempt_at=created_at,
                        )
                    )
    return rows


# The same reminders as `reminders_due`, computed by PostgreSQL in ONE statement that also
# inserts them (the sweep at scale: a million tasks). Time zones are PostgreSQL's
# `AT TIME ZONE`; the tests run every rule against both paths. Parameters: %(name)s.
REMINDERS_INSERT_SQL = """
WITH pol AS (
    SELECT p.id AS plan_id,
           COALESCE(rp.before_days, %(before_days)s::jsonb) AS before_days,
           COALESCE(rp.overdue_every_days, %(every)s) AS every,
           CASE WHEN rp.id IS NULL THEN %(esc_manager)s
                ELSE rp.escalate_manager_after_days END AS esc_manager,
           CASE WHEN rp.id IS NULL THEN %(esc_coordinators)s
                ELSE rp.escalate_coordinators_after_days END AS esc_coordinators,
           CASE WHEN rp.id IS NULL THEN %(verify)s
                ELSE rp.verification_reminder_after_days END AS verify,
           COALESCE(rp.due_to_assignee, %(due_to_assignee)s) AS due_assignee,
           COALESCE(rp.due_to_lead_organization, %(due_to_lead)s) AS due_lead,
           COALESCE(rp.due_to_manager, %(due_to_manager)s) AS due_manager,
           COALESCE(rp.due_to_coordinators, %(due_to_coordinators)s) AS due_coordinator,
           COALESCE(rp.overdue_to_assignee, %(overdue_to_assignee)s) AS overdue_assignee,
           COALESCE(rp.overdue_to_lead_organization, %(overdue_to_lead)s) AS overdue_lead,
           COALESCE(rp.overdue_to_manager, %(overdue_to_manager)s) AS overdue_manager,
           COALESCE(rp.overdue_to_coordinators, %(overdue_to_coordinators)s)
               AS overdue_coordinator
    FROM plans_plan p
    LEFT JOIN notifications_reminderpolicy rp ON rp.plan_id = p.id
),
cand AS (
    SELECT t.id, t.plan_id, t.due_date, t.deadline_at, t.status, t.completed_at, t.created_at,
           t.assignee_id, t.manager_id, t.lead_organization_id, t.visibility,
           t.status <> 'done' AND t.deadline_at > %(now)s AS before_due
    FROM plans_task t
    WHERE (t.status IN ('planned', 'in_progress', 'at_risk', 'blocked')
           AND t.due_date <= %(last_day)s)
       OR (t.status = 'done' AND t.completed_at IS NOT NULL)
),
-- The assignee and manager are reminded only while they may still see the task
-- (plans.permissions.person_sees_task_q): a superuser, or a member of its lead, a supporting
-- or a coordinating organization, or of any participant when it is visible plan-wide.
held AS (
    SELECT c.id AS task_id, c.assignee_id AS user_id, 'assignee' AS via, c.*
    FROM cand c WHERE c.assignee_id IS NOT NULL AND c.status <> 'done'
    UNION ALL
    SELECT c.id, c.manager_id, 'manager', c.*
    FROM cand c WHERE c.manager_id IS NOT NULL AND c.status <> 'done'
),
rcpt AS (
    SELECT h.task_id, h.user_id, h.via
    FROM held h
    WHERE EXISTS (SELECT 1 FROM tracker_user su WHERE su.id = h.user_id AND su.is_superuser)
       OR EXISTS (
           SELECT 1 FROM tracker_membership m
           WHERE m.user_id = h.user_id AND (
               m.organization_id = h.lead_organization_id
               OR m.organization_id IN (SELECT so.organization_id
                                        FROM plans_task_supporting_organizations so
                                        WHERE so.task_id = h.task_id)
               OR m.organization_id IN (SELECT pp.organization_id
                                        FROM plans_planparticipant pp
                                        WHERE pp.plan_id = h.plan_id
                                          AND (pp.role = 'coordinating'
                                               OR h.visibility = 'plan'))))
    UNION ALL
    SELECT c.id, m.user_id, 'lead'
    FROM cand c
    JOIN tracker_membership m ON m.organization_id = c.lead_organization_id
                             AND m.role IN ('contributor', 'manager')
    WHERE c.status <> 'done'
    UNION ALL
    SELECT c.id, m.user_id, 'coordinator'
    FROM cand c
    JOIN plans_planparticipant pp ON pp.plan_id = c.plan_id AND pp.role = 'coordinating'
    JOIN tracker_membership m ON m.organization_id = pp.organization_id
                             AND m.role = 'coordinator'
),
base AS (
    SELECT c.*, r.user_id, r.via, u.time_zone AS tz, pol.*,
           (%(now)s AT TIME ZONE u.time_zone)::date
               - CASE WHEN %(whole_day)s OR (%(now)s AT TIME ZONE u.time_zone)::time >= '09:00'
                      THEN 0 ELSE 1 END AS cutoff
    FROM cand c
    JOIN rcpt r ON r.task_id = c.id
    JOIN tracker_user u ON u.id = r.user_id AND NOT u.is_system
                       AND u.time_zone = ANY(%(zones)s)
    JOIN pol ON pol.plan_id = c.plan_id
),
-- Before the deadline: the most recent step whose day has come (its 09:00 before the
-- deadline), unless that day came before the task took its due date.
before_due AS (
    SELECT b.*, (
        SELECT MIN(d.value::int)
        FROM jsonb_array_elements_text(b.before_days) AS d(value)
        WHERE b.due_date - d.value::int <= b.cutoff
          AND ((b.due_date - d.value::int) + time '09:00') AT TIME ZONE b.tz < b.deadline_at
    ) AS step
    FROM base b
    WHERE b.before_due AND (
        (b.via = 'assignee' AND b.due_assignee) OR (b.via = 'manager' AND b.due_manager)
        OR (b.via = 'lead' AND b.due_lead) OR (b.via = 'coordinator' AND b.due_coordinator))
),
-- Past the deadline: day 0 is the day of the first 09:00 at or after it.
past AS (
    SELECT b.*,
           CASE WHEN (b.deadline_at AT TIME ZONE b.tz)::time <= '09:00'
                THEN (b.deadline_at AT TIME ZONE b.tz)::date
                ELSE (b.deadline_at AT TIME ZONE b.tz)::date + 1 END AS day0
    FROM base b
    WHERE b.status <> 'done' AND NOT b.before_due
),
due AS (
    SELECT user_id, id AS task_id,
           CASE WHEN step = 0 THEN 'due_today' ELSE 'due_soon' END AS kind,
           due_date, step, due_date - step AS day, tz
    FROM before_due
    WHERE step IS NOT NULL
      AND due_date - step >= (GREATEST(created_at, (
              SELECT MAX(su.created_at) FROM plans_statusupdate su
              WHERE su.task_id = before_due.id AND su.kind = 'deadline_change'
          )) AT TIME ZONE tz)::date
    UNION ALL
    SELECT user_id, id, 'overdue', due_date, period + 1, day0 + period * every, tz
    FROM (
        SELECT past.*,
               CASE WHEN every > 0 THEN (cutoff - day0) / every ELSE 0 END AS period
        FROM past
        WHERE day0 <= cutoff AND (
            (via = 'assignee' AND overdue_assignee) OR (via = 'manager' AND overdue_manager)
            OR (via = 'lead' AND overdue_lead)
            OR (via = 'coordinator' AND overdue_coordinator))
    ) AS overdue
    UNION ALL
    SELECT user_id, id, 'escalation_manager', due_date, esc_manager, day0 + esc_manager, tz
    FROM past
    WHERE via = 'manager' AND esc_manager IS NOT NULL AND day0 + esc_manager <= cutoff
    UNION ALL
    SELECT user_id, id, 'escalation_coordinators', due_date, esc_coordinators,
           day0 + esc_coordinators, tz
    FROM past
    WHERE via = 'coordinator' AND esc_coordinators IS NOT NULL
      AND day0 + esc_coordinators <= cutoff
    UNION ALL
    SELECT user_id, id, 'awaiting_verification', due_date, verify, day, tz
    FROM (
        SELECT b.*,
               CASE WHEN (b.completed_at AT TIME ZONE b.tz)::time <= '09:00'
                    THEN (b.completed_at AT TIME ZONE b.tz)::date
                    ELSE (b.completed_at AT TIME ZONE b.tz)::date + 1 END + b.verify AS day
        FROM base b
        WHERE b.status = 'done' AND b.via = 'coordinator' AND b.verify IS NOT NULL
    ) AS done
    WHERE day <= cutoff
)
INSERT INTO notifications_notification (
    recipient_id, task_id, kind, due_date, step, dedupe_key, created_at, due_at,
    email_sent_at, email_failed_at, failure_reason, attempts, next_attempt_at, read_at
)
SELECT user_id, task_id, kind, due_date, step,
       user_id || ':' || task_id || ':' || kind || ':' || to_char(due_date, 'YYYY-MM-DD')
           || ':' || step,
       %(created_at)s, (day + time '09:00') AT TIME ZONE tz,
       NULL, NULL, '', 0, %(created_at)s, NULL
FROM due
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id, task_id, kind, due_date, step
"""


def _reminders_insert_sql(now: dt.datetime, whole_day: bool, created_at: dt.datetime) -> list:
    """Insert the reminders due at `now` in one PostgreSQL statement; the new rows as
    (id, task_id, kind, due_date, step)."""
    from django.db import connection

    default = ReminderPolicy.defaults()
    # The horizon as a literal, not a subquery over the policies: the planner then sees how
    # few tasks are candidates (a subquery made it expect ~100k of a million and JIT-compile).
    policies_days = ReminderPolicy.objects.values_list("before_days", flat=True)
    horizon = max(day for days in [default.before_days, *policies_days] for day in [0, *days])
    params = {
        "now": now,
        "zones": _sweep_zones(),
        "last_day": now.astimezone(dt.UTC).date() + dt.timedelta(days=horizon + 2),
        "whole_day": whole_day,
        "created_at": created_at,
        "before_days": json.dumps(default.before_days),
        "every": default.overdue_every_days,
        "esc_manager": default.escalate_manager_after_days,
        "esc_coordinators": default.escalate_coordinators_after_days,
        "verify": default.verification_reminder_after_days,
        "due_to_assignee": default.due_to_assignee,
        "due_to_lead": default.due_to_lead_organization,
        "due_to_manager": default.due_to_manager,
        "due_to_coordinators": default.due_to_coordinators,
        "overdue_to_assignee": default.overdue_to_assignee,
        "overdue_to_lead": default.overdue_to_lead_organization,
        "overdue_to_manager": default.overdue_to_manager,
        "overdue_to_coordinators": default.overdue_to_coordinators,
    }
    with connection.cursor() as cursor:
        # A short OLTP statement: JIT compilation costs more than it saves (~1 s at 1M tasks).
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(REMINDERS_INSERT_SQL, params)
        return sorted(cursor.fetchall())


def _reminders_insert_python(now: dt.datetime, whole_day: bool) -> list:
    """The embedded (SQLite) path: `reminders_due` computes, bulk_create inserts; the new rows
    as (id, task_id, kind, due_date, step)."""
    rows = reminders_due(now=now, whole_day=whole_day)
    if not rows:
        return []
    keys = [row.dedupe_key for row in rows]
    existing = set(
        Notification.objects.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True)
    )
    fresh = [row for row in rows if row.dedupe_key not in existing]
    if not fresh:
        return []
    # A concurrent sweep may have inserted some meanwhile: the unique key wins.
    Notification.objects.bulk_create(fresh, ignore_conflicts=True)
    return list(
        Notification.objects.filter(
            dedupe_key__in=[row.dedupe_key for row in fresh], created_at=fresh[0].created_at
        )
        .order_by("pk")
        .values_list("pk", "task_id", "kind", "due_date", "step")
    )


# Reminder kinds that are also webhook events (once per task step, not per recipient).
REMINDER_EVENTS = {
    "due_soon": WebhookEvent.TASK_DUE_SOON,
    "due_today": WebhookEvent.TASK_DUE_SOON,
    "overdue": WebhookEvent.TASK_OVERDUE,
}


def reminder_webhooks_record(
    created, *, now: dt.datetime, enqueue: bool = True
) -> list[WebhookDelivery]:
    """task.due_soon / task.overdue deliveries for the reminder steps a sweep just created
    (`created`: rows of (id, task_id, kind, due_date, step)), to the active subscriptions
    listening whose organization may see the task, enqueued after commit (`enqueue=False`:
    recorded only; `webhook_deliveries_requeue`, run by beat, sends them).

    One delivery per (subscription, task, kind, due date, step) however many recipients or
    sweeps reach that step: its webhook-id is derived from them and unique. A fixed number of
    queries whatever the number of tasks: subscriptions, then the tasks with every
    organization's visibility, their relations as each organization may see them (one per
    organization), the inserted ids."""
    import hashlib

    steps = sorted(
        {(row[1], row[2], row[3], row[4]) for row in created if row[2] in REMINDER_EVENTS}
    )
    if not steps:
        return []
    events = set(REMINDER_EVENTS.values())
    listening = [
        subscription
        for subscription in WebhookSubscription.objects.filter(is_active=True).only(
            "pk", "organization", "events"
        )
        if any(subscription.listens_to(event) for event in events)
    ]
    if not listening:
        return []
    organization_ids = sorted({s.organization_id for s in listening})
    checks = {
        f"sees_{org_id}": ExpressionWrapper(
            policy.organization_task_q(org_id), output_field=BooleanField()
        )
        for org_id in organization_ids
    }
    tasks = {
        task.pk: task
        for task in Task.objects.with_overdue(now)
        .select_related("plan")
        .filter(pk__in={step[0] for step in steps})
        .annotate(**checks)
    }
    deliveries = []
    represented = {}  # (organization, task) -> the task as that organization may see it
    for org_id in organization_ids:
        plan_selectors.task_attach_relations(
            list(tasks.values()), reader=plan_selectors.SeenBy(organization_id=org_id)
        )
        with timezone.override(dt.UTC), translation.override("en"):
            represented.update(
                {(org_id, pk): TaskSerializer(task).data for pk, task in tasks.items()}
            )
    for task_id, kind, due_date, step in steps:
        task = tasks.get(task_id)
        if task is None:
            continue
        event = REMINDER_EVENTS[kind]
        for subscription in listening:
            if not subscription.listens_to(event):
                continue
            if not getattr(task, f"sees_{subscription.organization_id}"):
                continue
            payload = json.loads(
                json.dumps(
                    {
                        "type": event,
                        "timestamp": _iso(now),
                        "data": {
                            "task": represented[(subscription.organization_id, task_id)],
                            "reminder": {"kind": kind, "due_date": due_date, "step": step},
                        },
                    },
                    cls=DjangoJSONEncoder,
                )
            )
            delivery = _new_delivery(subscription, event, task_id, payload, now)
            key = f"{subscription.pk}:{event}:{task_id}:{kind}:{due_date.isoformat()}:{step}"
            delivery.message_id = "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]
            deliveries.append(delivery)
    if not deliveries:
        return []
    with transaction.atomic():
        WebhookDelivery.objects.bulk_create(deliveries, ignore_conflicts=True)
        inserted = list(
            WebhookDelivery.objects.filter(
                message_id__in=[d.message_id for d in deliveries], created_at=now
            ).order_by("pk")
        )
        if enqueue:
            _enqueue_on_commit([delivery.pk for delivery in inserted])
    return inserted


def reminders_sweep(
    *, now: dt.datetime | None = None, whole_day: bool = False, enqueue: bool = True
) -> SweepResult:
    """Insert the reminders due at `now` that do not exist yet (one statement on PostgreSQL,
    `reminders_due` elsewhere), record their webhook events, enqueue their emails after
    commit (`enqueue=False`: the caller delivers them), and re-enqueue emails whose message
    was lost."""

    from django.db import connection

    now = now or _now()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            created = _reminders_insert_sql(now, whole_day, _now())
        else:
            created = _reminders_insert_python(now, whole_day)
        new_ids = [row[0] for row in created]
        reminder_webhooks_record(created, now=now, enqueue=enqueue)
        requeue_ids = _notifications_lost(now) if enqueue else []
        if enqueue and (new_ids or requeue_ids):
            _enqueue_notifications_on_commit(new_ids + requeue_ids)
    return SweepResult(len(new_ids), new_ids, len(requeue_ids))


@transaction.atomic
def notification_mark_read(*, user: User, notification, now: dt.datetime | None = None):
    """Mark one of the user's own notifications read (again: unchanged)."""

    if notification.recipient_id != user.pk:
        raise NotVisible(obj=notification)
    if notification.read_at is None:
        notification.read_at = now or _now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=notification.read_at
        )
    return notification
