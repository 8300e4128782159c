"""The write API around tasks (issue 12): forums, outcomes, plans, workstreams, participants
and organizations, the scorecard and an outcome's tasks, ETag / If-Match on every record, and
the next version of a plan. The first test is the loop an integration runs, through the API
alone."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from plans import services
from plans.models import Forum, Outcome, Plan, PlanParticipant, StatusUpdate, Task, Workstream
from tests.factories import (
    ForumFactory,
    OrganizationFactory,
    OutcomeFactory,
    PlanFactory,
    TaskFactory,
    UserFactory,
    WorkstreamFactory,
)
from tracker.api.errors import PROBLEM_CONTENT_TYPE
from tracker.models import ApiToken, Organization
from tracker.services import api_token_create, system_user

pytestmark = pytest.mark.django_db
API = "/api/v1"
S = Task.Status


def bearer(user) -> APIClient:
    _, full = api_token_create(
        actor=user, user=user, name="integration", scope=ApiToken.Scope.READ_WRITE
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {full}")
    return client


@pytest.fixture
def ministry():
    return OrganizationFactory(kind="ministry", name="Ministry of Trade", acronym="MOT")


@pytest.fixture
def coordinator(ministry):
    user = UserFactory(username="coordinator")
    services.membership_create(
        actor=system_user(), user=user, organization=ministry, role="coordinator"
    )
    return user


@pytest.fixture
def api(coordinator):
    return bearer(coordinator)


def ok(response, status=200) -> dict:
    assert response.status_code == status, response.content[:600]
    return response.json() if response.content else {}


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content[:600]
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    return response.json()


def test_an_integration_runs_the_whole_loop_through_the_api(api, ministry):
    # The registry: a company the readout names.
    samsung = ok(
        api.post(
            f"{API}/organizations/",
            {"name_en": "Samsung Electronics", "name_ko": "삼성전자", "kind": "company",
             "country": "KR", "acronym_en": "SEC"},
            format="json",
        ),
        201,
    )  # fmt: skip
    assert (samsung["name_en"], samsung["name_ko"]) == ("Samsung Electronics", "삼성전자")

    forum = ok(
        api.post(
            f"{API}/forums/",
            {"name_en": "2nd SCCD Ministerial", "name_ko": "제2차 SCCD 장관회의",
             "kind": "ministerial", "held_on": "2025-07-01", "hosts": [ministry.pk],
             "participants": [ministry.pk, samsung["id"]]},
            format="json",
        ),
        201,
    )  # fmt: skip
    assert forum["hosts"] == [ministry.pk]
    outcomes = [
        ok(
            api.post(
                f"{API}/outcomes/",
                {"forum": forum["id"], "kind": kind, "title_en": title, "parties": parties},
                format="json",
            ),
            201,
        )
        for kind, title, parties in [
            ("commitment", "Launch the critical minerals sub-working group", [ministry.pk]),
            ("mou", "Memorandum of terms with Samsung Electronics", [samsung["id"]]),
            ("decision", "Cooperate on export control", []),
        ]
    ]
    # Confirm one outcome with a Korean title and a pledge.
    confirmed = ok(
        api.patch(
            f"{API}/outcomes/{outcomes[1]['id']}/",
            {"title_ko": "삼성전자와의 예비 합의각서", "amount": "4.50", "currency": "USD"},
            format="json",
        )
    )
    assert (confirmed["title_ko"], confirmed["amount"], confirmed["currency"]) == (
        "삼성전자와의 예비 합의각서", "4.50", "USD",
    )  # fmt: skip

    plan = ok(
        api.post(
            f"{API}/plans/",
            {"code": "SCCD-JP1", "title_en": "SCCD Joint Plan 1.0", "period_start": "2025-07-01",
             "period_end": "2026-12-31", "coordinating": [ministry.pk]},
            format="json",
        ),
        201,
    )  # fmt: skip
    assert plan["participants"] == [{"organization": ministry.pk, "role": "coordinating"}]
    member = ok(
        api.post(
            f"{API}/plan-participants/",
            {"plan": plan["id"], "organization": samsung["id"], "role": "member"},
            format="json",
        ),
        201,
    )
    assert (member["plan"], member["organization"], member["role"]) == (
        plan["id"], samsung["id"], "member",
    )  # fmt: skip
    workstream = ok(
        api.post(
            f"{API}/workstreams/",
            {"plan": plan["id"], "code": "WG-1", "title_en": "Supply chains",
             "title_ko": "공급망", "lead_organizations": [ministry.pk]},
            format="json",
        ),
        201,
    )  # fmt: skip

    tasks = [
        ok(
            api.post(
                f"{API}/tasks/",
                {"plan": plan["id"], "workstream": workstream["id"], "ref": f"SC-0{n}",
                 "title_en": outcome["title_en"], "lead_organization": lead,
                 "due_date": "2026-06-30", "source_outcomes": [outcome["id"]]},
                format="json",
            ),
            201,
        )
        for n, outcome, lead in [
            (1, outcomes[0], ministry.pk), (2, outcomes[1], samsung["id"]),
        ]
    ]  # fmt: skip
    # The first task is finished.
    ok(
        api.post(
            f"{API}/tasks/{tasks[0]['id']}/transition/",
            {"to": "in_progress", "expected_from": "planned"},
            format="json",
        )
    )
    ok(
        api.post(
            f"{API}/tasks/{tasks[0]['id']}/transition/",
            {"to": "done", "expected_from": "in_progress", "note": "Group launched."},
            format="json",
        )
    )

    scorecard = ok(api.get(f"{API}/forums/{forum['id']}/scorecard/"))
    assert scorecard == {
        "forum": forum["id"], "fulfilled": 1, "in_implementation": 0, "not_started": 1,
        "no_task": 1, "total": 3,
    }  # fmt: skip
    implementing = ok(api.get(f"{API}/outcomes/{outcomes[1]['id']}/tasks/"))
    assert [row["id"] for row in implementing] == [tasks[1]["id"]]
    assert implementing[0]["source_outcomes"] == [outcomes[1]["id"]]
    # Read back: the outcome counts its task.
    assert ok(api.get(f"{API}/outcomes/{outcomes[1]['id']}/"))["task_count"] == 1


def test_texts_in_the_request_language_and_errors_naming_the_field(api, ministry):
    response = api.post(
        f"{API}/forums/",
        {"name": "제3차 회의", "kind": "ministerial", "held_on": "2025-07-01"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="ko",
    )
    forum = ok(response, 201)
    assert (forum["name_ko"], forum["name_en"]) == ("제3차 회의", None)

    body = problem(
        api.post(f"{API}/forums/", {"kind": "party", "held_on": "2025-13-01"}, format="json"), 400
    )
    assert {e["field"] for e in body["errors"]} == {"kind", "held_on"}
    body = problem(
        api.post(f"{API}/forums/", {"kind": "summit", "held_on": "2025-07-01"}, format="json"), 400
    )
    assert body["errors"] == [
        {"field": "name", "message": "Give a name in English (name_en) or Korean (name_ko)."}
    ]
    body = problem(
        api.post(
            f"{API}/outcomes/",
            {"forum": forum["id"], "kind": "mou", "title_en": "Pledge", "amount": "5"},
            format="json",
        ),
        400,
    )
    assert body["errors"][0]["message"].startswith("An amount needs")
    body = problem(
        api.post(
            f"{API}/plans/",
            {"code": "P-1", "title_en": "Plan", "period_start": "2026-01-01",
             "period_end": "2025-01-01", "coordinating": [ministry.pk]},
            format="json",
        ),
        400,
    )  # fmt: skip
    assert body["errors"]  # the period cannot end before it starts
    body = problem(api.patch(f"{API}/forums/{forum['id']}/", {"color": "red"}, format="json"), 400)
    assert body["errors"] == [{"field": "color", "message": "Unknown field."}]


@pytest.mark.parametrize("resource", ["forums", "outcomes", "plans", "workstreams",
                                      "plan-participants", "organizations"])  # fmt: skip
def test_if_match_refuses_a_stale_write_with_412(api, ministry, resource):
    plan = PlanFactory(coordinating=[ministry])
    forum = ForumFactory()
    objs = {
        "forums": (forum, {"location": "Gyeongju, 2026 venue"}),
        "outcomes": (OutcomeFactory(forum=forum), {"clause_ref": "§3"}),
        "plans": (plan, {"requires_evidence": True}),
        "workstreams": (WorkstreamFactory(plan=plan), {"order": 7}),
        "plan-participants": (
            PlanParticipant.objects.create(plan=plan, organization=OrganizationFactory()),
            {"role": "coordinating"},
        ),
        "organizations": (OrganizationFactory(), {"country": "US"}),
    }
    obj, change = objs[resource]
    url = f"{API}/{resource}/{obj.pk}/"
    read = api.get(url)
    etag = read["ETag"]
    assert etag.startswith('"') and len(etag) == 18

    changed = api.patch(url, change, format="json", HTTP_IF_MATCH=etag)
    ok(changed)
    assert changed["ETag"] != etag
    # The same If-Match again: the record has moved on, nothing is written.
    before = type(obj).objects.filter(pk=obj.pk).values().get()
    again = {k: v for k, v in change.items()}
    stale = api.patch(url, again, format="json", HTTP_IF_MATCH=etag)
    assert "has changed since you read it" in problem(stale, 412)["detail"]
    for bad in ('"v1"', "garbage"):
        problem(api.patch(url, change, format="json", HTTP_IF_MATCH=bad), 412)
    assert type(obj).objects.filter(pk=obj.pk).values().get() == before
    # The fresh ETag works; so does no If-Match, or *.
    ok(api.patch(url, change, format="json", HTTP_IF_MATCH=changed["ETag"]))
    ok(api.patch(url, change, format="json", HTTP_IF_MATCH="*"))
    ok(api.patch(url, change, format="json"))


def test_a_change_elsewhere_changes_the_etag(api, ministry):
    forum = ForumFactory()
    url = f"{API}/forums/{forum.pk}/"
    etag = api.get(url)["ETag"]
    services.forum_update(actor=system_user(), forum=forum, hosts=[ministry])  # e.g. the admin
    problem(api.patch(url, {"location": "Busan"}, format="json", HTTP_IF_MATCH=etag), 412)


def test_deletes_are_refused_with_409_while_referenced(api, ministry):
    plan = PlanFactory(coordinating=[ministry])
    forum = ForumFactory()
    outcome = OutcomeFactory(forum=forum)
    workstream = WorkstreamFactory(plan=plan)
    lead = OrganizationFactory()
    participant = PlanParticipant.objects.create(plan=plan, organization=lead)
    task = TaskFactory(plan=plan, workstream=workstream, lead_organization=lead)
    task.source_outcomes.set([outcome])

    for url in (
        f"{API}/forums/{forum.pk}/",
        f"{API}/outcomes/{outcome.pk}/",
        f"{API}/workstreams/{workstream.pk}/",
        f"{API}/plan-participants/{participant.pk}/",
    ):
        assert "cannot be deleted" in problem(api.delete(url), 409)["detail"], url
    assert Forum.objects.filter(pk=forum.pk).exists()

    # Unreferenced: deleted.
    spare = OutcomeFactory(forum=ForumFactory())
    ok(api.delete(f"{API}/outcomes/{spare.pk}/"), 204)
    assert not Outcome.objects.filter(pk=spare.pk).exists()
    ok(api.delete(f"{API}/forums/{spare.forum_id}/"), 204)
    empty = WorkstreamFactory(plan=plan)
    ok(api.delete(f"{API}/workstreams/{empty.pk}/"), 204)
    assert not Workstream.objects.filter(pk=empty.pk).exists()
    # Plans and organizations have no DELETE.
    problem(api.delete(f"{API}/plans/{plan.pk}/"), 405)
    problem(api.delete(f"{API}/organizations/{lead.pk}/"), 405)


def test_a_coordinator_cannot_lock_themselves_out_of_a_plan(api, ministry):
    plan = PlanFactory(coordinating=[ministry])
    mine = PlanParticipant.objects.get(plan=plan, organization=ministry)
    body = problem(api.patch(f"{API}/plan-participants/{mine.pk}/", {"role": "member"}), 400)
    assert body["errors"][0]["field"] == "role"
    body = problem(api.delete(f"{API}/plan-participants/{mine.pk}/"), 400)
    assert body["errors"][0]["field"] == "organization"
    assert PlanParticipant.objects.get(pk=mine.pk).role == "coordinating"


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_scorecard_and_outcome_tasks_take_fixed_queries(api, ministry):
    plan = PlanFactory(coordinating=[ministry])
    forum = ForumFactory()
    outcome = OutcomeFactory(forum=forum)

    def grow(n):
        for _ in range(n):
            extra = OutcomeFactory(forum=forum)
            task = TaskFactory(plan=plan, lead_organization=ministry)
            task.source_outcomes.set([outcome, extra])
            task.supporting_organizations.set([OrganizationFactory()])

    grow(5)
    _queries(api, f"{API}/forums/{forum.pk}/scorecard/")  # the token's first use is stamped
    small = (
        _queries(api, f"{API}/forums/{forum.pk}/scorecard/"),
        _queries(api, f"{API}/outcomes/{outcome.pk}/tasks/"),
    )
    grow(45)
    large = (
        _queries(api, f"{API}/forums/{forum.pk}/scorecard/"),
        _queries(api, f"{API}/outcomes/{outcome.pk}/tasks/"),
    )
    assert small == large
    assert len(api.get(f"{API}/outcomes/{outcome.pk}/tasks/").json()) == 50


def test_record_writes_take_fixed_queries(api, ministry):
    """A forum's PATCH costs the same with 2 or 40 hosts."""
    forum = ForumFactory()
    counts = []
    for n in (2, 40):
        hosts = [OrganizationFactory().pk for _ in range(n)]
        with CaptureQueriesContext(connection) as ctx:
            ok(api.patch(f"{API}/forums/{forum.pk}/", {"hosts": hosts}, format="json"))
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


# --- Plan versions -----------------------------------------------------------------------------


@pytest.fixture
def old_plan(ministry):
    lead = OrganizationFactory(name="Lead Co", acronym="LCO")
    plan = PlanFactory(
        code="KUS-JP1", title="Joint Plan 1.0", coordinating=[ministry], members=[lead],
        requires_evidence=True, time_zone="America/New_York",
    )  # fmt: skip
    parent = WorkstreamFactory(plan=plan, code="WG", title="Working group")
    child = WorkstreamFactory(plan=plan, code="WG-CM", title="Critical minerals")
    child.parent = parent
    child.save()
    outcome = OutcomeFactory()
    tasks = {
        status: TaskFactory(
            plan=plan,
            workstream=child,
            ref=f"T-{status}",
            lead_organization=lead,
            status=status,
            due_date=dt.date(2026, 3, 31),
        )  # fmt: skip
        for status in (S.PLANNED, S.IN_PROGRESS, S.BLOCKED, S.DONE)
    }
    for task in tasks.values():
        task.source_outcomes.set([outcome])
    return type("Old", (), {"plan": plan, "tasks": tasks, "lead": lead, "outcome": outcome})


def test_new_version_carries_the_picked_tasks_and_closes_them(api, old_plan, coordinator):
    plan, tasks = old_plan.plan, old_plan.tasks
    picked = [tasks[S.PLANNED], tasks[S.IN_PROGRESS]]
    left = tasks[S.BLOCKED]
    history_before = {t.pk: list(t.updates.values_list("pk", flat=True)) for t in picked}

    response = api.post(
        f"{API}/plans/{plan.pk}/new-version/",
        {"code": "KUS-JP2", "title_en": "Joint Plan 2.0", "title_ko": "공동 계획 2.0",
         "period_start": "2026-01-01", "period_end": "2027-12-31",
         "tasks": [t.pk for t in picked]},
        format="json",
    )  # fmt: skip
    body = ok(response, 201)
    new = Plan.objects.get(pk=body["id"])
    assert (new.code, new.title_en, new.title_ko, new.predecessor) == (
        "KUS-JP2", "Joint Plan 2.0", "공동 계획 2.0", plan,
    )  # fmt: skip
    assert (new.time_zone, new.requires_evidence) == (plan.time_zone, True)
    assert sorted(new.participations.values_list("organization_id", "role")) == sorted(
        plan.participations.values_list("organization_id", "role")
    )
    copies = {w.code: w for w in new.workstreams.all()}
    assert set(copies) == {"WG", "WG-CM"} and copies["WG-CM"].parent == copies["WG"]

    for old in picked:
        old.refresh_from_db()
        new_task = Task.objects.get(predecessor=old)
        assert (new_task.plan, new_task.ref, new_task.title, new_task.status) == (
            new, old.ref, old.title, S.PLANNED,
        )  # fmt: skip
        assert new_task.workstream == copies["WG-CM"]
        assert list(new_task.source_outcomes.all()) == [old_plan.outcome]
        assert new_task.deadline_at == Task.deadline_for(old.due_date, "America/New_York")
        (created,) = new_task.updates.all()
        assert created.kind == StatusUpdate.Kind.CREATED and created.author == coordinator
        assert created.note.startswith(f"Carried over from KUS-JP1 {old.ref}")
        # The old task: closed as cancelled, its history kept, a last line naming its successor.
        assert old.status == S.CANCELLED
        updates = list(old.updates.order_by("created_at", "pk"))
        assert [u.pk for u in updates[:-1]] == history_before[old.pk]
        last = updates[-1]
        assert (last.kind, last.status_to, last.note) == (
            StatusUpdate.Kind.TRANSITION, S.CANCELLED, f"Carried over to KUS-JP2 as {old.ref}.",
        )  # fmt: skip
        assert old.successors.get() == new_task
    left.refresh_from_db()
    assert left.status == S.BLOCKED and not left.successors.exists()
    assert new.tasks.count() == 2


def test_new_version_refuses_closed_tasks_and_writes_nothing(api, old_plan):
    plan, tasks = old_plan.plan, old_plan.tasks
    before = (Plan.objects.count(), Task.objects.count(), StatusUpdate.objects.count())
    body = problem(
        api.post(
            f"{API}/plans/{plan.pk}/new-version/",
            {"code": "KUS-JP2", "period_start": "2026-01-01", "period_end": "2027-12-31",
             "tasks": [tasks[S.PLANNED].pk, tasks[S.DONE].pk]},
            format="json",
        ),
        400,
    )  # fmt: skip
    assert body["errors"][0]["field"] == "tasks" and "T-done" in body["errors"][0]["message"]
    assert (Plan.objects.count(), Task.objects.count(), StatusUpdate.objects.count()) == before
    # A code already taken: 400 on code, nothing written.
    body = problem(
        api.post(
            f"{API}/plans/{plan.pk}/new-version/",
            {"code": "KUS-JP1", "period_start": "2026-01-01", "period_end": "2027-12-31",
             "tasks": [tasks[S.PLANNED].pk]},
            format="json",
        ),
        400,
    )  # fmt: skip
    assert body["errors"][0]["field"] == "code"
    assert (Plan.objects.count(), Task.objects.count(), StatusUpdate.objects.count()) == before
    assert Task.objects.get(pk=tasks[S.PLANNED].pk).status == S.PLANNED


def test_new_version_is_for_the_plans_coordinators(old_plan):
    plan = old_plan.plan
    other = OrganizationFactory(kind="ministry")
    outsider = UserFactory()
    services.membership_create(
        actor=system_user(), user=outsider, organization=other, role="coordinator"
    )
    member = UserFactory()
    services.membership_create(
        actor=system_user(), user=member, organization=old_plan.lead, role="manager"
    )
    body = {"code": "KUS-JP2", "period_start": "2026-01-01", "period_end": "2027-12-31"}
    problem(bearer(outsider).post(f"{API}/plans/{plan.pk}/new-version/", body), 404)
    problem(bearer(member).post(f"{API}/plans/{plan.pk}/new-version/", body), 403)
    assert not Plan.objects.filter(code="KUS-JP2").exists()
    assert Organization.objects.filter(pk=other.pk).exists()
