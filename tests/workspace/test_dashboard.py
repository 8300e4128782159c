"""The plans list, the plan dashboard and its print view.

- On the demo data the dashboard's figures are the API's rollups and the selectors' counts,
  for each of the demo's people (each sees only their tasks).
- A plan out of sight is a 404; the pages take a fixed number of queries (5, 50 and 10,000
  tasks), and the timeline stays bounded.
- The charts and their tables are drawn from the same figures; history reads in words.
- The print view is dated in the viewer's zone and written in their language.
"""

import datetime as dt
import io
import re
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from plans import permissions as policy
from plans import selectors as plan_selectors
from plans import services
from plans.models import Plan, StatusUpdate, Task
from tests.factories import (
    OrganizationFactory,
    OutcomeFactory,
    PlanFactory,
    TaskFactory,
    UserFactory,
    WorkstreamFactory,
)
from tracker.models import Membership, Organization, User
from tracker.services import system_user
from workspace import charts, dashboard

from .helpers import text
from .test_stylesheet import contrast

S = Task.Status
NOW = dt.datetime(2026, 11, 30, 16, 0, tzinfo=dt.UTC)  # 1 December, 01:00 in Seoul

DASHBOARD_CSS = Path(settings.BASE_DIR) / "workspace" / "static" / "workspace" / "dashboard.css"


def plan_url(plan, name="plan") -> str:
    return reverse(f"workspace:{name}", args=[plan.pk])


def table(body: str, chart: str) -> list[list[str]]:
    """The rows of a chart's accessible table, as cell texts."""
    match = re.search(rf'<table data-chart="{chart}">(.*?)</table>', body, re.S)
    assert match, f"no table for {chart}"
    rows = re.findall(r"<tr>(.*?)</tr>", match.group(1), re.S)
    return [
        [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cell)).strip() for cell in
         re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in rows
    ]  # fmt: skip


# --- The demo: figures equal the API's and the selectors' ----------------------------------


@pytest.fixture
def demo(db, settings):
    settings.DEBUG = True
    with time_machine.travel(NOW, tick=False):
        call_command("seed_demo", stdout=io.StringIO())
        yield Plan.objects.get(code="KUS-JP2")


def _api(client, path):
    response = client.get(path, HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize("username", ["coordinator.kr", "coordinator.us", "samsung", "viewer"])
def test_the_demo_dashboard_shows_the_apis_rollups(client, demo, username):
    user = User.objects.get(username=username)
    client.force_login(user)
    response = client.get(plan_url(demo))
    assert response.status_code == 200
    api_plan = _api(client, f"/api/v1/plans/{demo.pk}/")
    headline = response.context["headline"]
    for key in ("task_count", "done_count", "overdue_count"):
        assert headline[key] == api_plan[key], key
    assert headline["progress"] == api_plan["progress"]
    assert api_plan["task_count"] > 0

    api_workstreams = {
        row["code"]: row for row in _api(client, f"/api/v1/workstreams/?plan={demo.pk}")["results"]
    }
    shown = {row.workstream.code: row for row in response.context["workstreams"] if row.workstream}
    assert set(shown) == set(api_workstreams)
    for code, row in shown.items():
        api = api_workstreams[code]
        assert (row.task_count, row.done_count, row.overdue_count, row.progress) == (
            api["task_count"],
            api["done_count"],
            api["overdue_count"],
            api["progress"],
        ), code

    # The table beside the chart says the same (progress as the page shows it: one decimal).
    body = response.content.decode()
    rows = table(body, "workstreams")[1:]
    assert [row[0].split(" ")[0] for row in rows] == list(shown)
    for row in rows:
        api = api_workstreams[row[0].split(" ")[0]]
        assert row[1:] == [
            str(api["task_count"]),
            str(api["done_count"]),
            str(api["overdue_count"]),
            f"{api['progress']:.1f}%",
        ]
    assert f"{api_plan['progress']:.1f}%" in text(response)


@pytest.mark.parametrize("username", ["coordinator.kr", "samsung", "doosan"])
def test_the_demo_dashboard_counts_what_the_selectors_count(client, demo, username):
    user = User.objects.get(username=username)
    client.force_login(user)
    with time_machine.travel(NOW, tick=False):
        response = client.get(plan_url(demo))
        visible = plan_selectors.task_list(user=user, filters={"plan": str(demo.pk)})
        overdue = plan_selectors.task_list(
            user=user, filters={"plan": str(demo.pk), "overdue": "true"}
        )
        scorecard = plan_selectors.outcome_scorecard(user=user, plan=demo)
    statuses = dict(response.context["status_counts"])
    for code in statuses:
        assert statuses[code] == visible.filter(status=code).count(), code
    assert sum(statuses.values()) == visible.count()
    assert [row[1] for row in table(response.content.decode(), "status")[1:]] == [
        str(count) for count in statuses.values()
    ]

    by_org = {row.organization.pk: row.overdue for row in response.context["organizations"]}
    expected = {}
    for task in overdue:
        expected[task.lead_organization_id] = expected.get(task.lead_organization_id, 0) + 1
    assert {pk: n for pk, n in by_org.items() if n} == expected

    assert response.context["scorecard"] == scorecard
    drawn = {row["task"].ref for row in response.context["charts"]["timeline"]["rows"]
             if row["kind"] == "task"}  # fmt: skip
    assert drawn == set(visible.exclude(status=S.CANCELLED).values_list("ref", flat=True))


def test_the_demo_dashboard_reads_in_words(client, demo):
    client.force_login(User.objects.get(username="coordinator.us"))
    response = client.get(plan_url(demo))
    page = text(response)
    changes = page[page.index("Recent changes") :]
    assert "Progress report" in changes or "Status changed from" in changes
    for code in ("in_progress", "at_risk", "None", "pk="):
        assert code not in changes, code


# --- Sight: what the viewer may see, nothing more ------------------------------------------


class World:
    def __init__(self):
        system = system_user()
        self.ministry = OrganizationFactory(name="Ministry M", kind=Organization.Kind.MINISTRY)
        self.lead = OrganizationFactory(name="Lead Co", name_ko="리드 주식회사")
        self.other = OrganizationFactory(name="Other Co")
        self.plan = PlanFactory(
            code="KUS-T",
            title="Test Joint Plan",
            period_start=dt.date(2026, 1, 1),
            period_end=dt.date(2027, 12, 31),
            coordinating=[self.ministry],
            members=[self.lead, self.other],
        )
        self.hidden_plan = PlanFactory(code="KUS-H", title="Hidden Plan", members=[self.other])
        self.workstreams = [
            WorkstreamFactory(plan=self.plan, code=f"W{n}", title=f"Stream {n}", order=n)
            for n in range(3)
        ]
        self.users = {}
        for name, org, role in (
            ("coordinator", self.ministry, Membership.Role.COORDINATOR),
            ("contributor", self.lead, Membership.Role.CONTRIBUTOR),
            ("outsider", self.other, Membership.Role.CONTRIBUTOR),
        ):
            user = UserFactory(username=name, first_name=name.title(), last_name="Kim")
            services.membership_create(actor=system, user=user, organization=org, role=role)
            self.users[name] = user

    def task(self, ref, due, status=S.PLANNED, lead=None, workstream=0, **kwargs):
        return TaskFactory(
            plan=self.plan,
            workstream=self.workstreams[workstream] if workstream is not None else None,
            ref=ref,
            title=f"Task {ref}",
            lead_organization=lead or self.lead,
            start_date=dt.date(2026, 1, 5),
            due_date=due,
            status=status,
            **kwargs,
        )


@pytest.fixture
def world(db):
    with time_machine.travel(NOW, tick=False):
        yield World()


def test_a_plan_out_of_sight_is_not_found(client, world):
    client.force_login(world.users["contributor"])
    for name in ("plan", "plan-print"):
        assert client.get(plan_url(world.hidden_plan, name)).status_code == 404
        assert client.get(plan_url(world.plan, name)).status_code == 200
    # The same page for someone who takes part in it: the 404 was for sight, not the page.
    client.force_login(world.users["outsider"])
    assert client.get(plan_url(world.hidden_plan)).status_code == 200
    assert client.get("/plans/999999/").status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(client, world):
    for path in ("/plans/", plan_url(world.plan), plan_url(world.plan, "plan-print")):
        response = client.get(path)
        assert response.status_code == 302 and "/signin/" in response["Location"]


def test_the_plans_list_shows_the_plans_in_sight_with_their_rollups(client, world):
    world.task("A-1", dt.date(2026, 12, 20), status=S.DONE)
    world.task("A-2", dt.date(2026, 11, 10))  # overdue
    world.task("B-1", dt.date(2026, 12, 20), lead=world.other)  # the contributor's? no
    client.force_login(world.users["contributor"])
    response = client.get("/plans/")
    page = text(response)
    assert "KUS-T Test Joint Plan" in page and "Hidden Plan" not in page
    # Plan | Period | Status | Tasks | Done or verified | Overdue | Progress
    assert "KUS-T Test Joint Plan 2026-01-01 – 2027-12-31 Active 2 1 1 50.0%" in page
    assert f'href="{plan_url(world.plan)}"' in response.content.decode()


def test_the_dashboard_counts_only_the_tasks_the_viewer_may_see(client, world):
    world.task("A-1", dt.date(2026, 12, 20), status=S.IN_PROGRESS)
    world.task("B-1", dt.date(2026, 11, 10), lead=world.other)  # not the contributor's
    client.force_login(world.users["contributor"])
    response = client.get(plan_url(world.plan))
    assert response.context["headline"]["task_count"] == 1
    assert response.context["headline"]["overdue_count"] == 0
    assert "B-1" not in text(response)
    client.force_login(world.users["coordinator"])
    response = client.get(plan_url(world.plan))
    assert response.context["headline"]["task_count"] == 2
    assert response.context["headline"]["overdue_count"] == 1
    assert "B-1" in text(response)


def test_history_names_only_the_people_the_policy_lets_the_viewer_see(client, world):
    task = world.task("A-1", dt.date(2026, 12, 20), visibility=Task.Visibility.PLAN)
    author = world.users["contributor"]
    services.status_update_add(actor=author, task=task, note="First part.")
    services.status_update_add(actor=system_user(), task=task, note="Imported.")
    for viewer in ("outsider", "coordinator"):  # a plan member and the plan's coordinator
        user = world.users[viewer]
        client.force_login(user)
        changes = text(client.get(plan_url(world.plan)))
        changes = changes[changes.index("Recent changes") :]
        assert "Progress report" in changes
        assert "the system" in changes  # the system account by that name, never as a person
        if policy.can(user, policy.VIEW, author):
            assert "Contributor Kim" in changes
            assert "someone outside your organizations" not in changes
        else:
            assert "Contributor Kim" not in changes
            assert "someone outside your organizations" in changes


def test_the_home_page_links_each_coordinated_plan_to_its_dashboard(client, world):
    client.force_login(world.users["coordinator"])
    assert f'href="{plan_url(world.plan)}"' in client.get("/").content.decode()


def test_the_header_links_to_the_plans(client, world):
    client.force_login(world.users["contributor"])
    assert f'href="{reverse("workspace:plans")}"' in client.get("/").content.decode()


# --- Charts and tables from the same figures ---------------------------------------------


def test_charts_and_tables_are_drawn_from_the_same_figures(client, world):
    with time_machine.travel(NOW, tick=False):
        world.task("A-1", dt.date(2027, 1, 20), status=S.IN_PROGRESS, workstream=0)
        world.task("A-2", dt.date(2026, 11, 10), workstream=1)  # overdue
        world.task("A-3", dt.date(2026, 12, 10), workstream=None)  # due within 30 days
        world.task("A-4", dt.date(2026, 12, 20), status=S.CANCELLED, workstream=1)
        outcome = OutcomeFactory()
        world.task("A-5", dt.date(2027, 3, 1), status=S.DONE, source_outcomes=[outcome])
        client.force_login(world.users["coordinator"])
        response = client.get(plan_url(world.plan))
    body = response.content.decode()
    headline = response.context["headline"]
    assert (headline["task_count"], headline["overdue_count"], headline["due_soon_count"]) == (
        4,
        1,
        1,
    )
    assert headline["cancelled_count"] == 1
    # The organizations' chart and table: Lead Co, 1 overdue, 1 due within 30 days.
    assert table(body, "organizations")[1:] == [["Lead Co", "1", "1"]]
    assert "1 overdue" in text(response) and "1 due soon" in text(response)
    # Tasks without a workstream have their own line.
    rows = table(body, "workstreams")[1:]
    assert rows[-1][0] == "No workstream" and rows[-1][1] == "1"
    # The scorecard: the forum of A-5's outcome, one outcome fulfilled.
    scorecard = table(body, "scorecard")[1:]
    assert scorecard == [[f"{outcome.forum.name} (2025-07-01)", "1", "0", "0", "0", "1"]]
    # The timeline draws the four tasks that are not cancelled, today marked.
    timeline = table(body, "timeline")[1:]
    assert sorted(row[0].split(" ")[0] for row in timeline) == ["A-1", "A-2", "A-3", "A-5"]
    assert body.count('class="t-bar ') == 4
    assert 'class="t-today"' in body
    assert "Planned, Overdue" in [row[5] for row in timeline]


def test_the_timeline_marks_today_against_the_plan_period():
    class Group:
        workstream = None
        more = 0
        tasks = [
            Task(ref="X", start_date=dt.date(2026, 1, 1), due_date=dt.date(2026, 12, 31),
                 status="planned", progress=50),
        ]  # fmt: skip

    chart = charts.timeline(
        [Group],
        period_start=dt.date(2026, 1, 1),
        period_end=dt.date(2026, 12, 31),
        today=dt.date(2026, 7, 2),
    )
    share = charts.LABEL_SHARE
    # 2 July is day 182 of 365: that share of the bars' width.
    assert chart["today_x"] == charts.pct(share + (100 - share) * 182 / 365)
    task_row = [row for row in chart["rows"] if row["kind"] == "task"][0]
    assert task_row["x"] == charts.pct(share) and task_row["width"] == charts.pct(100 - share)
    assert task_row["done_width"] == charts.pct((100 - share) / 2)
    assert [tick["quarter"] for tick in chart["ticks"]] == ["Q1", "Q2", "Q3", "Q4"]
    # A task due after the period widens the axis; today outside it is not drawn.
    Group.tasks[0].due_date = dt.date(2027, 12, 31)
    chart = charts.timeline(
        [Group],
        period_start=dt.date(2026, 1, 1),
        period_end=dt.date(2026, 12, 31),
        today=dt.date(2028, 3, 1),
    )
    assert chart["last"] == dt.date(2027, 12, 31) and chart["today_x"] is None


def test_chart_colours_meet_wcag_aa():
    tokens = dict(re.findall(r"(--chart-[\w-]+):\s*(#[0-9a-fA-F]{6})", DASHBOARD_CSS.read_text()))
    marks = [
        name
        for name in tokens
        if name not in ("--chart-track", "--chart-period", "--chart-grid", "--chart-no_task")
    ]
    for name in marks:  # graphics a reader needs: 3:1 against the page (WCAG 1.4.11)
        assert contrast(tokens[name], "#ffffff") >= 3, name
    for name in ("--chart-progress", "--chart-overdue", "--chart-due-soon"):
        assert contrast(tokens[name], tokens["--chart-track"]) >= 3, name
    assert "url(http" not in DASHBOARD_CSS.read_text()


# --- Fixed query counts; the timeline stays bounded ---------------------------------------


def _queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return len(queries)


def _fill(world, count: int, start: int = 0):
    for n in range(start, count):
        task = world.task(
            f"Q-{n:05d}",
            dt.date(2026, 11, 15) + dt.timedelta(days=n),
            status=(S.PLANNED, S.IN_PROGRESS, S.DONE)[n % 3],
            workstream=n % 3,
            lead=(world.lead, world.other)[n % 2],
        )
        services.status_update_add(actor=world.users["coordinator"], task=task, note=f"n{n}")


def _bulk(world, count: int):
    """`count` tasks in one bulk_create (status updates too): the 10,000-task plan."""
    system = system_user()
    tasks = []
    for n in range(count):
        due = dt.date(2026, 1, 10) + dt.timedelta(days=n % 700)
        tasks.append(
            Task(
                plan=world.plan,
                workstream=world.workstreams[n % 3],
                ref=f"B-{n:05d}",
                title=f"Bulk task {n}",
                lead_organization=(world.lead, world.other, world.ministry)[n % 3],
                start_date=dt.date(2026, 1, 5),
                due_date=due,
                deadline_at=Task.deadline_for(due, world.plan.time_zone),
                status=(S.PLANNED, S.IN_PROGRESS, S.AT_RISK, S.DONE)[n % 4],
                progress=(0, 40, 60, 100)[n % 4],
                created_by=system,
                updated_by=system,
            )
        )
    Task.objects.bulk_create(tasks, batch_size=1000)
    some = Task.objects.filter(plan=world.plan).order_by("pk")[:20]
    StatusUpdate.objects.bulk_create(
        StatusUpdate(task=task, author=system, created_at=NOW, kind="progress", progress=10)
        for task in some
    )


@pytest.mark.parametrize("page", ["plan", "plan-print"])
def test_the_dashboard_takes_the_same_queries_for_5_50_and_10000_tasks(client, world, page):
    client.force_login(world.users["coordinator"])
    _fill(world, 5)
    few = _queries(client, plan_url(world.plan, page))
    _fill(world, 50, start=5)
    many = _queries(client, plan_url(world.plan, page))
    assert few == many, (few, many)
    _bulk(world, 10_000)
    response = client.get(plan_url(world.plan, page))
    assert response.context["headline"]["task_count"] == 10_050
    huge = _queries(client, plan_url(world.plan, page))
    assert huge == few, (few, huge)
    # The timeline draws at most TIMELINE_PER_WORKSTREAM tasks per workstream and says how
    # many more each holds.
    body = response.content.decode()
    per = dashboard.TIMELINE_PER_WORKSTREAM
    assert body.count('class="t-bar ') == 3 * per
    for group in response.context["timeline"]:
        assert len(group.tasks) == per
        assert group.more == group.workstream.tasks.exclude(status=S.CANCELLED).count() - per
    assert "more tasks not drawn" in text(response)


def test_the_plans_list_takes_the_same_queries_for_5_and_50_plans(client, world):
    client.force_login(world.users["outsider"])

    def plans(count, start=0):
        for n in range(start, count):
            PlanFactory(code=f"P-{n}", members=[world.other])

    plans(5)
    few = _queries(client, "/plans/")
    plans(50, start=5)
    many = _queries(client, "/plans/")
    assert few == many, (few, many)


# --- The print view: dated in the viewer's zone, in their language ------------------------


def test_the_print_view_is_dated_in_the_viewers_zone_and_language(client, world):
    korean = world.users["coordinator"]
    korean.language, korean.time_zone = "ko", "Asia/Seoul"
    korean.save(update_fields=["language", "time_zone"])
    client.force_login(korean)
    with time_machine.travel(NOW, tick=False):
        response = client.get(plan_url(world.plan, "plan-print"))
    page = text(response)
    assert '<html lang="ko">' in response.content.decode()
    assert "2026년 12월 1일 기준" in page  # 01:00 on 1 December in Seoul
    assert "계획 이행 현황 보고" in page and "분과별 진행률" in page
    assert "Progress by workstream" not in page
    assert "@page" in (DASHBOARD_CSS.parent / "print.css").read_text()
    assert "workspace/print.css" in response.content.decode()

    american = world.users["outsider"]
    american.language, american.time_zone = "en", "America/New_York"
    american.save(update_fields=["language", "time_zone"])
    client.force_login(american)
    with time_machine.travel(NOW, tick=False):
        response = client.get(plan_url(world.plan, "plan-print"))
    page = text(response)
    assert '<html lang="en">' in response.content.decode()
    assert "As of Nov. 30, 2026 (2026-11-30 11:00 EST)" in page  # still 30 November there
    assert "Plan status report" in page


def test_the_dashboard_is_in_korean_for_a_korean_user(client, world):
    user = world.users["contributor"]
    user.language = "ko"
    user.save(update_fields=["language"])
    world.task("A-1", dt.date(2026, 12, 20), status=S.IN_PROGRESS)
    client.force_login(user)
    page = text(client.get(plan_url(world.plan)))
    for words in (
        "분과별 진행률",
        "상태별 과제",
        "일정",
        "포럼별 성과 이행 현황",
        "최근 변경 사항",
    ):
        assert words in page
    for words in ("Progress by workstream", "Tasks by status", "Recent changes"):
        assert words not in page
