"""Issue 12, "done when": an integration creates a forum, confirms the outcomes its readout
proposes and creates a plan's tasks from them, through the API alone (a bearer token; no
admin, no service called from the test)."""

import pytest
from rest_framework.test import APIClient

from plans import services
from tests.factories import OrganizationFactory, UserFactory
from tracker.models import ApiToken
from tracker.services import api_token_create, system_user

pytestmark = pytest.mark.django_db
API = "/api/v1"

# Written for this test (no text copied from the records).
READOUT = (
    "The Ministry of Trade met the Pacific Battery Council in Seoul on 3 March 2025. "
    "The ministry and the council agreed to set up a joint battery recycling working group "
    "by the end of Q3. "
    "Hanbit Cells pledged USD 1.2 billion for a cathode plant in Georgia by 2027. "
    "Both sides welcomed the progress made since the last dialogue. "
    "Participants discussed export financing."
)


def ok(response, status=200):
    assert response.status_code == status, response.content[:800]
    return response.json() if response.content else {}


@pytest.fixture
def api():
    ministry = OrganizationFactory(kind="ministry", name="Ministry of Trade", acronym="MOT")
    coordinator = UserFactory(username="integration-coordinator")
    services.membership_create(
        actor=system_user(), user=coordinator, organization=ministry, role="coordinator"
    )
    _, token = api_token_create(
        actor=coordinator, user=coordinator, name="erp", scope=ApiToken.Scope.READ_WRITE
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    client.ministry_id = ministry.pk
    return client


def test_forum_readout_outcomes_and_tasks_through_the_api_alone(api):
    ministry = api.ministry_id
    # The registry: the two other parties, one known to texts by a shorter name.
    council = ok(
        api.post(
            f"{API}/organizations/",
            {"name_en": "Pacific Battery Council", "kind": "association", "country": "US",
             "aliases": ["the council"]},
            format="json",
        ),
        201,
    )  # fmt: skip
    assert council["aliases"] == ["the council"]
    hanbit = ok(
        api.post(
            f"{API}/organizations/",
            {"name_en": "Hanbit Cells Co., Ltd.", "name_ko": "한빛셀", "kind": "company",
             "country": "KR", "aliases": ["Hanbit Cells"]},
            format="json",
        ),
        201,
    )  # fmt: skip
    ok(
        api.patch(
            f"{API}/organizations/{ministry}/",
            {"aliases": ["the ministry"]},
            format="json",
        )
    )

    forum = ok(
        api.post(
            f"{API}/forums/",
            {"name_en": "Battery Dialogue", "kind": "ministerial", "held_on": "2025-03-03",
             "hosts": [ministry], "participants": [ministry, council["id"]]},
            format="json",
        ),
        201,
    )  # fmt: skip

    # The readout: two commitments; the welcome and the discussion are not proposed.
    intake = ok(
        api.post(
            f"{API}/forums/{forum['id']}/intake/",
            {"text": READOUT, "published_on": "2025-03-04"},
            format="json",
        ),
        201,
    )
    drafts = {draft["kind"]: draft for draft in intake["drafts"]}
    assert len(intake["drafts"]) == 2, [d["sentence"] for d in intake["drafts"]]
    group = next(d for d in intake["drafts"] if "working group" in d["sentence"])
    pledge = drafts["investment_pledge"]
    assert set(group["parties"]) == {ministry, council["id"]}
    assert (group["deadline"], group["deadline_phrase"]) == ("2025-09-30", "by the end of Q3")
    assert pledge["parties"] == [hanbit["id"]]
    assert (pledge["amount"], pledge["currency"]) == ("1200000000.00", "USD")
    assert (pledge["deadline"], pledge["deadline_phrase"]) == ("2027-12-31", "by 2027")

    # Review: a shorter title for the first, then confirm both.
    ok(
        api.patch(
            f"{API}/outcome-drafts/{group['id']}/",
            {"title": "Battery recycling working group"},
            format="json",
        )
    )
    outcome_ids = [
        ok(api.post(f"{API}/outcome-drafts/{draft['id']}/confirm/"))["outcome"]
        for draft in (group, pledge)
    ]
    outcome = ok(api.get(f"{API}/outcomes/{outcome_ids[0]}/"))
    assert (outcome["forum"], outcome["title_en"]) == (
        forum["id"], "Battery recycling working group",
    )  # fmt: skip

    # A plan for them, with the parties as members.
    plan = ok(
        api.post(
            f"{API}/plans/",
            {"code": "BAT-1", "title_en": "Battery Joint Plan 1.0", "period_start": "2025-03-01",
             "period_end": "2027-12-31", "coordinating": [ministry],
             "members": [council["id"], hanbit["id"]]},
            format="json",
        ),
        201,
    )  # fmt: skip

    made = ok(
        api.post(
            f"{API}/forums/{forum['id']}/intake/tasks/",
            {"plan": plan["id"], "drafts": [group["id"], pledge["id"]], "ref_prefix": "BAT"},
            format="json",
        ),
        201,
    )
    assert sorted(task["ref"] for task in made) == ["BAT-01", "BAT-02"]
    # Sent again (a retry, a second click): refused, naming the drafts; nothing repeated.
    again = api.post(
        f"{API}/forums/{forum['id']}/intake/tasks/",
        {"plan": plan["id"], "drafts": [pledge["id"]], "ref_prefix": "BAT"},
        format="json",
    )
    assert again.status_code == 400, again.content
    assert [error["field"] for error in again.json()["errors"]] == ["drafts"]
    assert "BAT-02" in again.json()["errors"][0]["message"]

    # Read back as any integration would: the tasks, each with its source outcome, and the
    # forum's scorecard.
    listed = ok(api.get(f"{API}/tasks/", {"plan": plan["id"]}))["results"]
    assert len(listed) == 2
    by_ref = {task["ref"]: task for task in listed}
    assert by_ref["BAT-01"]["source_outcomes"] == [outcome_ids[0]]
    assert by_ref["BAT-01"]["due_date"] == "2025-09-30"
    assert by_ref["BAT-02"]["lead_organization"] == hanbit["id"]
    assert by_ref["BAT-02"]["due_date"] == "2027-12-31"
    implementing = ok(api.get(f"{API}/outcomes/{outcome_ids[1]}/tasks/"))
    assert [task["ref"] for task in implementing] == ["BAT-02"]
    scorecard = ok(api.get(f"{API}/forums/{forum['id']}/scorecard/"))
    assert (scorecard["total"], scorecard["not_started"], scorecard["no_task"]) == (2, 2, 0)
