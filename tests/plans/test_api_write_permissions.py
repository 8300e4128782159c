"""The write API of forums, outcomes, plans, workstreams, plan participants and organizations
follows the permission matrix (tests/permission_matrix.py): every role, every action the API
offers on them (PATCH, DELETE, POST, and a plan's new version).

allow -> 2xx and the change is made; deny -> 403; hidden -> 404 (worded as for an id that
does not exist); no credentials -> 401. A refusal writes nothing and the very same request
then succeeds as the plan's coordinator: it was refused for who asked, not for what.
"""

import pytest

from plans.models import Forum, Outcome, Plan, PlanParticipant, Workstream
from tests.factories import ForumFactory, OutcomeFactory, WorkstreamFactory
from tests.permission_matrix import (
    ALLOW,
    DENY,
    EXPECTED,
    EXPECTED_ADD,
    ROLES,
    build_world,
    matrix_cases,
)
from tests.plans.test_api_permissions import (
    API,
    MISSING_ID,
    OFFERED,
    RESOURCES,
    Api,
    assert_problem,
    assert_same_as_for_a_missing_id,
    fingerprint,
)
from tracker.models import Organization


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def api(world):
    return Api(world)


CHANGES = {
    "forum": {"location": "COEX, Seoul"},
    "outcome": {"clause_ref": "para. 4"},
    "plan": {"requires_evidence": True},
    "workstream": {"order": 9},
    "planparticipant": {"role": "coordinating"},
    "organization": {"website": "https://lead.example.org/"},
}


def _stored(model, obj, body) -> bool:
    row = type(obj)._default_manager.filter(pk=obj.pk).values(*body).get()
    return row == body


def _deletable(world, model):
    """An object of the matrix's kind, seen by the same roles, that nothing points at."""
    if model == "forum":
        return ForumFactory()
    if model == "outcome":
        return OutcomeFactory(forum=world.forum)
    if model == "workstream":
        return WorkstreamFactory(plan=world.plan_a, code="WS-SPARE")
    if model == "planparticipant":
        return world.participant  # O leads and supports no task of plan A
    raise AssertionError(model)


def _cases(action):
    for case in matrix_cases(models=set(CHANGES), actions={action}):
        model, _action, role, outcome = case.values
        verb = "patch" if action == "change" else "delete"
        if (model, verb) in OFFERED:
            yield pytest.param(model, role, outcome, id=case.id)


def _refused(response, role, outcome, retry_missing):
    if role == "anonymous":
        assert_problem(response, 401)
    elif outcome == DENY:
        assert_problem(response, 403)
    else:
        assert_problem(response, 404)
        assert_same_as_for_a_missing_id(response, retry_missing())


@pytest.mark.parametrize(("model", "role", "outcome"), list(_cases("change")))
def test_patch_follows_the_matrix(world, api, model, role, outcome):
    obj, body = world.obj(model), CHANGES[model]
    url = f"{API}/{RESOURCES[model]}/{obj.pk}/"
    before = fingerprint(world)

    response = api(role).patch(url, body, format="json")

    if outcome == ALLOW:
        assert response.status_code == 200, response.content[:400]
        assert response.json()["id"] == obj.pk and response["ETag"]
        assert _stored(model, obj, body)
        return
    missing = f"{API}/{RESOURCES[model]}/{MISSING_ID}/"
    _refused(response, role, outcome, lambda: api(role).patch(missing, body, format="json"))
    assert fingerprint(world) == before, "a refused request wrote something"
    response = api("coordinator").patch(url, body, format="json")
    assert response.status_code == 200, response.content[:400]
    assert _stored(model, obj, body)


@pytest.mark.parametrize(("model", "role", "outcome"), list(_cases("delete")))
def test_delete_follows_the_matrix(world, api, model, role, outcome):
    obj = _deletable(world, model)
    url = f"{API}/{RESOURCES[model]}/{obj.pk}/"
    exists = type(obj)._default_manager.filter(pk=obj.pk).exists

    response = api(role).delete(url)

    if outcome == ALLOW:
        assert response.status_code == 204, response.content[:400]
        assert not exists()
        return
    missing = f"{API}/{RESOURCES[model]}/{MISSING_ID}/"
    _refused(response, role, outcome, lambda: api(role).delete(missing))
    assert exists()
    assert api("coordinator").delete(url).status_code == 204
    assert not exists()


def _new(world, model):
    """A body each create accepts from plan A's coordinator."""
    return {
        "forum": {"name_en": "Hydrogen Council", "kind": "dialogue", "held_on": "2026-02-02"},
        "outcome": {"forum": world.forum.pk, "kind": "commitment", "title_en": "Pilot plant"},
        "plan": {"code": "PLAN-C", "title_en": "Joint Plan C", "period_start": "2026-01-01",
                 "period_end": "2026-12-31", "coordinating": [world.m.pk, world.m2.pk]},
        "workstream": {"plan": world.plan_a.pk, "code": "WS-NEW", "title_en": "Batteries"},
        "planparticipant": {"plan": world.plan_a.pk, "organization": world.m2.pk},
        "organization": {"name_en": "Hydrogen Korea", "kind": "association", "country": "KR"},
    }[model]  # fmt: skip


CREATED = {
    "forum": lambda: Forum.objects.filter(name_en="Hydrogen Council"),
    "outcome": lambda: Outcome.objects.filter(title_en="Pilot plant"),
    "plan": lambda: Plan.objects.filter(code="PLAN-C"),
    "workstream": lambda: Workstream.objects.filter(code="WS-NEW"),
    "planparticipant": lambda: PlanParticipant.objects.filter(
        role="member", plan__code="PLAN-A"
    ).filter(organization__name="Ministry M2"),
    "organization": lambda: Organization.objects.filter(name_en="Hydrogen Korea"),
}


def _create_expected(model, role):
    """Forums, outcomes, plans and organizations: any coordinator (EXPECTED_ADD). Workstreams
    and participants go into plan A: whoever may change plan A."""
    if model in ("workstream", "planparticipant"):
        return EXPECTED[("plan", "change")][role]
    return ALLOW if EXPECTED_ADD[model][role] else DENY


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", sorted(CREATED))
def test_create_follows_the_matrix(world, api, model, role):
    outcome = _create_expected(model, role)
    before = fingerprint(world)
    url = f"{API}/{RESOURCES[model]}/"

    response = api(role).post(url, _new(world, model), format="json")

    if outcome == ALLOW:
        assert response.status_code == 201, response.content[:400]
        assert CREATED[model]().get().pk == response.json()["id"]
        return
    if role == "anonymous":
        assert_problem(response, 401)
    elif outcome == DENY or role != "coordinator_other_plan":
        assert_problem(response, 403)
    else:
        # Plan A is out of sight: the body names a plan that, for this user, does not exist.
        body = assert_problem(response, 400)
        assert [error["field"] for error in body["errors"]] == ["plan"]
    assert fingerprint(world) == before, "a refused request wrote something"
    response = api("coordinator").post(url, _new(world, model), format="json")
    assert response.status_code == 201, response.content[:400]
    assert CREATED[model]().exists()


@pytest.mark.parametrize("role", ROLES)
def test_new_version_follows_the_matrix(world, api, role):
    """A new version of plan A: whoever may change plan A."""
    outcome = EXPECTED[("plan", "change")][role]
    url = f"{API}/plans/{world.plan_a.pk}/new-version/"
    body = {"code": "PLAN-A2", "period_start": "2031-01-01", "period_end": "2032-12-31",
            "tasks": [world.task.pk]}  # fmt: skip
    before = fingerprint(world)

    response = api(role).post(url, body, format="json")

    if outcome == ALLOW:
        assert response.status_code == 201, response.content[:400]
        new = Plan.objects.get(code="PLAN-A2")
        assert new.predecessor == world.plan_a and new.tasks.get().predecessor == world.task
        return
    missing = f"{API}/plans/{MISSING_ID}/new-version/"
    _refused(response, role, outcome, lambda: api(role).post(missing, body, format="json"))
    assert fingerprint(world) == before, "a refused request wrote something"
    response = api("coordinator").post(url, body, format="json")
    assert response.status_code == 201, response.content[:400]


def test_the_cases_cover_every_outcome():
    outcomes = {case.values[2] for action in ("change", "delete") for case in _cases(action)}
    assert outcomes == {ALLOW, DENY, "hidden"}
    assert {case.values[0] for case in _cases("change")} == set(CHANGES)
