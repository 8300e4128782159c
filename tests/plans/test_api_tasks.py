"""The task API: tokens, problem details, ETag / If-Match, filters and query budgets."""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from plans import services
from plans.models import StatusUpdate, Task
from tests.factories import OrganizationFactory, PlanFactory, TaskFactory, UserFactory
from tracker.api.authentication import INVALID_TOKEN
from tracker.api.permissions import READ_ONLY_TOKEN
from tracker.models import ApiToken
from tracker.services import api_token_create, api_token_revoke, system_user

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"


@pytest.fixture
def world():
    """A ministry coordinating a plan; Samsung-like lead company with a contributor."""
    ministry = OrganizationFactory(kind="ministry", name="Ministry", acronym="MIN")
    company = OrganizationFactory(name="Lead Co", acronym="LEAD")
    other = OrganizationFactory(name="Other Co", acronym="OTHR")
    plan = PlanFactory(coordinating=[ministry], members=[company, other])
    coordinator, contributor, outsider = UserFactory(), UserFactory(), UserFactory()
    for user, org, role in [
        (coordinator, ministry, "coordinator"),
        (contributor, company, "contributor"),
        (outsider, other, "contributor"),
    ]:
        services.membership_create(actor=system_user(), user=user, organization=org, role=role)
    task = TaskFactory(plan=plan, lead_organization=company, status="in_progress")
    hidden = TaskFactory(plan=plan, lead_organization=other)
    return type("World", (), locals())


def bearer(user, scope=ApiToken.Scope.READ_WRITE):
    _, full = api_token_create(actor=user, user=user, name="test", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {full}")
    return client, full


def test_token_secret_is_never_stored(world):
    token, full = api_token_create(actor=world.contributor, user=world.contributor, name="erp")
    secret = full.rsplit("_", 1)[1]
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert not any(secret in str(value) for value in row.values())
    assert full.startswith(f"jpt_{token.prefix}_")
    assert len(row["key_hash"]) == 64


def test_login_issues_a_token_that_works(world):
    client = APIClient()
    response = client.post(
        "/api/v1/auth/token/",
        {"username": world.contributor.username, "password": "correct-horse-battery-staple"},
    )
    assert response.status_code == 201, response.content
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/users/me/").json()["username"] == world.contributor.username
    # the token is shown once: listing shows only its prefix
    listed = client.get("/api/v1/tokens/").json()["results"]
    assert "token" not in listed[0] and listed[0]["prefix"] in token


def test_login_with_wrong_password_is_401_problem(world):
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": world.contributor.username, "password": "nope"}
    )
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM
    assert response.json()["title"] == "Unauthorized"


@pytest.mark.parametrize("how", ["revoked", "expired", "garbage"])
def test_unusable_token_is_401(world, how):
    token, full = api_token_create(actor=world.contributor, user=world.contributor, name="x")
    if how == "revoked":
        api_token_revoke(actor=world.contributor, token=token)
    elif how == "expired":
        ApiToken.objects.filter(pk=token.pk).update(
            expires_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        )
    else:
        full = full[:-1] + ("A" if full[-1] != "A" else "B")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {full}")
    response = client.get("/api/v1/tasks/")
    assert response.status_code == 401
    assert response.json()["detail"] == INVALID_TOKEN


def test_read_only_token_cannot_write(world):
    client, _ = bearer(world.contributor, ApiToken.Scope.READ)
    assert client.get(f"/api/v1/tasks/{world.task.pk}/").status_code == 200
    response = client.post(
        f"/api/v1/tasks/{world.task.pk}/updates/", {"note": "Progress meeting held."}
    )
    assert response.status_code == 403
    assert response.json()["detail"] == READ_ONLY_TOKEN
    assert not world.task.updates.filter(kind=StatusUpdate.Kind.PROGRESS).exists()
    # the same call with a read-write token works: it was refused for its scope
    client, _ = bearer(world.contributor)
    response = client.post(
        f"/api/v1/tasks/{world.task.pk}/updates/", {"note": "Progress meeting held."}
    )
    assert response.status_code == 201


def test_hidden_task_is_404_and_forbidden_action_is_403(world):
    client, _ = bearer(world.contributor)
    assert client.get(f"/api/v1/tasks/{world.hidden.pk}/").status_code == 404
    done = client.post(
        f"/api/v1/tasks/{world.task.pk}/transition/",
        {"to": "done", "expected_from": "in_progress", "note": "Delivered."},
    )
    assert done.status_code == 200, done.content
    verify = client.post(
        f"/api/v1/tasks/{world.task.pk}/transition/", {"to": "verified", "expected_from": "done"}
    )
    assert verify.status_code == 403
    assert verify["Content-Type"] == PROBLEM
    assert Task.objects.get(pk=world.task.pk).status == "done"


def test_stale_transition_is_409_and_writes_nothing(world):
    client, _ = bearer(world.contributor)
    before = StatusUpdate.objects.count()
    response = client.post(
        f"/api/v1/tasks/{world.task.pk}/transition/",
        {"to": "blocked", "expected_from": "planned", "note": "Waiting."},
    )
    assert response.status_code == 409
    assert "moved meanwhile" in response.json()["detail"]
    assert StatusUpdate.objects.count() == before
    assert Task.objects.get(pk=world.task.pk).status == "in_progress"


def test_bad_input_names_the_field(world):
    client, _ = bearer(world.coordinator)
    response = client.post(
        "/api/v1/tasks/",
        {"plan": world.plan.pk, "ref": "X-1", "title": "T", "lead_organization": 999999,
         "due_date": "31/12/2026"},
    )  # fmt: skip
    assert response.status_code == 400
    fields = {error["field"] for error in response.json()["errors"]}
    assert {"lead_organization", "due_date"} <= fields
    response = client.get("/api/v1/tasks/?due_before=tomorrow&plan=abc")
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"due_before", "plan"}


def test_patch_refuses_workflow_fields_with_a_hint(world):
    client, _ = bearer(world.coordinator)
    response = client.patch(
        f"/api/v1/tasks/{world.task.pk}/", {"due_date": "2031-01-01", "status": "done"}
    )
    assert response.status_code == 400
    messages = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert "/deadline/" in messages["due_date"] and "/transition/" in messages["status"]


def test_etag_and_if_match(world):
    client, _ = bearer(world.coordinator)
    response = client.get(f"/api/v1/tasks/{world.task.pk}/")
    etag = response["ETag"]
    assert etag == f'"v{world.task.version}"'
    ok = client.patch(f"/api/v1/tasks/{world.task.pk}/", {"title": "First"}, HTTP_IF_MATCH=etag)
    assert ok.status_code == 200 and ok["ETag"] != etag
    stale = client.patch(f"/api/v1/tasks/{world.task.pk}/", {"title": "Second"}, HTTP_IF_MATCH=etag)
    assert stale.status_code == 412
    assert stale.json()["title"] == "Precondition failed"
    assert Task.objects.get(pk=world.task.pk).title == "First"


# Every write to a task, as (method, path suffix, body): each must honour If-Match.
TASK_WRITES = {
    "updates": ("post", "updates/", lambda w: {"progress": w.task.progress + 1}),
    "transition": (
        "post",
        "transition/",
        lambda w: {"to": "at_risk", "expected_from": "in_progress", "note": "Supplier late."},
    ),
    "assign": ("post", "assign/", lambda w: {"assignee": w.contributor.pk}),
    "deadline": (
        "post",
        "deadline/",
        lambda w: {
            "due_date": (w.task.due_date + dt.timedelta(days=30)).isoformat(),
            "reason": "The supplier moved delivery.",
        },
    ),  # fmt: skip
    "patch": ("patch", "", lambda w: {"title": "Renamed"}),
    "put": ("put", "", lambda w: {"title": "Replaced", "lead_organization": w.company.pk}),
}
SUCCESS = {"updates": 201}


def _write(client, world, name, if_match=None):
    method, suffix, body = TASK_WRITES[name]
    headers = {} if if_match is None else {"HTTP_IF_MATCH": if_match}
    return getattr(client, method)(
        f"/api/v1/tasks/{world.task.pk}/{suffix}", body(world), format="json", **headers
    )


def _snapshot(task):
    return Task.objects.filter(pk=task.pk).values().get(), StatusUpdate.objects.count()


@pytest.mark.parametrize("name", sorted(TASK_WRITES))
def test_every_write_refuses_a_stale_if_match_and_writes_nothing(world, name):
    client, _ = bearer(world.coordinator)
    stale = client.get(f"/api/v1/tasks/{world.task.pk}/")["ETag"]
    # Someone else changes the task after our read.
    services.task_update(actor=world.coordinator, task=world.task, title="Changed meanwhile")
    world.task.refresh_from_db()
    before = _snapshot(world.task)

    response = _write(client, world, name, if_match=stale)

    assert response.status_code == 412, response.content
    assert response["Content-Type"] == PROBLEM
    assert response.json()["title"] == "Precondition failed"
    assert _snapshot(world.task) == before

    # With the ETag as it is now, the same write goes through and answers the new ETag.
    fresh = client.get(f"/api/v1/tasks/{world.task.pk}/")["ETag"]
    assert fresh == f'"v{world.task.version}"'
    response = _write(client, world, name, if_match=fresh)
    assert response.status_code == SUCCESS.get(name, 200), response.content
    task = Task.objects.get(pk=world.task.pk)
    assert task.version == world.task.version + 1
    assert response["ETag"] == f'"v{task.version}"' != fresh


@pytest.mark.parametrize("name", sorted(TASK_WRITES))
@pytest.mark.parametrize("header", ["v1", '"v1", "v2"', "garbage", '"v-1"'])
def test_every_write_takes_a_malformed_if_match_as_stale(world, name, header):
    client, _ = bearer(world.coordinator)
    before = _snapshot(world.task)
    response = _write(client, world, name, if_match=header)
    assert response.status_code == 412, response.content
    assert _snapshot(world.task) == before


def test_updates_refuses_an_old_if_match_like_the_probe(world):
    """The finding: `If-Match: "v1"` on a task at a later version was accepted (201)."""
    client, _ = bearer(world.contributor)
    for progress in (10, 20, 30):
        services.status_update_add(actor=world.coordinator, task=world.task, progress=progress)
    world.task.refresh_from_db()
    assert world.task.version > 1
    updates = StatusUpdate.objects.filter(task=world.task).count()

    response = client.post(
        f"/api/v1/tasks/{world.task.pk}/updates/", {"progress": 31}, HTTP_IF_MATCH='"v1"'
    )

    assert response.status_code == 412, response.content
    task = Task.objects.get(pk=world.task.pk)
    assert (task.progress, task.version) == (30, world.task.version)
    assert StatusUpdate.objects.filter(task=world.task).count() == updates


def test_updates_answer_the_new_etag_so_writes_chain(world):
    client, _ = bearer(world.contributor)
    etag = client.get(f"/api/v1/tasks/{world.task.pk}/")["ETag"]
    path = f"/api/v1/tasks/{world.task.pk}/updates/"
    for progress in (41, 42, 43):
        response = client.post(path, {"progress": progress}, HTTP_IF_MATCH=etag)
        assert response.status_code == 201, response.content
        assert response["ETag"] != etag
        etag = response["ETag"]
    task = Task.objects.get(pk=world.task.pk)
    assert (task.progress, etag) == (43, f'"v{task.version}"')
    # A note alone leaves the task (and so its ETag) as it was; the weak form matches too.
    response = client.post(path, {"note": "Minutes filed."}, HTTP_IF_MATCH=f"W/{etag}")
    assert (response.status_code, response["ETag"]) == (201, etag)
    # A write without If-Match is not checked (backwards compatible), nor is `*`.
    assert client.post(path, {"progress": 44}).status_code == 201
    assert client.post(path, {"progress": 45}, HTTP_IF_MATCH="*").status_code == 201
    assert Task.objects.get(pk=world.task.pk).progress == 45


def test_schema_documents_if_match_on_every_task_write():
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    writes = {
        ("/api/v1/tasks/{id}/", "patch"),
        ("/api/v1/tasks/{id}/", "put"),
        *((f"/api/v1/tasks/{{id}}/{name}/", "post") for name in ("transition", "assign")),
        *((f"/api/v1/tasks/{{id}}/{name}/", "post") for name in ("deadline", "updates")),
    }
    for path, method in writes:
        parameters = {(p["in"], p["name"]) for p in paths[path][method]["parameters"]}
        assert ("header", "If-Match") in parameters, (path, method)
    assert "ETag" in paths["/api/v1/tasks/{id}/updates/"]["post"]["responses"]["201"]["headers"]


def test_create_task_as_coordinator(world):
    client, _ = bearer(world.coordinator)
    response = client.post(
        "/api/v1/tasks/",
        {"plan": world.plan.pk, "ref": "NEW-1", "title": "New task",
         "lead_organization": world.company.pk, "due_date": "2027-03-31",
         "supporting_organizations": [world.other.pk]},
    )  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["supporting_organizations"] == [world.other.pk]
    assert body["deadline_at"] == "2027-03-31T15:00:00Z"  # end of the day in Seoul
    # a contributor may not
    client, _ = bearer(world.contributor)
    response = client.post(
        "/api/v1/tasks/",
        {"plan": world.plan.pk, "ref": "NEW-2", "title": "No",
         "lead_organization": world.company.pk, "due_date": "2027-03-31"},
    )  # fmt: skip
    assert response.status_code == 403


def test_filters(world):
    client, _ = bearer(world.coordinator)
    with time_machine.travel(dt.datetime(2031, 1, 1, tzinfo=dt.UTC)):
        overdue = client.get("/api/v1/tasks/?overdue=true").json()["results"]
    assert {t["id"] for t in overdue} == {world.task.pk, world.hidden.pk}
    by_org = client.get(f"/api/v1/tasks/?organization={world.company.pk}").json()["results"]
    assert [t["id"] for t in by_org] == [world.task.pk]
    statuses = client.get("/api/v1/tasks/?status=planned&status=in_progress").json()["results"]
    assert len(statuses) == 2
    search = client.get(f"/api/v1/tasks/?q={world.task.ref}").json()["results"]
    assert [t["id"] for t in search] == [world.task.pk]


def test_updated_after_supports_incremental_sync(world):
    client, _ = bearer(world.coordinator)
    first = client.get("/api/v1/tasks/?ordering=updated_at").json()["results"]
    newest = max(t["updated_at"] for t in first)
    assert client.get("/api/v1/tasks/", {"updated_after": newest}).json()["results"] == []
    services.task_update(actor=world.coordinator, task=world.task, title="Changed")
    changed = client.get("/api/v1/tasks/", {"updated_after": newest}).json()["results"]
    assert [t["id"] for t in changed] == [world.task.pk]


LIST_ENDPOINTS = [
    "/api/v1/tasks/",
    "/api/v1/tasks/?status=in_progress&ordering=due_date",
    "/api/v1/status-updates/",
    "/api/v1/plans/",
    "/api/v1/workstreams/",
    "/api/v1/forums/",
    "/api/v1/outcomes/",
    "/api/v1/organizations/",
    "/api/v1/tokens/",
]


def _grow(world, n):
    from tests.factories import ForumFactory, OutcomeFactory, WorkstreamFactory

    for i in range(n):
        ws = WorkstreamFactory(plan=world.plan, lead_organizations=[world.company])
        forum = ForumFactory()
        outcome = OutcomeFactory(forum=forum)
        TaskFactory(
            plan=world.plan, lead_organization=world.company, workstream=ws, status="in_progress",
            supporting_organizations=[world.other], source_outcomes=[outcome],
        )  # fmt: skip
        api_token_create(actor=world.coordinator, user=world.coordinator, name=f"t{i}")
        PlanFactory(coordinating=[world.ministry], members=[OrganizationFactory()])


def _count(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries), len(response.json()["results"])


@pytest.mark.parametrize("url", LIST_ENDPOINTS)
def test_list_query_count_does_not_grow_with_rows(world, url):
    client = APIClient()
    client.force_login(world.coordinator)
    _grow(world, 5)
    small, rows_small = _count(client, url)
    _grow(world, 45)
    large, rows_large = _count(client, url)
    assert rows_large > rows_small
    assert small == large, f"{url}: {small} queries for {rows_small} rows, {large} for {rows_large}"
    if url.startswith("/api/v1/tasks/"):
        assert large <= 4  # session, user, the reader's ids, the page (with its related ids)


def test_task_list_with_a_token_takes_two_queries(world):
    client, _ = bearer(world.coordinator)
    client.get("/api/v1/tasks/")  # first use stamps last_used_at
    _grow(world, 20)
    count, rows = _count(client, "/api/v1/tasks/?status=in_progress&ordering=due_date")
    assert rows == 21 and count == 2  # token+user+the reader's ids, the page and its ids


def test_closed_task_refusals_are_409_problems(world):
    """TaskClosed carries the task's status; the answer must still be a 409 document."""
    client, _ = bearer(world.coordinator)
    services.task_transition(
        actor=world.coordinator, task=world.task, to_status="cancelled",
        expected_from="in_progress", note="Merged into another task.",
    )  # fmt: skip
    deadline = client.post(
        f"/api/v1/tasks/{world.task.pk}/deadline/", {"due_date": "2031-01-01", "reason": "x"}
    )
    progress = client.post(f"/api/v1/tasks/{world.task.pk}/updates/", {"progress": 35})
    for response in (deadline, progress):
        assert response.status_code == 409, response.content
        assert response["Content-Type"] == PROBLEM
        assert "'cancelled'" in response.json()["detail"]


@pytest.mark.parametrize(
    "value",
    ["3093-07-12T04:00:20.85-20:01", "9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+09:00"],
)
def test_instants_the_database_cannot_hold_are_400_naming_the_field(world, value):
    client, _ = bearer(world.coordinator)
    for url, field in [
        ("/api/v1/status-updates/", "created_after"),
        ("/api/v1/tasks/", "updated_after"),
    ]:
        response = client.get(url, {field: value})
        assert response.status_code in (200, 400), response.content
        if response.status_code == 400:
            assert [e["field"] for e in response.json()["errors"]] == [field]


def test_odd_but_valid_offsets_are_taken_as_instants(world):
    client, _ = bearer(world.coordinator)
    response = client.get("/api/v1/tasks/", {"updated_after": "2000-01-01T04:00:00-20:01"})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 2
