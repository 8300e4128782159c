"""Rolled-up progress in the API: the average of the tasks counted, rounded to one decimal."""

import pytest
from rest_framework.test import APIClient

from plans import services
from tests.factories import (
    OrganizationFactory,
    OutcomeFactory,
    PlanFactory,
    TaskFactory,
    UserFactory,
    WorkstreamFactory,
)
from tracker.services import system_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """Four tasks at 100, 69, 0 and 0 per cent: the plan averages 42.25, the workstream (100,
    0, 0) 33.33..., the outcome (100, 69, 0) 56.33..."""
    ministry = OrganizationFactory(kind="ministry")
    plan = PlanFactory(coordinating=[ministry])
    coordinator = UserFactory()
    services.membership_create(
        actor=system_user(), user=coordinator, organization=ministry, role="coordinator"
    )
    workstream = WorkstreamFactory(plan=plan)
    outcome = OutcomeFactory()
    done = TaskFactory(
        plan=plan, lead_organization=ministry, status="done", workstream=workstream,
        source_outcomes=[outcome],
    )  # fmt: skip
    started = TaskFactory(
        plan=plan, lead_organization=ministry, status="in_progress", source_outcomes=[outcome]
    )
    services.status_update_add(actor=coordinator, task=started, progress=69, note="")
    TaskFactory(
        plan=plan, lead_organization=ministry, workstream=workstream, source_outcomes=[outcome]
    )
    TaskFactory(plan=plan, lead_organization=ministry, workstream=workstream)
    client = APIClient()
    client.force_authenticate(coordinator)
    return type("World", (), locals())


def test_plan_workstream_and_outcome_progress_are_rounded(world):
    client = world.client
    plan = client.get(f"/api/v1/plans/{world.plan.pk}/").json()
    workstream = client.get(f"/api/v1/workstreams/{world.workstream.pk}/").json()
    outcome = client.get(f"/api/v1/outcomes/{world.outcome.pk}/").json()
    assert (plan["task_count"], workstream["task_count"], outcome["task_count"]) == (4, 3, 3)
    assert plan["progress"] == 42.3  # 42.25: a half is rounded up
    assert workstream["progress"] == 33.3
    assert outcome["progress"] == 56.3


def test_lists_round_progress_too(world):
    (plan,) = world.client.get("/api/v1/plans/").json()["results"]
    assert plan["progress"] == 42.3
    workstreams = world.client.get("/api/v1/workstreams/").json()["results"]
    assert [w["progress"] for w in workstreams] == [33.3]


def test_progress_stays_a_number_in_the_schema(world):
    schema = world.client.get("/api/schema/", {"format": "json"}).json()
    for component in ("Plan", "Workstream", "Outcome"):
        progress = schema["components"]["schemas"][component]["properties"]["progress"]
        assert progress["type"] == "number"
        assert progress["readOnly"] is True
