"""The REST API follows the permission matrix (tests/permission_matrix.py): every endpoint and
method, each role signed in with a bearer token of its own (read_write scope).

allow -> 2xx and the change is made, by that user; deny -> 403; hidden -> 404; no credentials
-> 401. Every refusal is application/problem+json and writes nothing, and is re-run as the
plan's coordinator, which must succeed: the refusal was about who asked, not about the
request. Methods the API does not offer (writes to read-only resources, DELETE on tasks) are
405 for everyone signed in, exactly as for an id that does not exist, so a 405 tells nothing
about what exists. A body naming an object out of sight (a hidden plan for a new task) is a
400 on that field, worded as for an id that does not exist.
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.db import transaction
from drf_spectacular.generators import EndpointEnumerator
from rest_framework.test import APIClient

from plans import services
from plans.models import StatusUpdate, Task
from tests.factories import FACTORY_EVIDENCE_URL, FACTORY_NOTE
from tests.permission_matrix import (
    ALLOW,
    DENY,
    EXPECTED,
    EXPECTED_ADD,
    HIDDEN,
    ROLE_MEMBERSHIPS,
    ROLES,
    TASK_REF,
    TASK_TITLE_PART,
    build_world,
    matrix_cases,
)
from tracker.api.errors import PROBLEM_CONTENT_TYPE, TITLES
from tracker.api.permissions import READ_ONLY_TOKEN
from tracker.models import ApiToken
from tracker.services import api_token_create, system_user

S = Task.Status
Kind = StatusUpdate.Kind
RW, READ = ApiToken.Scope.READ_WRITE, ApiToken.Scope.READ
API = "/api/v1"
MISSING_ID = 999_999_999  # an id no row has

NEW_TITLE = "Hydrogen turbine pilot line, phase two"
NEW_DUE = dt.date(2031, 3, 31)
NOTE = "Supplier audit found a delay in the turbine casing."
REASON = "The supplier moved the casing delivery by a quarter."

# Matrix model -> the API resource showing it (memberships only appear in /users/me/).
RESOURCES = {
    "task": "tasks",
    "plan": "plans",
    "workstream": "workstreams",
    "statusupdate": "status-updates",
    "forum": "forums",
    "outcome": "outcomes",
    "organization": "organizations",
    "planparticipant": "plan-participants",
}
# The records written through RecordWriteMixin (tests/plans/test_api_write_permissions.py):
# the (model, verb) pairs the API offers; PUT is offered on tasks only, DELETE not on plans,
# organizations or tasks.
OFFERED = {
    *((model, "patch") for model in ("forum", "outcome", "plan", "workstream", "organization")),
    *((model, "delete") for model in ("forum", "outcome", "workstream")),
    ("planparticipant", "patch"),
    ("planparticipant", "delete"),
}
READ_ONLY_MODELS = ["statusupdate"]
# The verbs a matrix action would take on a detail URL.
VERBS = {"change": ("patch", "put"), "delete": ("delete",)}


# --- Clients, responses, and what the database holds -------------------------------------------


class Api:
    """APIClients signed in as each role with its own bearer token; "anonymous" has none."""

    def __init__(self, world, scope=RW):
        self.tokens: dict[str, ApiToken] = {}
        self._full: dict[str, str] = {}
        for role in ROLES:
            if role == "anonymous":
                continue
            user = world.user(role)
            token, full = api_token_create(
                actor=user, user=user, name=f"matrix {role}", scope=scope
            )
            self.tokens[role], self._full[role] = token, full

    def __call__(self, role: str) -> APIClient:
        client = APIClient()
        if role != "anonymous":
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {self._full[role]}")
        return client


def assert_problem(response, status: int) -> dict:
    """An RFC 9457 problem document with this status."""
    assert response.status_code == status, (response.status_code, response.content[:400])
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert (body["status"], body["title"]) == (status, TITLES[status])
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")
    return body


def without_instance(response) -> tuple[int, dict]:
    body = dict(response.json())
    body.pop("instance", None)
    return response.status_code, body


def assert_same_as_for_a_missing_id(response, missing_response):
    """The refusal reads exactly as it would for an object that does not exist."""
    assert without_instance(response) == without_instance(missing_response)


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content[:400]
    body = response.json()
    rows = body["results"] if isinstance(body, dict) else body
    return {row["id"] for row in rows}


def fingerprint(world) -> dict[str, Any]:
    """What a refused request must leave alone: the matrix's rows, and how many rows every
    table holds (history, tokens and webhook tables included)."""
    return {
        "rows": {
            model: type(world.obj(model))
            ._default_manager.filter(pk=world.obj(model).pk)
            .values()
            .first()
            for model in (*RESOURCES, "membership")
        },
        "updates": list(StatusUpdate.objects.order_by("pk").values_list("pk", flat=True)),
        "counts": {
            model._meta.label: model._default_manager.count()
            for model in apps.get_models()
            if model._meta.managed and not model._meta.proxy
        },
    }


def detail_url(model: str, pk: int, suffix: str = "") -> str:
    return f"{API}/{RESOURCES[model]}/{pk}/{suffix}"


def list_url(model: str) -> str:
    return f"{API}/{RESOURCES[model]}/?page_size=200"


def move_task_to_done(world) -> None:
    services.task_transition(
        actor=system_user(),
        task=world.task.pk,
        to_status=S.DONE,
        expected_from=S.IN_PROGRESS,
        note=FACTORY_NOTE,
        evidence_url=FACTORY_EVIDENCE_URL,
    )


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def api(world):
    return Api(world)


@pytest.fixture(scope="class")
def shared(django_db_setup, django_db_blocker):
    """One world (and one token per role) for a class of tests that change nothing; rolled
    back after the class's last test. Each test still runs in its own savepoint (`db`)."""
    with django_db_blocker.unblock(), transaction.atomic():
        world = build_world()
        yield world, Api(world), Api(world, READ)
        transaction.set_rollback(True)


# --- Task writes: one request per matrix cell --------------------------------------------------


@dataclass(frozen=True)
class Write:
    method: str
    suffix: str  # after /api/v1/tasks/{id}/
    body: Any  # world -> request body
    success: int = 200

    def send(self, client, world, task_id=None):
        url = detail_url("task", task_id or world.task.pk, self.suffix)
        return getattr(client, self.method)(url, self.body(world), format="json")


WRITES: dict[str, dict[str, Write]] = {
    "change": {
        "patch": Write("patch", "", lambda w: {"title": NEW_TITLE}),
        "put": Write("put", "", lambda w: {"title": NEW_TITLE, "lead_organization": w.lead.pk}),
    },
    "transition": {
        "post": Write(
            "post",
            "transition/",
            lambda w: {"to": S.AT_RISK, "expected_from": S.IN_PROGRESS, "note": NOTE},
        )
    },
    "verify": {
        "post": Write("post", "transition/", lambda w: {"to": S.VERIFIED, "expected_from": S.DONE})
    },
    "assign": {
        "post": Write("post", "assign/", lambda w: {"assignee": w.user("contributor_lead").pk})
    },
    "change_deadline": {
        "post": Write("post", "deadline/", lambda w: {"due_date": str(NEW_DUE), "reason": REASON})
    },
    "add_update": {"post": Write("post", "updates/", lambda w: {"note": NOTE}, success=201)},
}


def _write_cases():
    for case in matrix_cases(models={"task"}, actions=set(WRITES)):
        model, action, role, outcome = case.values
        for verb in WRITES[action]:
            yield pytest.param(model, action, role, outcome, verb, id=f"{case.id}-{verb}")


def check_written(action, world, actor, before, response):
    """What an allowed request wrote: the change, by `actor`, and one history line for it."""
    task = Task.objects.get(pk=world.task.pk)
    old = before["rows"]["task"]
    new_updates = list(StatusUpdate.objects.exclude(pk__in=before["updates"]).order_by("pk"))
    body = response.json()
    if action == "add_update":
        (update,) = new_updates
        assert (update.kind, update.note, update.author, update.task_id) == (
            Kind.PROGRESS,
            NOTE,
            actor,
            task.pk,
        )
        assert (body["id"], body["author"], body["note"]) == (update.pk, actor.pk, NOTE)
        assert task.version == old["version"]
        return

    # Every other write answers with the task as it now is, its version in the ETag.
    assert task.version == old["version"] + 1
    assert (body["id"], body["version"]) == (task.pk, task.version)
    assert response["ETag"] == f'"v{task.version}"'
    assert task.updated_by == actor
    if action == "change":
        assert task.title == body["title"] == NEW_TITLE
        assert new_updates == []  # descriptive edits write no history line
        return
    (update,) = new_updates
    assert (update.task_id, update.author) == (task.pk, actor)
    if action == "transition":
        assert task.status == body["status"] == S.AT_RISK
        assert (update.kind, update.status_from, update.status_to, update.note) == (
            Kind.TRANSITION,
            S.IN_PROGRESS,
            S.AT_RISK,
            NOTE,
        )
    elif action == "verify":
        assert task.status == body["status"] == S.VERIFIED
        assert task.verified_at is not None
        assert (update.kind, update.status_from, update.status_to) == (
            Kind.TRANSITION,
            S.DONE,
            S.VERIFIED,
        )
    elif action == "assign":
        assignee = world.user("contributor_lead")
        assert task.assignee == assignee and body["assignee"] == assignee.pk
        assert (update.kind, update.assignee_to) == (Kind.ASSIGNMENT, assignee)
    elif action == "change_deadline":
        assert task.due_date == NEW_DUE and body["due_date"] == str(NEW_DUE)
        assert (update.kind, update.due_date_to, update.note) == (
            Kind.DEADLINE_CHANGE,
            NEW_DUE,
            REASON,
        )
    else:
        raise AssertionError(action)


@pytest.mark.parametrize(("model", "action", "role", "outcome", "verb"), list(_write_cases()))
def test_task_writes_follow_the_matrix(world, api, model, action, role, outcome, verb):
    write = WRITES[action][verb]
    if action == "verify":
        move_task_to_done(world)
    before = fingerprint(world)

    response = write.send(api(role), world)

    if outcome == ALLOW:
        assert response.status_code == write.success, response.content[:400]
        check_written(action, world, world.user(role), before, response)
        return

    if role == "anonymous":
        assert_problem(response, 401)
    elif outcome == DENY:
        assert_problem(response, 403)
    else:
        assert_problem(response, 404)
        assert_same_as_for_a_missing_id(response, write.send(api(role), world, MISSING_ID))
    assert fingerprint(world) == before, "a refused request wrote something"

    # The very same request succeeds for the plan's coordinator.
    coordinator = world.user("coordinator")
    response = write.send(api("coordinator"), world)
    assert response.status_code == write.success, response.content[:400]
    check_written(action, world, coordinator, before, response)


def test_the_write_cases_cover_allow_deny_and_hidden():
    outcomes = {case.values[3] for case in _write_cases()}
    assert outcomes == {ALLOW, DENY, HIDDEN}
    assert {case.values[1] for case in _write_cases()} == set(WRITES)


# --- Creating a task: coordinators of the plan ---------------------------------------------------


def _new_task(world, plan_id=None):
    return {
        "plan": plan_id or world.plan_a.pk,
        "ref": "SC-78",
        "title": "Electrolyser test bench at Ulsan",
        "lead_organization": world.lead.pk,
        "due_date": "2031-06-30",
    }


@pytest.mark.parametrize("role", ROLES)
def test_task_create_follows_the_matrix(world, api, role):
    # A task is added to plan A by whoever may change plan A (`task_create` asks exactly that).
    outcome = EXPECTED[("plan", "change")][role]
    before = fingerprint(world)

    response = api(role).post(f"{API}/tasks/", _new_task(world), format="json")

    if outcome == ALLOW:
        assert EXPECTED_ADD["task"][role]
        assert response.status_code == 201, response.content[:400]
        task = Task.objects.get(plan=world.plan_a, ref="SC-78")
        assert (response.json()["id"], task.created_by) == (task.pk, world.user(role))
        return

    if role == "anonymous":
        assert_problem(response, 401)
    elif outcome == DENY:
        assert_problem(response, 403)
    else:
        # Plan A is out of sight: the body names a plan that, for this user, does not exist.
        body = assert_problem(response, 400)
        missing = api(role).post(f"{API}/tasks/", _new_task(world, MISSING_ID), format="json")
        (error,) = body["errors"]
        (missing_error,) = assert_problem(missing, 400)["errors"]
        assert error["field"] == missing_error["field"] == "plan"
        assert error["message"] == missing_error["message"].replace(
            str(MISSING_ID), str(world.plan_a.pk)
        )
    assert fingerprint(world) == before, "a refused request wrote something"

    response = api("coordinator").post(f"{API}/tasks/", _new_task(world), format="json")
    assert response.status_code == 201, response.content[:400]
    assert Task.objects.get(plan=world.plan_a, ref="SC-78").created_by == world.user("coordinator")


# --- Reads, methods the API does not have, and lists -------------------------------------------


def _view_cases():
    return list(matrix_cases(models=set(RESOURCES), actions={"view"}))


def _missing_method_cases():
    # Writes to read-only resources, PUT outside tasks, and deleting a task, a plan or an
    # organization: the API has no such method.
    for case in matrix_cases(models=set(RESOURCES), actions=set(VERBS)):
        model, action, role, outcome = case.values
        if model == "task" and action != "delete":
            continue  # task writes are real endpoints, tested above
        for verb in VERBS[action]:
            if (model, verb) in OFFERED:
                continue  # real endpoints: test_api_write_permissions.py
            yield pytest.param(model, action, role, outcome, verb, id=f"{case.id}-{verb}")


@pytest.mark.usefixtures("db")
class TestReadsAndMissingMethods:
    @pytest.mark.parametrize(("model", "action", "role", "outcome"), _view_cases())
    def test_view_follows_the_matrix(self, shared, model, action, role, outcome):
        world, api, _ = shared
        obj = world.obj(model)
        client = api(role)
        detail = client.get(detail_url(model, obj.pk))
        listing = client.get(list_url(model))

        if role == "anonymous":
            assert_problem(detail, 401)
            assert_problem(listing, 401)
            return
        assert outcome in (ALLOW, HIDDEN)
        if outcome == ALLOW:
            assert detail.status_code == 200, detail.content[:400]
            assert detail.json()["id"] == obj.pk
            assert obj.pk in ids(listing)
        else:
            assert_problem(detail, 404)
            assert_same_as_for_a_missing_id(detail, client.get(detail_url(model, MISSING_ID)))
            assert obj.pk not in ids(listing)

        if model == "task":  # the task's history goes with the task
            history = client.get(detail_url("task", obj.pk, "updates/"))
            if outcome == ALLOW:
                assert ids(history) == set(obj.updates.values_list("pk", flat=True))
                assert world.status_update.pk in ids(history)
            else:
                assert_problem(history, 404)

    @pytest.mark.parametrize(
        ("model", "action", "role", "outcome", "verb"), list(_missing_method_cases())
    )
    def test_methods_the_api_does_not_offer_are_405(
        self, shared, model, action, role, outcome, verb
    ):
        world, api, _ = shared
        client = api(role)
        before = fingerprint(world)
        body = {"title": NEW_TITLE, "name": NEW_TITLE, "note": NOTE}
        response = getattr(client, verb)(detail_url(model, world.obj(model).pk), body)

        if role == "anonymous":
            assert_problem(response, 401)
        else:
            # Refused for the method, whoever asks and whatever the object: the matrix's
            # deny and hidden both hold, and a missing id reads the same.
            assert_problem(response, 405)
            assert verb.upper() not in response["Allow"]
            missing = getattr(client, verb)(detail_url(model, MISSING_ID), body)
            assert_same_as_for_a_missing_id(response, missing)
        assert fingerprint(world) == before, "a refused request wrote something"

    @pytest.mark.parametrize("role", ROLES)
    @pytest.mark.parametrize("model", READ_ONLY_MODELS)
    def test_read_only_resources_take_no_posts(self, shared, model, role):
        world, api, _ = shared
        before = fingerprint(world)
        response = api(role).post(f"{API}/{RESOURCES[model]}/", {"name": NEW_TITLE})
        assert_problem(response, 401 if role == "anonymous" else 405)
        assert fingerprint(world) == before


# --- Lists never reveal a hidden task, whatever the filters ------------------------------------


def _task_filters(world) -> dict[str, dict]:
    return {
        "title": {"q": TASK_TITLE_PART},
        "ref": {"q": TASK_REF},
        "organization=lead": {"organization": world.lead.pk},
        "organization=supporting": {"organization": world.supporting.pk},
        "lead_organization": {"lead_organization": world.lead.pk},
        "plan": {"plan": world.plan_a.pk},
        "workstream": {"workstream": world.workstream.pk},
        "status": {"status": S.IN_PROGRESS},
        "due": {"due_after": "2030-06-30", "due_before": "2030-06-30"},
        "ordering": {"ordering": "-priority"},
    }


@pytest.mark.usefixtures("db")
class TestListsOnlyShowWhatIsVisible:
    @pytest.mark.parametrize("role", [role for role in ROLES if role != "anonymous"])
    def test_task_filters_never_reveal_a_hidden_task(self, shared, role):
        world, api, _ = shared
        sees = EXPECTED[("task", "view")][role] == ALLOW
        client = api(role)
        for name, query in _task_filters(world).items():
            found = ids(client.get(f"{API}/tasks/", query))
            assert (world.task.pk in found) is sees, name
            if role == "coordinator":
                assert found == {world.task.pk}, name  # the filters do find it

        # Its history, through the status-update list and its filters.
        history = set(world.task.updates.values_list("pk", flat=True))
        for query in ({}, {"task": world.task.pk}, {"plan": world.plan_a.pk}):
            found = ids(client.get(f"{API}/status-updates/", {**query, "page_size": 200}))
            assert (found >= history) if sees else not (found & history), query

    @pytest.mark.parametrize("role", [role for role in ROLES if role != "anonymous"])
    def test_rollups_count_only_visible_tasks(self, shared, role):
        # Plan A and its workstream are seen by contributor_other, task T is not: the counts
        # on the plan and the workstream must not give T away.
        world, api, _ = shared
        tasks_seen = 1 if EXPECTED[("task", "view")][role] == ALLOW else 0
        client = api(role)
        for model in ("plan", "workstream"):
            response = client.get(detail_url(model, world.obj(model).pk))
            if EXPECTED[(model, "view")][role] == HIDDEN:
                assert_problem(response, 404)
                continue
            assert response.json()["task_count"] == tasks_seen, model
            rows = client.get(list_url(model)).json()["results"]
            counts = {row["id"]: row["task_count"] for row in rows}
            assert counts[world.obj(model).pk] == tasks_seen, model


# --- Memberships: only one's own, in /users/me/ -----------------------------------------------


@pytest.mark.usefixtures("db")
class TestMemberships:
    @pytest.mark.parametrize("role", ROLES)
    def test_users_me_lists_exactly_ones_own_memberships(self, shared, role):
        world, api, _ = shared
        response = api(role).get(f"{API}/users/me/")
        if role == "anonymous":
            assert_problem(response, 401)
            return
        assert response.status_code == 200
        body = response.json()
        assert body["id"] == world.user(role).pk
        expected = []
        if role in ROLE_MEMBERSHIPS:
            org_key, membership_role = ROLE_MEMBERSHIPS[role]
            expected = [{"organization": getattr(world, org_key).pk, "role": membership_role}]
        assert body["memberships"] == expected

    @pytest.mark.parametrize("role", [role for role in ROLES if role != "anonymous"])
    def test_memberships_cannot_be_written_through_the_api(self, shared, role):
        world, api, _ = shared
        before = fingerprint(world)
        client = api(role)
        response = client.patch(
            f"{API}/users/me/",
            {"memberships": [{"organization": world.m.pk, "role": "coordinator"}]},
            format="json",
        )
        assert response.status_code in (200, 400), response.content[:400]
        assert fingerprint(world) == before
        assert client.get(f"{API}/users/me/").json()["memberships"] == [
            {"organization": m.organization_id, "role": m.role}
            for m in world.user(role).memberships.order_by("pk")
        ]
        # No membership resource exists at all.
        assert_problem(client.get(f"{API}/memberships/"), 404)
        assert_problem(client.get(f"{API}/memberships/{world.membership.pk}/"), 404)


# --- Every endpoint: no credentials, and a read-only token -------------------------------------

LOGIN = "/api/v1/auth/token/"  # takes a password, not a token


def _endpoints():
    found = set()
    for path, _regex, method, _callback in EndpointEnumerator().get_api_endpoints():
        if path.startswith(f"{API}/") and path != LOGIN:
            found.add((method.lower(), path))
    return sorted(found)


ENDPOINTS = _endpoints()
WRITE_ENDPOINTS = [(m, p) for m, p in ENDPOINTS if m in ("post", "put", "patch", "delete")]
READ_ENDPOINTS = [(m, p) for m, p in ENDPOINTS if m == "get"]


def _fill(path: str, world, api) -> str:
    resource = path.split("/")[3]
    pks = {RESOURCES[model]: world.obj(model).pk for model in RESOURCES}
    pks["tokens"] = api.tokens["coordinator"].pk
    return path.replace("{pk}", str(pks.get(resource, MISSING_ID)))


def _bodies(world):
    """A request each write endpoint accepts from the plan's coordinator; {} elsewhere."""
    task = f"{API}/tasks/{{pk}}/"
    return {
        ("post", f"{API}/tasks/"): _new_task(world),
        ("patch", task): WRITES["change"]["patch"].body(world),
        ("put", task): WRITES["change"]["put"].body(world),
        ("post", task + "transition/"): WRITES["transition"]["post"].body(world),
        ("post", task + "assign/"): WRITES["assign"]["post"].body(world),
        ("post", task + "deadline/"): WRITES["change_deadline"]["post"].body(world),
        ("post", task + "updates/"): WRITES["add_update"]["post"].body(world),
        ("post", f"{API}/tokens/"): {"name": "ERP sync", "scope": RW},
        ("delete", f"{API}/tokens/{{pk}}/"): None,
        ("patch", f"{API}/users/me/"): {"first_name": "Min-jun"},
    }


def test_every_plan_api_write_is_enumerated():
    """The generated cases below really cover the plan API (the enumeration found them)."""
    task = f"{API}/tasks/{{pk}}/"
    assert {
        ("post", f"{API}/tasks/"),
        ("patch", task),
        ("put", task),
        ("post", task + "transition/"),
        ("post", task + "assign/"),
        ("post", task + "deadline/"),
        ("post", task + "updates/"),
        ("post", f"{API}/tokens/"),
        ("patch", f"{API}/users/me/"),
    } <= set(WRITE_ENDPOINTS)
    assert {("get", f"{API}/{resource}/{{pk}}/") for resource in RESOURCES.values()} <= set(
        READ_ENDPOINTS
    )


@pytest.mark.usefixtures("db")
class TestEveryEndpoint:
    @pytest.mark.parametrize(("method", "path"), ENDPOINTS)
    def test_no_credentials_is_401_everywhere(self, shared, method, path):
        world, api, _ = shared
        before = fingerprint(world)
        response = getattr(api("anonymous"), method)(_fill(path, world, api), {}, format="json")
        assert_problem(response, 401)
        assert fingerprint(world) == before

    @pytest.mark.parametrize(("method", "path"), WRITE_ENDPOINTS)
    def test_read_scope_token_never_writes_even_as_coordinator(self, shared, method, path):
        world, api, read_api = shared
        url = _fill(path, world, api)
        body = _bodies(world).get((method, path), {})
        before = fingerprint(world)

        response = getattr(read_api("coordinator"), method)(url, body, format="json")

        assert assert_problem(response, 403)["detail"] == READ_ONLY_TOKEN
        assert fingerprint(world) == before, "a read-only token wrote something"
        # The same request with the coordinator's read_write token is not refused for scope;
        # where we know a valid body, it succeeds.
        response = getattr(api("coordinator"), method)(url, body, format="json")
        if (method, path) in _bodies(world):
            assert 200 <= response.status_code < 300, response.content[:400]
        else:
            assert response.status_code < 500
            assert response.status_code != 403 or response.json()["detail"] != READ_ONLY_TOKEN

    @pytest.mark.parametrize(("method", "path"), READ_ENDPOINTS)
    def test_read_scope_token_reads(self, shared, method, path):
        world, api, read_api = shared
        url = _fill(path, world, api)
        response = read_api("coordinator").get(url)
        if str(MISSING_ID) in url:
            assert_problem(response, 404)  # e.g. a webhook: none exists in this world
        else:
            assert response.status_code == 200, response.content[:400]
