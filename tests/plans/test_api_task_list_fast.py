"""The task list's fast path (issue 11): the reader's ids resolved once and applied as literal
lists, related ids in the page query, rows without model instances, the priority rank column
and the search indexes. The contract: the same JSON as a task's own page, the same rows as
the policy's scope, and a fixed number of queries whatever the rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from rest_framework.test import APIClient

from plans import permissions as policy
from plans import services
from plans.models import Task
from tests.factories import (
    OrganizationFactory,
    OutcomeFactory,
    PlanFactory,
    TaskFactory,
    UserFactory,
)
from tests.permission_matrix import ROLES, build_world
from tracker.models import ApiToken
from tracker.services import api_token_create, system_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """A ministry coordinating a plan; a lead firm with a contributor (samsung-like); another
    firm whose tasks the first does not see."""
    ministry = OrganizationFactory(kind="ministry", name="Ministry", acronym="MIN")
    firm = OrganizationFactory(name="Lead Co", acronym="LEAD")
    other = OrganizationFactory(name="Other Co", acronym="OTHR")
    plan = PlanFactory(coordinating=[ministry], members=[firm, other])
    coordinator, contributor = UserFactory(), UserFactory()
    for user, org, role in [
        (coordinator, ministry, "coordinator"),
        (contributor, firm, "contributor"),
    ]:
        services.membership_create(actor=system_user(), user=user, organization=org, role=role)
    return type("World", (), locals())


def bearer(user):
    _, raw = api_token_create(actor=user, user=user, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.get("/api/v1/users/me/")  # the first use stamps last_used_at
    return client


def _add(world, n):
    """`n` tasks the firm leads (and `n` it does not see), with outcomes and support."""
    for _ in range(n):
        outcome = OutcomeFactory()
        TaskFactory(
            plan=world.plan, lead_organization=world.firm, status="in_progress",
            supporting_organizations=[world.other], source_outcomes=[outcome],
        )  # fmt: skip
        TaskFactory(plan=world.plan, lead_organization=world.other, status="in_progress")


def _count(client, url):
    # A token's use is stamped at most once a resolution period: keep a slow run from
    # counting that stamp.
    ApiToken.objects.update(last_used_at=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries), len(response.json()["results"])


@pytest.mark.parametrize("who", ["coordinator", "contributor"])
def test_task_list_takes_two_queries_for_5_and_50_rows(world, who):
    """The token with its user and the reader's ids; the page with its related ids: 2, for 5
    or 50 rows."""
    client = bearer(getattr(world, who))
    url = "/api/v1/tasks/?status=in_progress&ordering=due_date&page_size=50"
    _add(world, 5)
    assert _count(client, url) == (2, 5 if who == "contributor" else 10)
    _add(world, 45)
    assert _count(client, url) == (2, 50)
    for extra in ("&q=a", "&ordering=-priority", "&organization=1", "&overdue=false"):
        assert _count(client, url + extra)[0] == 2, extra


def test_token_reads_the_readers_ids_as_of_the_request(world):
    """The ids come with the token: a membership added between two requests is seen by the
    next one (nothing is kept across requests)."""
    client = bearer(world.contributor)
    _add(world, 2)
    url = "/api/v1/tasks/?page_size=50"
    assert len(client.get(url).json()["results"]) == 2
    services.membership_create(
        actor=system_user(), user=world.contributor, organization=world.other, role="viewer"
    )
    assert len(client.get(url).json()["results"]) == 4


def test_task_list_with_a_session_takes_four_queries(world):
    client = APIClient()
    client.force_login(world.contributor)
    _add(world, 5)
    assert _count(client, "/api/v1/tasks/")[0] == 4  # session, user, ids, page
    _add(world, 45)
    assert _count(client, "/api/v1/tasks/?page_size=50")[0] == 4


def test_list_rows_are_the_tasks_own_pages(world):
    """Each row of the list is what GET /tasks/{id}/ (model instances, the policy's subquery
    scope) shows: dependencies and parents the reader may not open left out, people outside
    its scope null, titles in the reader's language with the other as fallback."""
    visible = TaskFactory(plan=world.plan, lead_organization=world.firm, status="in_progress")
    hidden = TaskFactory(plan=world.plan, lead_organization=world.other)
    outcome = OutcomeFactory()
    child = TaskFactory(
        plan=world.plan, lead_organization=world.firm, parent=hidden,
        supporting_organizations=[world.other, world.ministry], source_outcomes=[outcome],
        assignee=world.contributor, manager=world.coordinator,
        title_en=None, title_ko="한국어 제목만", description_ko="설명",
    )  # fmt: skip
    child.depends_on.set([visible, hidden])
    system_held = TaskFactory(plan=world.plan, lead_organization=world.firm, parent=visible)
    Task.objects.filter(pk=system_held.pk).update(manager=system_user())
    for who in ("contributor", "coordinator"):
        client = bearer(getattr(world, who))
        for language in ("en", "ko"):
            headers = {"HTTP_ACCEPT_LANGUAGE": language}
            rows = client.get("/api/v1/tasks/?page_size=200", **headers).json()["results"]
            assert rows, who
            for row in rows:
                alone = client.get(f"/api/v1/tasks/{row['id']}/", **headers).json()
                assert row == alone, (who, language, row["ref"])
    rows = {
        row["id"]: row for row in bearer(world.contributor).get("/api/v1/tasks/").json()["results"]
    }
    assert rows[child.pk]["depends_on"] == [visible.pk]
    assert rows[child.pk]["parent"] is None
    assert rows[child.pk]["supporting_organizations"] == sorted([world.other.pk, world.ministry.pk])
    assert rows[system_held.pk]["manager"] is None and rows[system_held.pk]["parent"] == visible.pk


def test_literal_scope_selects_what_the_policy_does():
    """For every role of the permission matrix: the literal-id scope holds the same tasks as
    `policy.for_user` (and the workspace's `task_list`, which shares it)."""
    from plans import selectors

    world = build_world()
    extra = TaskFactory(plan=world.plan_a, lead_organization=world.other, visibility="plan")
    TaskFactory(plan=world.plan_b, lead_organization=world.other)
    TaskFactory(plan=world.plan_a, lead_organization=world.lead, manager=world.users["coordinator"])
    assert extra.pk
    for role in ROLES:
        user = world.user(role)
        expected = set(policy.for_user(user, policy.VIEW, Task).values_list("pk", flat=True))
        scope = policy.task_view_scope(user)
        assert set(Task.objects.filter(scope.q).values_list("pk", flat=True)) == expected, role
        listed = selectors.task_list(user=user, filters={})
        assert set(listed.values_list("pk", flat=True)) == expected, role


def test_priority_rank_follows_priority_and_orders_the_list(world):
    client = bearer(world.coordinator)
    tasks = {
        priority: TaskFactory(plan=world.plan, lead_organization=world.firm, priority=priority)
        for priority in ("low", "critical", "normal", "high")
    }
    refs = [
        row["priority"] for row in client.get("/api/v1/tasks/?ordering=-priority").json()["results"]
    ]
    assert refs == ["critical", "high", "normal", "low"]
    services.task_update(actor=world.coordinator, task=tasks["low"], priority="critical")
    assert Task.objects.get(pk=tasks["low"].pk).priority_rank == 3
    rows = client.get("/api/v1/tasks/?ordering=priority").json()["results"]
    assert [row["priority"] for row in rows] == ["normal", "high", "critical", "critical"]


def test_search_matches_either_language_and_postgres_has_its_indexes(world):
    client = bearer(world.coordinator)
    korean = TaskFactory(plan=world.plan, lead_organization=world.firm, title_ko="수소 터빈 시범")
    english = TaskFactory(
        plan=world.plan, lead_organization=world.firm, description_en="Turbine PILOT"
    )
    with translation.override("en"):
        assert [r["id"] for r in client.get("/api/v1/tasks/?q=터빈").json()["results"]] == [
            korean.pk
        ]
        assert [
            r["id"] for r in client.get("/api/v1/tasks/?q=turbine pilot").json()["results"]
        ] == [english.pk]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'plans_task'")
        names = {row[0] for row in cursor.fetchall()}
    for column in ("ref", "title_en", "title_ko", "description_en", "description_ko"):
        assert f"task_{column}_trgm" in names
    with connection.cursor() as cursor:  # the planner can use them for icontains
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: make the choice visible
        cursor.execute("SET LOCAL enable_indexscan = off")
        query = Task.objects.filter(title_ko__icontains="터빈").order_by().values("pk").query
        sql, params = query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "task_title_ko_trgm" in plan, plan
