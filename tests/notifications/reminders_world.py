"""A small world for the reminder tests: a Seoul plan whose task is led by organization A,
with a Seoul recipient (Korean) and a New York recipient (English, the task's manager), and
a coordinator of the plan (coordinating organization C)."""

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from plans.models import Plan, Task
from tests.factories import MembershipFactory, OrganizationFactory, PlanFactory, TaskFactory
from tracker.models import Membership, Organization, User

SEOUL = ZoneInfo("Asia/Seoul")
NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.UTC
# The US moves its clocks on 2026-03-08 and back on 2026-11-01.
DUE = dt.date(2026, 3, 10)
CREATED = dt.datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def local(day: dt.date, zone, hour=9, minute=0, second=0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute, second), tzinfo=zone)


@dataclass
class World:
    lead: Organization
    coordinating: Organization
    plan: Plan
    seoul: User
    new_york: User
    coordinator: User
    task: Task


def build(due: dt.date = DUE, created: dt.datetime = CREATED, plan_zone="Asia/Seoul") -> World:
    lead = OrganizationFactory()
    coordinating = OrganizationFactory(country="US")
    plan = PlanFactory(coordinating=[coordinating], members=[lead], time_zone=plan_zone)
    seoul = MembershipFactory(
        organization=lead,
        role=Membership.Role.CONTRIBUTOR,
        user__time_zone="Asia/Seoul",
        user__language="ko",
    ).user
    new_york = MembershipFactory(
        organization=lead,
        role=Membership.Role.MANAGER,
        user__time_zone="America/New_York",
        user__language="en",
    ).user
    coordinator = MembershipFactory(
        organization=coordinating,
        role=Membership.Role.COORDINATOR,
        user__time_zone="America/New_York",
    ).user
    task = TaskFactory(
        plan=plan,
        lead_organization=lead,
        due_date=due,
        assignee=seoul,
        manager=new_york,
        at=created,
    )
    return World(lead, coordinating, plan, seoul, new_york, coordinator, task)
