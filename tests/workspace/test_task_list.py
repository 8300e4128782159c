"""The task list (/tasks/) and its exports: the API's filters give the API's rows, columns
sort, cursor pages keep filters and sort, exports hold exactly the visible filtered rows in
the viewer's language, bad input is a readable 400, and every page and export takes a fixed
number of queries."""

import csv
import datetime as dt
import io
import re
from html import unescape

import openpyxl
import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from plans import permissions as policy
from plans import services
from plans.models import Task
from tests.factories import (
    ForumFactory,
    OrganizationFactory,
    OutcomeFactory,
    PlanFactory,
    TaskFactory,
    UserFactory,
    WorkstreamFactory,
)
from tests.permission_matrix import EXPECTED, ROLES, TASK_REF, build_world
from tracker.models import Membership, Organization
from tracker.services import system_user
from workspace import exports
from workspace import task_list as tl

from .helpers import sign_in, text

S, P = Task.Status, Task.Priority
NOW = dt.datetime(2026, 11, 30, 3, 0, tzinfo=dt.UTC)  # 12:00 in Seoul
LIST = reverse("workspace:tasks")
CSV_URL = reverse("workspace:tasks-export", args=["csv"])
XLSX_URL = reverse("workspace:tasks-export", args=["xlsx"])
SECRET_TITLE = "Confidential pricing of the Absolics glass substrate"


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


class World:
    """A ministry coordinating plan A (and plan B, unseen by the firms); firms Alpha and
    Beta in plan A, each with a contributor; tasks of every kind of status, priority,
    deadline, workstream and assignee, one of Beta's private (participants only) and one of
    Beta's open to the whole plan."""

    def __init__(self, with_tasks: bool = True):
        system = system_user()
        self.ministry = OrganizationFactory(
            name="Ministry M", name_ko="엠 부처", kind=Organization.Kind.MINISTRY
        )
        self.alpha = OrganizationFactory(name="Alpha Co", name_ko="알파 주식회사")
        self.beta = OrganizationFactory(name="Beta Co", name_ko="베타 주식회사")
        self.gamma = OrganizationFactory(name="Gamma Institute")
        self.plan = PlanFactory(
            code="KUS-T",
            title="Test Joint Plan",
            coordinating=[self.ministry],
            members=[self.alpha, self.beta, self.gamma],
        )
        self.plan_b = PlanFactory(
            code="KUS-B", title="Other Plan", time_zone="America/New_York",
            coordinating=[self.ministry],
        )  # fmt: skip
        self.ws_chips = WorkstreamFactory(plan=self.plan, code="SC", title="Chips")
        self.ws_energy = WorkstreamFactory(plan=self.plan, code="EN", title="Energy")
        self.users = {}
        for name, org, role, first in (
            ("coordinator", self.ministry, Membership.Role.COORDINATOR, "Minji"),
            ("alpha", self.alpha, Membership.Role.CONTRIBUTOR, "Aram"),
            ("alpha2", self.alpha, Membership.Role.CONTRIBUTOR, "Bora"),
            ("beta", self.beta, Membership.Role.CONTRIBUTOR, "Chul"),
            ("beta2", self.beta, Membership.Role.CONTRIBUTOR, "Dana"),
        ):
            user = UserFactory(username=name, first_name=first, last_name="Kim")
            services.membership_create(actor=system, user=user, organization=org, role=role)
            self.users[name] = user
        forum = ForumFactory(name="SCCD 2025")
        self.outcome = OutcomeFactory(forum=forum, title="Chips MOU")
        u = self.users
        specs = [
            # ref, lead, due, status, priority, workstream, assignee, progress, extra
            ("A-01", self.alpha, "2026-11-10", S.PLANNED, P.HIGH, self.ws_chips, u["alpha"], 0,
             {"title": "Battery cell pilot line", "source_outcomes": [self.outcome]}),
            ("A-02", self.alpha, "2026-12-05", S.IN_PROGRESS, P.CRITICAL, self.ws_chips,
             u["alpha2"], 40, {"supporting_organizations": [self.gamma]}),
            ("A-03", self.alpha, "2027-01-20", S.AT_RISK, P.LOW, self.ws_energy, None, 60, {}),
            ("A-04", self.alpha, "2026-10-01", S.DONE, P.NORMAL, None, u["alpha"], 100, {}),
            ("A-05", self.alpha, "2027-03-31", S.BLOCKED, P.NORMAL, self.ws_energy, u["alpha2"],
             20, {"title": "Hydrogen turbine battery test"}),
            ("A-06", self.alpha, "2026-11-30", S.PLANNED, P.HIGH, None, None, 0, {}),
            ("B-01", self.beta, "2026-11-20", S.IN_PROGRESS, P.HIGH, self.ws_chips, u["beta2"],
             30, {"title": SECRET_TITLE}),
            ("B-02", self.beta, "2027-02-28", S.PLANNED, P.CRITICAL, self.ws_energy, u["beta"],
             0, {"visibility": Task.Visibility.PLAN, "title": "Shared grid study"}),
            ("B-03", self.beta, "2026-12-15", S.VERIFIED, P.LOW, None, None, 100,
             {"supporting_organizations": [self.alpha]}),
            ("G-01", self.gamma, "2026-09-30", S.CANCELLED, P.NORMAL, None, None, 0, {}),
        ]  # fmt: skip
        self.tasks = {}
        if not with_tasks:
            return  # the organizations, plans and people only
        for ref, lead, due, status, priority, ws, assignee, progress, extra in specs:
            task = TaskFactory(
                plan=self.plan, ref=ref, title=extra.pop("title", f"Task {ref}"),
                lead_organization=lead, due_date=dt.date.fromisoformat(due), status=status,
                priority=priority, workstream=ws, assignee=assignee, **extra,
            )  # fmt: skip
            if progress and status not in (S.DONE, S.VERIFIED):
                task = services.status_update_add(
                    actor=u["coordinator"], task=task, progress=progress
                )
                task = task.task
            self.tasks[ref] = task
        self.tasks["X-01"] = TaskFactory(
            plan=self.plan_b, ref="X-01", title="Task X-01", lead_organization=self.ministry,
            due_date=dt.date(2026, 12, 31),
        )  # fmt: skip

    def ids(self, *refs):
        return [self.tasks[ref].pk for ref in refs]


@pytest.fixture
def world(db, frozen):
    return World()


def page_ids(response) -> list[int]:
    assert response.status_code == 200, text(response)[:500]
    return [task.pk for task in response.context["page"].tasks]


def api_ids(client, query: str) -> list[int]:
    """Every id the API lists for `query`, page after page, in its order."""
    ids, url = [], f"/api/v1/tasks/?{query}&page_size=200" if query else "/api/v1/tasks/"
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        ids += [row["id"] for row in body["results"]]
        url = body["next"]
    return ids


def all_list_ids(client, query: str) -> list[int]:
    """Every id of the list for `query`, following its next links."""
    ids, url = [], f"{LIST}?{query}"
    while url:
        response = client.get(url)
        ids += page_ids(response)
        url = response.context["next_url"]
    return ids


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content)
    assert body.startswith("\ufeff".encode()), "no byte order mark: Excel would garble Korean"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def read_xlsx(response) -> list[list]:
    body = b"".join(response.streaming_content)
    workbook = openpyxl.load_workbook(io.BytesIO(body))
    return [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]


def refs_of(rows) -> list[str]:
    keys = exports.column_keys(rows[0])
    return [row[keys.index("ref")] for row in rows[1:]]


# --- Filters: the API's rows ----------------------------------------------------------------


def queries(w: World) -> list[str]:
    return [
        "",
        "status=planned",
        "status=planned&status=in_progress",
        "overdue=true",
        "overdue=false",
        f"plan={w.plan.pk}",
        f"plan={w.plan_b.pk}",
        f"workstream={w.ws_chips.pk}",
        f"workstream={w.ws_chips.pk},{w.ws_energy.pk}",
        f"organization={w.alpha.pk}",
        f"organization={w.gamma.pk}",
        f"assignee={w.users['alpha'].pk}",
        f"assignee={w.users['beta'].pk}",
        "due_after=2026-12-01&due_before=2027-02-28",
        "due_before=2026-11-30",
        "q=battery",
        "q=BATTERY&status=blocked",
        f"forum={w.outcome.forum_id}",
        "priority=critical",
        f"lead_organization={w.beta.pk}&overdue=false",
    ]


@pytest.mark.parametrize("who", ["coordinator", "alpha", "beta"])
def test_filters_give_the_apis_rows_in_the_apis_order(client, world, who):
    sign_in(client, world.users[who])
    for query in queries(world):
        assert all_list_ids(client, query) == api_ids(client, query), (who, query)


def test_the_filters_do_filter(client, world):
    """The comparison above would pass if both ignored the filters: check a few by hand."""
    sign_in(client, world.users["coordinator"])
    assert set(all_list_ids(client, "overdue=true")) == set(world.ids("A-01", "B-01"))
    assert set(all_list_ids(client, "q=battery")) == set(world.ids("A-01", "A-05"))
    assert set(all_list_ids(client, f"organization={world.gamma.pk}")) == set(
        world.ids("A-02", "G-01")
    )
    assert all_list_ids(client, f"plan={world.plan_b.pk}") == world.ids("X-01")
    assert set(all_list_ids(client, "due_after=2026-12-01&due_before=2027-02-28")) == set(
        world.ids("A-02", "A-03", "B-02", "B-03", "X-01")
    )


def test_a_firm_sees_only_its_tasks_and_those_open_to_the_plan(client, world):
    sign_in(client, world.users["alpha"])
    ids = set(all_list_ids(client, ""))
    assert ids == set(world.ids("A-01", "A-02", "A-03", "A-04", "A-05", "A-06", "B-02", "B-03"))
    response = client.get(LIST)
    assert SECRET_TITLE not in response.content.decode()


@pytest.mark.parametrize("role", ROLES)
def test_each_role_lists_the_matrix_task_only_if_it_may_see_it(client, db, role):
    matrix = build_world()
    response = sign_in(client, matrix.user(role)).get(LIST)
    if role == "anonymous":
        assert response.status_code == 302 and "/signin/" in response["Location"]
        return
    listed = matrix.task.pk in page_ids(response)
    assert listed == (EXPECTED[("task", "view")][role] != "hidden")
    exported = refs_of(read_csv(client.get(CSV_URL)))
    assert (TASK_REF in exported) == listed


# --- The filter form's choices --------------------------------------------------------------


def people_seen_by(user) -> set[str]:
    return {person.get_full_name() for person in policy.for_user(user, policy.VIEW, type(user))}


def test_the_form_offers_only_what_the_viewer_may_see(client, world):
    alpha = world.users["alpha"]
    sign_in(client, alpha)
    choices = client.get(LIST).context["form"]["choices"]
    plans = [label for _value, label in choices["plan"]]
    assert plans == ["KUS-T · Test Joint Plan"]  # not plan B, which Alpha takes no part in
    organizations = {value for value, _label in choices["organization"]}
    # Leading or supporting a task Alpha sees; Ministry M leads only X-01 (plan B).
    assert organizations == {str(world.alpha.pk), str(world.beta.pk), str(world.gamma.pk)}
    people = {label for _value, label in choices["assignee"]}
    # Assignees of tasks Alpha sees, whom the policy lets Alpha see: never Beta's Dana,
    # assigned only to Beta's private B-01; Beta's Chul (on B-02, open to the plan) as the
    # policy says; never Minji, who is assigned nothing.
    assert {"Aram Kim", "Bora Kim"} <= people
    assert people == {"Aram Kim", "Bora Kim", "Chul Kim"} & people_seen_by(alpha)
    assert "Dana Kim" not in people and "Minji Kim" not in people

    sign_in(client, world.users["coordinator"])
    choices = client.get(LIST).context["form"]["choices"]
    assert len(choices["plan"]) == 2
    assert {label for _value, label in choices["assignee"]} == {
        "Aram Kim", "Bora Kim", "Chul Kim", "Dana Kim",
    }  # fmt: skip


def test_an_assignee_is_named_exactly_where_the_api_names_them(client, world):
    """The policy's people scope decides, as in the API (assignee null when not seen): in the
    list and in the export alike."""
    alpha, chul = world.users["alpha"], world.users["beta"]
    seen = policy.for_user(alpha, policy.VIEW, type(alpha)).filter(pk=chul.pk).exists()
    sign_in(client, alpha)
    page = text(client.get(LIST + "?q=grid"))
    rows = read_csv(client.get(CSV_URL + "?q=grid"))
    keys = exports.column_keys(rows[0])
    assert rows[1][keys.index("ref")] == "B-02"
    api = client.get(f"/api/v1/tasks/{world.tasks['B-02'].pk}/").json()
    if seen:
        assert "Chul Kim" in page and rows[1][keys.index("assignee")] == "Chul Kim"
        assert api["assignee"] == chul.pk
    else:
        assert "Chul" not in page and "not shown to you" in page
        assert rows[1][keys.index("assignee")] == ""
        assert api["assignee"] is None


# --- Sorting and pages ----------------------------------------------------------------------


def expected_order(world, user, key: str, descending: bool, language="en") -> list[int]:
    """The order computed here in Python, from the rows' own values."""
    visible = policy.for_user(user, policy.VIEW, Task).select_related(
        "assignee", "lead_organization"
    )
    seen_people = set(policy.for_user(user, policy.VIEW, type(user)).values_list("pk", flat=True))

    def value(task):
        if key == "assignee":
            if task.assignee_id not in seen_people:
                return ""
            return task.assignee.get_full_name() or task.assignee.username
        if key == "organization":
            org = task.lead_organization
            return (org.name_ko or org.name) if language == "ko" else org.name
        return {
            "ref": task.ref,
            "title": task.title,
            "status": list(Task.Status.values).index(task.status),
            "due": task.due_date,
            "priority": list(Task.Priority.values).index(task.priority),
            "progress": task.progress,
        }[key]

    return [t.pk for t in sorted(visible, key=lambda t: (value(t), t.pk), reverse=descending)]


@pytest.mark.parametrize("key", [column.key for column in tl.COLUMNS])
def test_every_column_sorts_both_ways_across_pages(client, world, monkeypatch, key):
    monkeypatch.setattr(tl, "PAGE_SIZE", 3)
    coordinator = world.users["coordinator"]
    sign_in(client, coordinator)
    for descending in (False, True):
        _check_sort(client, world, coordinator, key, descending)


def _check_sort(client, world, coordinator, key, descending):
    sort = f"-{key}" if descending else key
    forward = all_list_ids(client, f"sort={sort}")
    assert forward == expected_order(world, coordinator, key, descending)
    # Back again with the previous links: the same pages in reverse.
    pages, url = [], f"{LIST}?sort={sort}"
    while url:
        response = client.get(url)
        pages.append(page_ids(response))
        url = response.context["next_url"]
    back, url = [page_ids(response)], response.context["previous_url"]
    while url:
        response = client.get(url)
        back.append(page_ids(response))
        url = response.context["previous_url"]
    assert back == pages[::-1]
    assert len(pages) == 4


def test_sorting_by_organization_follows_the_viewers_language(client, world):
    coordinator = world.users["coordinator"]
    coordinator.language = "ko"
    coordinator.save(update_fields=["language"])
    sign_in(client, coordinator)
    assert all_list_ids(client, "sort=organization") == expected_order(
        world, coordinator, "organization", False, language="ko"
    )


def test_priority_sorts_by_rank_and_status_by_workflow(client, world):
    sign_in(client, world.users["coordinator"])
    first = client.get(LIST + "?sort=-priority").context["page"].tasks[0]
    assert first.priority == P.CRITICAL
    statuses = [t.status for t in client.get(LIST + "?sort=status").context["page"].tasks]
    assert statuses[0] == S.PLANNED and statuses[-1] == S.CANCELLED


def test_links_keep_the_filters_and_the_sort(client, world, monkeypatch):
    monkeypatch.setattr(tl, "PAGE_SIZE", 2)
    sign_in(client, world.users["coordinator"])
    response = client.get(f"{LIST}?status=planned&status=in_progress&q=&sort=-due")
    next_url = response.context["next_url"]
    assert "status=planned" in next_url and "status=in_progress" in next_url
    assert "sort=-due" in next_url and "q=" not in next_url
    second = client.get(next_url)
    assert "cursor=" in second.context["previous_url"]
    assert "sort=-due" in second.context["previous_url"]
    for header in second.context["headers"]:
        assert "status=planned" in header["query"] and "cursor" not in header["query"]
    export_urls = dict(second.context["exports"])
    assert "status=in_progress" in export_urls["csv"] and "sort=-due" in export_urls["csv"]
    assert "cursor" not in export_urls["xlsx"]


def test_sortable_headers_are_links_with_aria_sort(client, world):
    sign_in(client, world.users["coordinator"])
    body = client.get(LIST + "?sort=-progress").content.decode()
    headers = re.findall(
        r"<th scope=\"col\"([^>]*)>\s*<a id=\"sort-(\w+)\"[^>]*href=\"([^\"]+)\"", body
    )
    assert [key for _attrs, key, _href in headers] == [c.key for c in tl.COLUMNS]
    sorted_headers = [(key, attrs) for attrs, key, _href in headers if "aria-sort" in attrs]
    assert sorted_headers == [("progress", ' aria-sort="descending" class="col-progress num"')]
    href = dict((key, unescape(href)) for _attrs, key, href in headers)
    assert href["progress"].endswith("sort=progress")  # pressed again: ascending
    assert href["ref"].endswith("sort=ref")


def test_a_cursor_from_one_order_is_refused_in_another(client, world, monkeypatch):
    monkeypatch.setattr(tl, "PAGE_SIZE", 2)
    sign_in(client, world.users["coordinator"])
    next_url = client.get(LIST + "?sort=ref").context["next_url"]
    cursor = re.search(r"cursor=([^&]+)", next_url)[1]
    response = client.get(f"{LIST}?sort=-ref&cursor={cursor}")
    assert response.status_code == 400
    assert "Page: This page link is not valid" in text(response)


def test_a_cursor_carries_the_longest_korean_title(client, world, monkeypatch):
    monkeypatch.setattr(tl, "PAGE_SIZE", 1)
    # Varied syllables (they compress less than one repeated), up to the field's limit.
    length = Task._meta.get_field("title").max_length
    longest = "".join(chr(0xAC00 + (n * 37) % 11172) for n in range(length))
    services.task_update(actor=world.users["coordinator"], task=world.tasks["A-01"], title=longest)
    sign_in(client, world.users["coordinator"])
    first = client.get(LIST + "?sort=-title")
    assert page_ids(first) == world.ids("A-01")
    second = client.get(first.context["next_url"])
    assert page_ids(second) == world.ids("X-01")  # then "Task X-01", "Task G-01" ...
    assert len(all_list_ids(client, "sort=-title")) == Task.objects.count()


# --- Bad input: a readable 400, never a 500 -------------------------------------------------


@pytest.mark.parametrize(
    ("query", "label"),
    [
        ("plan=abc", "Plan"),
        ("plan=1.0", "Plan"),
        ("workstream=-3", "Workstream"),
        ("assignee=99999999999999999999", "Assignee"),
        ("organization=%EF%BC%91", "Organization (lead or supporting)"),  # a full-width 1
        ("status=finished", "Status"),
        ("due_after=2026-13-01", "Due from"),
        ("due_before=0001-01-01", "Due until"),
        ("updated_after=yesterday", "Changed after"),
        ("sort=secret_field", "Sort"),
        ("sort=--due", "Sort"),
        ("cursor=not-a-cursor", "Page"),
        ("cursor=" + "x" * 5000, "Page"),
    ],
)
def test_bad_input_is_a_readable_400_naming_the_field(client, db, query, label):
    world = World(with_tasks=False)
    sign_in(client, world.users["coordinator"])
    # An export takes every page: it reads no cursor.
    urls = (LIST,) if query.startswith("cursor=") else (LIST, CSV_URL, XLSX_URL)
    for url in urls:
        response = client.get(f"{url}?{query}")
        assert response.status_code == 400, (url, query)
        assert "There is a problem" in text(response)
        assert f"{label}: " in text(response), text(response)[:600]


def test_the_api_refuses_what_the_list_refuses(client, world):
    sign_in(client, world.users["coordinator"])
    for query in (
        "plan=abc",
        "status=finished",
        "status=planned,in_progress",  # statuses repeat the parameter, in both
        "due_before=0001-01-01",
    ):
        assert client.get(f"{LIST}?{query}").status_code == 400
        assert client.get(f"/api/v1/tasks/?{query}").status_code == 400


def test_every_bad_field_is_named_at_once_in_korean(client, world):
    coordinator = world.users["coordinator"]
    coordinator.language = "ko"
    coordinator.save(update_fields=["language"])
    sign_in(client, coordinator)
    response = client.get(f"{LIST}?plan=abc&due_before=0001-01-01&sort=zzz")
    assert response.status_code == 400
    page = text(response)
    assert "확인이 필요합니다" in page
    assert "계획: 정수를 입력하세요." in page
    assert "마감일(까지): 1900년부터 2200년 사이의 날짜를 입력하세요." in page
    assert "정렬: " in page
    # The field keeps what was typed, and the summary links to it.
    assert 'href="#f-plan"' in response.content.decode()
    assert '<option value="abc" selected>' in response.content.decode()


# --- Exports --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_export_holds_every_visible_filtered_row_not_just_the_page(
    client, world, monkeypatch, fmt
):
    monkeypatch.setattr(tl, "PAGE_SIZE", 2)
    sign_in(client, world.users["alpha"])
    read = read_csv if fmt == "csv" else read_xlsx
    url = reverse("workspace:tasks-export", args=[fmt])
    everything = refs_of(read(client.get(url)))
    assert everything == ["A-04", "A-01", "A-06", "A-02", "B-03", "A-03", "B-02", "A-05"]
    assert "B-01" not in everything and "X-01" not in everything  # Beta's private; plan B
    filtered = refs_of(read(client.get(f"{url}?status=planned&sort=-ref")))
    assert filtered == ["B-02", "A-06", "A-01"]
    response = client.get(url + "?q=Absolics")
    rows = read(response)
    assert rows[1:] == []
    assert SECRET_TITLE not in str(rows)
    # The list's ids and the export's refs agree, page after page.
    listed = all_list_ids(client, "status=planned&sort=-ref")
    assert listed == world.ids("B-02", "A-06", "A-01")


def test_the_csv_opens_in_excel_and_reads_in_english(client, world):
    sign_in(client, world.users["coordinator"])
    response = client.get(CSV_URL + "?q=pilot")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="tasks-2026-11-30.csv"'
    rows = read_csv(response)
    assert rows[0] == [
        "Plan", "Ref", "Title", "Workstream", "Status", "Overdue", "Due date", "Deadline",
        "Deadline in your time zone", "Priority", "Assignee", "Lead organization", "Progress (%)",
    ]  # fmt: skip
    assert rows[1] == [
        "KUS-T", "A-01", "Battery cell pilot line", "Chips", "Planned", "Yes", "2026-11-10",
        "2026-11-10, ends 24:00 KST", "2026-11-10 24:00 KST", "High", "Aram Kim", "Alpha Co",
        "0",
    ]  # fmt: skip


def test_the_xlsx_reads_in_korean_with_the_deadline_in_the_viewers_zone(client, world):
    coordinator = world.users["coordinator"]
    coordinator.language = "ko"
    coordinator.time_zone = "America/New_York"
    coordinator.save(update_fields=["language", "time_zone"])
    sign_in(client, coordinator)
    response = client.get(XLSX_URL + "?q=pilot")
    assert response["Content-Type"] == exports.XLSX_TYPE
    # The file name's date is the viewer's: still 29 November in New York.
    assert 'filename="tasks-2026-11-29.xlsx"' in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    workbook = openpyxl.load_workbook(io.BytesIO(body))
    sheet = workbook.worksheets[0]
    assert sheet.title == "과제"
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[0] == [
        "계획", "참조 번호", "제목", "분과", "상태", "기한 경과", "마감일", "마감 기한",
        "내 시간대의 마감 기한", "우선순위", "담당자", "주관 기관", "진행률(%)",
    ]  # fmt: skip
    assert exports.column_keys(rows[0]) == [c.key for c in exports.EXPORT_COLUMNS]
    assert rows[1] == [
        "KUS-T", "A-01", "Battery cell pilot line", "Chips", "계획", "예",
        dt.datetime(2026, 11, 10), "2026-11-10, KST 24:00 마감", "2026-11-10 10:00 EST",
        "높음", "Aram Kim", "알파 주식회사", 0,
    ]  # fmt: skip
    assert sheet["G2"].is_date
    about = dict(workbook.worksheets[1].iter_rows(values_only=True))
    assert about["시간대"] == "America/New_York"
    assert about["필터"] == "q=pilot"


def test_english_headers_are_read_back_too(client, world):
    sign_in(client, world.users["coordinator"])
    rows = read_xlsx(client.get(XLSX_URL))
    assert exports.column_keys(rows[0]) == [c.key for c in exports.EXPORT_COLUMNS]
    assert len(rows) - 1 == Task.objects.count()


def test_a_formula_in_a_title_stays_text(client, world):
    task = world.tasks["A-06"]
    services.task_update(
        actor=world.users["coordinator"], task=task, title='=HYPERLINK("http://evil","x")'
    )
    sign_in(client, world.users["coordinator"])
    rows = read_csv(client.get(CSV_URL + "?q=HYPERLINK"))
    assert rows[1][2] == '\'=HYPERLINK("http://evil","x")'
    response = client.get(XLSX_URL + "?q=HYPERLINK")
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    assert sheet["C2"].data_type == "s" and sheet["C2"].value.startswith("=HYPERLINK")


def test_an_unknown_export_format_is_not_found(client, world):
    sign_in(client, world.users["coordinator"])
    assert client.get(reverse("workspace:tasks-export", args=["pdf"])).status_code == 404


def test_exports_need_a_signed_in_user(client, world):
    response = client.get(CSV_URL)
    assert response.status_code == 302 and "/signin/" in response["Location"]


# --- Fixed query counts ---------------------------------------------------------------------


def _count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        if response.streaming:
            b"".join(response.streaming_content)
        assert response.status_code == 200
    return len(queries)


def _add_tasks(world, refs, **kwargs) -> None:
    """Tasks of every shape a row shows: both firms (Beta's open to the plan), assignees
    Alpha may or may not see, workstreams or none, supporting organizations."""
    u = world.users
    for n, ref in enumerate(refs):
        alpha = n % 2 == 0
        TaskFactory(
            plan=world.plan, ref=ref, title=f"Task {ref}",
            lead_organization=world.alpha if alpha else world.beta,
            due_date=dt.date(2027, 1, 1) + dt.timedelta(days=n),
            assignee=[u["alpha"], u["alpha2"], None][n % 3] if alpha else u["beta"],
            workstream=[world.ws_chips, world.ws_energy, None][n % 3],
            supporting_organizations=[world.gamma], visibility=Task.Visibility.PLAN,
            priority=list(Task.Priority.values)[n % 4],
        )  # fmt: skip


URLS = [
    LIST,
    LIST + "?status=planned&overdue=false&sort=assignee",
    LIST + "?sort=-organization",
    CSV_URL,
    XLSX_URL + "?sort=-priority",
]


@pytest.mark.parametrize("who", ["coordinator", "alpha"])
def test_pages_and_exports_take_the_same_queries_for_5_and_50_rows(
    client, db, frozen, django_assert_num_queries, who
):
    world = World(with_tasks=False)
    sign_in(client, world.users[who])
    _add_tasks(world, [f"N-{n:02d}" for n in range(5)])
    visible = policy.for_user(world.users[who], policy.VIEW, Task)
    assert visible.count() == 5
    few = {url: _count(client, url) for url in URLS}
    _add_tasks(world, [f"M-{n:02d}" for n in range(45)])
    assert visible.count() == 50
    for url in URLS:
        with django_assert_num_queries(few[url]):
            response = client.get(url)
            if response.streaming:
                assert len(b"".join(response.streaming_content)) > 0
        assert response.status_code == 200, url


# --- htmx and navigation --------------------------------------------------------------------


def test_htmx_gets_only_the_list_region(client, world):
    sign_in(client, world.users["coordinator"])
    response = client.get(LIST + "?status=planned", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="task-list"') and "<html" not in body
    assert "HX-Request" in response["Vary"]
    bad = client.get(LIST + "?plan=abc", HTTP_HX_REQUEST="true")
    assert bad.status_code == 400 and "<html" not in bad.content.decode()
    assert "Plan: " in text(bad)
    # A history restore after a cache miss needs the whole page.
    full = client.get(
        LIST + "?status=planned", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert "<html" in full.content.decode()


def test_without_javascript_every_control_is_a_plain_link_or_get_form(client, world):
    sign_in(client, world.users["coordinator"])
    body = client.get(LIST).content.decode()
    for match in re.finditer(r"<a [^>]*hx-get=\"([^\"]+)\"[^>]*>", body):
        assert f'href="{match[1]}"' in match[0]
    assert re.search(r'<form class="filters" method="get" action="/tasks/"', body)


def test_the_header_links_to_the_task_list(client, world):
    sign_in(client, world.users["alpha"])
    home = client.get(reverse("workspace:home")).content.decode()
    assert f'<a href="{LIST}">Tasks</a>' in home
    page = client.get(LIST).content.decode()
    assert f'<a href="{LIST}" aria-current="page">Tasks</a>' in page
