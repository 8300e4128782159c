"""Home by role: a contributor's open tasks (overdue first, then soonest due) with the next
step; a manager's people and who is late; a coordinator's plans in figures, what awaits
verification and what became overdue this week. Each page takes a fixed number of queries."""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from plans import services
from plans.models import Task
from tests.factories import OrganizationFactory, PlanFactory, TaskFactory, UserFactory
from tracker.models import Membership, Organization
from tracker.services import system_user

from .helpers import text

S = Task.Status
NOW = dt.datetime(2026, 11, 30, 3, 0, tzinfo=dt.UTC)  # 12:00 in Seoul


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


class World:
    def __init__(self):
        system = system_user()
        self.ministry = OrganizationFactory(name="Ministry M", kind=Organization.Kind.MINISTRY)
        self.lead = OrganizationFactory(name="Lead Co", name_ko="리드 주식회사")
        self.other = OrganizationFactory(name="Other Co")
        self.plan = PlanFactory(
            code="KUS-T",
            title="Test Joint Plan",
            coordinating=[self.ministry],
            members=[self.lead, self.other],
        )
        self.users = {}
        for name, org, role in (
            ("coordinator", self.ministry, Membership.Role.COORDINATOR),
            ("manager", self.lead, Membership.Role.MANAGER),
            ("contributor", self.lead, Membership.Role.CONTRIBUTOR),
            ("outsider", self.other, Membership.Role.CONTRIBUTOR),
        ):
            user = UserFactory(username=name, first_name=name.title(), last_name="Kim")
            services.membership_create(actor=system, user=user, organization=org, role=role)
            self.users[name] = user

    def task(self, ref, due, status=S.PLANNED, lead=None, **kwargs):
        return TaskFactory(
            plan=self.plan,
            ref=ref,
            title=f"Task {ref}",
            lead_organization=lead or self.lead,
            due_date=due,
            status=status,
            **kwargs,
        )


@pytest.fixture
def world(db, frozen):
    return World()


def _order(page: str, refs: list[str]) -> list[str]:
    return sorted(refs, key=page.index)


def test_a_contributor_sees_its_open_tasks_overdue_first_then_soonest_due(client, world):
    world.task("A-1", dt.date(2026, 12, 20))
    world.task("A-2", dt.date(2026, 11, 10))  # overdue
    world.task("A-3", dt.date(2026, 12, 5), status=S.IN_PROGRESS)
    world.task("A-4", dt.date(2026, 12, 1), status=S.DONE)  # closed: not listed
    world.task("B-1", dt.date(2026, 12, 2), lead=world.other)  # not theirs: not seen
    client.force_login(world.users["contributor"])
    response = client.get("/")
    assert response.status_code == 200
    page = text(response)
    assert _order(page, ["A-1", "A-2", "A-3"]) == ["A-2", "A-3", "A-1"]
    assert "A-4" not in page and "B-1" not in page
    assert "2026-11-10, ends 24:00 KST Overdue" not in page  # the tag is in the status cell
    assert "Planned Overdue" in page
    body = response.content.decode()
    assert 'Start<span class="sr-only">: A-1</span>' in body
    assert 'Report progress<span class="sr-only">: A-3</span>' in body


def test_the_next_step_takes_the_task_forward(client, world):
    """Start a planned task, report on one in progress, put one at risk back on track."""
    world.task("A-1", dt.date(2026, 12, 4))
    world.task("A-3", dt.date(2026, 12, 5), status=S.IN_PROGRESS)
    world.task("A-6", dt.date(2026, 12, 7), status=S.AT_RISK)
    client.force_login(world.users["contributor"])
    body = client.get("/").content.decode()
    assert 'Start<span class="sr-only">: A-1</span>' in body
    assert '?open=report#report">Report progress<span class="sr-only">: A-3</span>' in body
    assert 'Back on track<span class="sr-only">: A-6</span>' in body
    assert "Flag at risk<span" not in body


def test_a_coordinator_is_offered_to_verify_a_done_task(client, world):
    coordinator = world.users["coordinator"]
    world.task("A-5", dt.date(2026, 12, 6), status=S.DONE)
    client.force_login(coordinator)
    body = client.get("/").content.decode()
    assert '?open=move-verified#move-verified">Verify<span class="sr-only">: A-5' in body


def test_a_coordinator_sees_each_plans_figures_and_what_awaits_them(client, world):
    world.task("C-1", dt.date(2026, 12, 20), status=S.DONE)
    world.task("C-2", dt.date(2026, 12, 20), status=S.VERIFIED)
    world.task("C-3", dt.date(2026, 11, 27))  # overdue since 3 days: this week
    world.task("C-4", dt.date(2026, 10, 30), status=S.IN_PROGRESS)  # overdue for a month
    world.task("C-5", dt.date(2027, 1, 31))
    world.task("C-6", dt.date(2027, 1, 31), status=S.CANCELLED)  # does not count
    client.force_login(world.users["coordinator"])
    response = client.get("/")
    page = text(response)
    # Plan | Tasks | Done or verified | Overdue | Awaiting verification | Progress
    assert "KUS-T Test Joint Plan 5 2 2 1 " in page
    verify = page[page.index("Awaiting your verification") : page.index("Became overdue")]
    assert "C-1" in verify and "C-2" not in verify
    week = page[page.index("Became overdue this week") : page.index("Your open tasks")]
    assert "C-3" in week and "C-4" not in week


def test_a_manager_sees_their_peoples_tasks_and_who_is_late(client, world):
    contributor = world.users["contributor"]
    world.task("M-1", dt.date(2026, 11, 20), assignee=contributor)
    world.task("M-2", dt.date(2026, 11, 25), assignee=contributor)
    world.task("M-3", dt.date(2026, 12, 25), assignee=world.users["manager"])
    world.task("M-4", dt.date(2026, 11, 25))
    world.task("X-1", dt.date(2026, 11, 20), lead=world.other)
    client.force_login(world.users["manager"])
    page = text(client.get("/"))
    late = page[page.index("Who is late") : page.index("Their open tasks")]
    assert "Contributor Kim 2 overdue tasks" in late
    assert "no one 1 overdue task" in late
    assert "Manager Kim" not in late
    team = page[page.index("Their open tasks") : page.index("Your open tasks")]
    assert _order(team, ["M-1", "M-2", "M-3", "M-4"]) == ["M-1", "M-2", "M-4", "M-3"]
    assert "X-1" not in page


def test_the_home_page_is_in_the_users_language(client, world):
    world.task("K-1", dt.date(2026, 12, 20))
    user = world.users["contributor"]
    user.language = "ko"
    user.save(update_fields=["language"])
    client.force_login(user)
    response = client.get("/")
    page = text(response)
    assert '<html lang="ko">' in response.content.decode()
    assert "내 과제" in page and "계획" in page and "시작" in page
    assert "2026-12-20, KST 24:00 마감" in page
    assert "Your open tasks" not in page


def test_anonymous_visitors_are_sent_to_sign_in(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/signin/?next=/"


def test_signing_in_with_the_same_account_lands_on_home(client, world):
    user = UserFactory(username="someone", password="a-long-demo-password")
    response = client.post(
        "/signin/", {"username": "someone", "password": "a-long-demo-password"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/"
    assert response.context["user"] == user
    client.logout()
    wrong = client.post("/signin/", {"username": "someone", "password": "nope"})
    assert wrong.status_code == 200
    assert "The user name or password is not right" in text(wrong)


def test_signing_out_is_a_post(client, world):
    client.force_login(world.users["contributor"])
    assert client.get("/signout/").status_code == 405
    response = client.post("/signout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


# --- Fixed query counts ----------------------------------------------------------------------


def _queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return len(queries)


def _fill(world, count: int, start: int = 0):
    contributor = world.users["contributor"]
    for n in range(start, count):
        status = (S.PLANNED, S.IN_PROGRESS, S.DONE)[n % 3]
        due = dt.date(2026, 11, 15) + dt.timedelta(days=n)
        world.task(f"Q-{n:03d}", due, status=status, assignee=contributor if n % 2 else None)


@pytest.mark.parametrize("role", ["contributor", "manager", "coordinator"])
def test_home_takes_the_same_queries_for_5_and_50_tasks(client, world, role):
    client.force_login(world.users[role])
    _fill(world, 5)
    few = _queries(client, "/")
    _fill(world, 50, start=5)
    many = _queries(client, "/")
    assert few == many, (few, many)


def test_the_task_page_takes_the_same_queries_for_5_and_50_updates(client, world):
    task = world.task("U-1", dt.date(2026, 12, 20), status=S.IN_PROGRESS)
    task.supporting_organizations.add(world.other)
    client.force_login(world.users["coordinator"])

    def add_updates(count):
        for n in range(count):
            services.status_update_add(actor=world.users["contributor"], task=task, note=f"n{n}")

    add_updates(5)
    few = _queries(client, f"/tasks/{task.pk}/")
    add_updates(45)
    many = _queries(client, f"/tasks/{task.pk}/")
    assert few == many, (few, many)
