"""The PostgreSQL sweep (one INSERT ... SELECT) against the executable rules of
notifications/schedule.py (`reminders_due`, the path SQLite runs): a random world of plans in
zones from UTC-11 to UTC+14, recipients in eight zones, custom and default policies, moved due
dates and done tasks, swept at random instants (and around both 2026 US daylight-saving
changes: a world for each), must give exactly the same notifications, to the microsecond of
`due_at`."""

import datetime as dt
import random

import pytest
from django.db import transaction

from notifications import services
from notifications.models import Notification, ReminderPolicy
from plans.models import StatusUpdate, Task
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    PlanFactory,
    TaskFactory,
    UserFactory,
)
from tracker.models import Membership
from tracker.services import system_user

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

USER_ZONES = [
    "Asia/Seoul",
    "America/New_York",
    "UTC",
    "Pacific/Kiritimati",  # UTC+14
    "Pacific/Pago_Pago",  # UTC-11
    "America/Los_Angeles",
    "Europe/London",
    "Asia/Kolkata",  # UTC+5:30
]
PLAN_ZONES = ["Asia/Seoul", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago"]
# The US springs forward on 2026-03-08 and falls back on 2026-11-01; each world is built and
# swept around one of them.
SPRING, FALL = dt.date(2026, 3, 8), dt.date(2026, 11, 1)
STATUSES = ["planned", "in_progress", "at_risk", "blocked", "done", "verified", "cancelled"]


class Rollback(Exception):
    pass


def build_world(rng: random.Random, reference: dt.date) -> None:
    organizations = [OrganizationFactory() for _ in range(4)]
    coordinating = OrganizationFactory()
    users = []
    for index, zone in enumerate(USER_ZONES * 2):
        role = [Membership.Role.CONTRIBUTOR, Membership.Role.MANAGER][index % 2]
        users.append(
            MembershipFactory(
                organization=organizations[index % 4], role=role, user__time_zone=zone
            ).user
        )
    for zone in ("Asia/Seoul", "Pacific/Pago_Pago"):
        MembershipFactory(
            organization=coordinating, role=Membership.Role.COORDINATOR, user__time_zone=zone
        )
    # People who see tasks through no membership of theirs: a superuser; someone with none.
    users.append(UserFactory(is_superuser=True, time_zone="Asia/Kolkata"))
    users.append(UserFactory(time_zone="Europe/London"))
    # Someone who oversees from the coordinating organization without coordinating.
    users.append(
        MembershipFactory(
            organization=coordinating, role=Membership.Role.MANAGER, user__time_zone="UTC"
        ).user
    )
    plans = [
        PlanFactory(coordinating=[coordinating], members=organizations, time_zone=zone)
        for zone in PLAN_ZONES
    ]
    ReminderPolicy.objects.create(
        plan=plans[1],
        before_days=[30, 3, 0],
        overdue_every_days=0,
        escalate_manager_after_days=None,
        escalate_coordinators_after_days=2,
        verification_reminder_after_days=0,
        due_to_manager=True,
        due_to_coordinators=True,
        overdue_to_lead_organization=False,
        overdue_to_coordinators=True,
    )
    ReminderPolicy.objects.create(plan=plans[2], before_days=[2, 1], overdue_every_days=3)
    for _ in range(70):
        plan = rng.choice(plans)
        due = reference + dt.timedelta(days=rng.randint(-40, 40))
        task = TaskFactory(
            plan=plan,
            lead_organization=rng.choice(organizations),
            supporting_organizations=rng.sample(organizations, rng.choice([0, 0, 1, 2])),
            visibility=rng.choice(["participants", "plan"]),
            due_date=due,
        )
        created = dt.datetime.combine(
            due - dt.timedelta(days=rng.randint(0, 40)), dt.time(rng.randint(0, 23)), dt.UTC
        )
        status = rng.choice(STATUSES)
        completed = created + dt.timedelta(hours=rng.randint(1, 60 * 24))
        closed = status in ("done", "verified")
        # People set on the row, not through task_assign: many no longer belong to the
        # task's organizations (moved, or never did: legacy rows), and get no reminder.
        Task.objects.filter(pk=task.pk).update(
            assignee=rng.choice([None, *users]),
            manager=rng.choice([None, *users]),
            status=status,
            progress=100 if closed else 0,
            created_at=created,
            completed_at=completed if closed else None,
            verified_at=completed if status == "verified" else None,
        )
        if rng.random() < 0.3:  # the due date was moved after creation
            StatusUpdate.objects.create(
                task=task,
                kind=StatusUpdate.Kind.DEADLINE_CHANGE,
                created_at=created + dt.timedelta(days=rng.randint(0, 30), hours=5),
                due_date_from=due - dt.timedelta(days=7),
                due_date_to=due,
                note="Moved.",
            )


def python_rows(now, whole_day):
    return {(n.dedupe_key, n.due_at) for n in services.reminders_due(now=now, whole_day=whole_day)}


def sql_rows(now, whole_day):
    try:
        with transaction.atomic():
            created = services._reminders_insert_sql(now, whole_day, now)
            rows = set(
                Notification.objects.filter(pk__in=[row[0] for row in created]).values_list(
                    "dedupe_key", "due_at"
                )
            )
            raise Rollback
    except Rollback:
        return rows


def instants(rng: random.Random, reference: dt.date):
    start = dt.datetime.combine(reference - dt.timedelta(days=45), dt.time(), dt.UTC)
    for _ in range(50):
        yield start + dt.timedelta(minutes=rng.randint(0, 95 * 24 * 60))
    # Either side of 09:00 in Seoul and New York around the change.
    for day in (reference - dt.timedelta(days=1), reference, reference + dt.timedelta(days=1)):
        for hours in (0, 13, 14):
            for minutes in (-1, 0):
                yield dt.datetime.combine(day, dt.time(hours), dt.UTC) + dt.timedelta(
                    minutes=minutes
                )


@pytest.mark.parametrize(("seed", "reference"), [(1, SPRING), (2, SPRING), (3, FALL), (4, FALL)])
def test_postgresql_sweep_matches_the_schedule_rules(seed, reference):
    rng = random.Random(seed)
    build_world(rng, reference)
    compared = matched = 0
    for now in instants(rng, reference):
        for whole_day in (False, True):
            expected = python_rows(now, whole_day)
            assert sql_rows(now, whole_day) == expected, (now, whole_day)
            compared += 1
            matched += bool(expected)
    # 68 instants, each swept both ways (09:00 and whole day); the world is not trivially
    # empty: most instants have reminders due.
    assert compared == 136
    assert matched > compared // 2


def test_postgresql_sweep_inserts_once_and_returns_only_new_rows():
    rng = random.Random(5)
    build_world(rng, SPRING)
    now = dt.datetime(2026, 3, 9, 14, 0, tzinfo=dt.UTC)
    first = services.reminders_sweep(now=now, enqueue=False)
    second = services.reminders_sweep(now=now, enqueue=False)
    assert first.created == Notification.objects.count() > 0
    assert second.created == 0
    assert {row.dedupe_key for row in services.reminders_due(now=now)} == set(
        Notification.objects.values_list("dedupe_key", flat=True)
    )


EDGE_ZONES = [
    "Asia/Kathmandu",  # UTC+5:45
    "Australia/Lord_Howe",  # a 30-minute daylight-saving change, on 2026-04-05
    "America/Havana",
    "Asia/Seoul",
    "America/St_Johns",  # UTC-3:30
]


def test_postgresql_sweep_matches_the_rules_at_the_edges():
    """One person through several roles (two coordinating organizations, lead manager,
    assignee), inactive and system accounts as recipients, a policy of zeros (nothing before
    the due date, overdue once, escalations on day 0), half-hour zones and a half-hour DST
    change."""
    rng = random.Random(7)
    lead, lead2 = OrganizationFactory(), OrganizationFactory()
    coordinating, coordinating2 = OrganizationFactory(), OrganizationFactory()
    many_roles = MembershipFactory(
        organization=coordinating,
        role=Membership.Role.COORDINATOR,
        user__time_zone="Australia/Lord_Howe",
    ).user
    MembershipFactory(organization=coordinating2, role=Membership.Role.COORDINATOR, user=many_roles)
    MembershipFactory(organization=lead, role=Membership.Role.MANAGER, user=many_roles)
    inactive = MembershipFactory(
        organization=lead,
        role=Membership.Role.CONTRIBUTOR,
        user__time_zone="America/Havana",
        user__is_active=False,
    ).user
    others = [
        MembershipFactory(
            organization=rng.choice([lead, lead2]),
            role=rng.choice(
                [Membership.Role.CONTRIBUTOR, Membership.Role.MANAGER, Membership.Role.VIEWER]
            ),
            user__time_zone=zone,
        ).user
        for zone in EDGE_ZONES
    ]
    system = system_user()
    MembershipFactory(organization=lead2, role=Membership.Role.CONTRIBUTOR, user=system)
    lord_howe = PlanFactory(
        coordinating=[coordinating, coordinating2],
        members=[lead, lead2],
        time_zone="Australia/Lord_Howe",
    )
    st_johns = PlanFactory(
        coordinating=[coordinating], members=[lead, lead2], time_zone="America/St_Johns"
    )
    ReminderPolicy.objects.create(
        plan=st_johns,
        before_days=[],
        overdue_every_days=0,
        escalate_manager_after_days=0,
        escalate_coordinators_after_days=0,
        verification_reminder_after_days=0,
        due_to_manager=True,
        due_to_coordinators=True,
        overdue_to_coordinators=True,
        overdue_to_assignee=False,
    )
    reference = dt.date(2026, 4, 5)
    people = [many_roles, inactive, system, *others, None]
    for _ in range(50):
        due = reference + dt.timedelta(days=rng.randint(-20, 20))
        task = TaskFactory(
            plan=rng.choice([lord_howe, st_johns]),
            lead_organization=rng.choice([lead, lead2]),
            due_date=due,
        )
        created = dt.datetime.combine(
            due - dt.timedelta(days=rng.randint(0, 30)), dt.time(rng.randint(0, 23)), dt.UTC
        )
        status = rng.choice(["planned", "at_risk", "done", "cancelled"])
        Task.objects.filter(pk=task.pk).update(
            assignee=rng.choice(people),
            manager=rng.choice(people),
            status=status,
            created_at=created,
            progress=100 if status == "done" else 0,
            completed_at=created + dt.timedelta(hours=rng.randint(1, 500))
            if status == "done"
            else None,
        )
    compared = matched = 0
    start = dt.datetime.combine(reference - dt.timedelta(days=25), dt.time(), dt.UTC)
    for _ in range(60):
        now = start + dt.timedelta(minutes=rng.randint(0, 50 * 24 * 60))
        for whole_day in (False, True):
            expected = python_rows(now, whole_day)
            assert sql_rows(now, whole_day) == expected, (now, whole_day)
            compared += 1
            matched += bool(expected)
    assert compared == 120
    assert matched > compared // 2
