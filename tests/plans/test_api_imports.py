"""The import endpoints: JSON with the file base64-encoded (never multipart), ?dry_run, 400
naming each bad cell, the policy per row, and outcomes matched by forum and title."""

import base64
import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from plans.models import Outcome, Task
from tests.permission_matrix import TASK_REF, build_world
from tracker.api.errors import PROBLEM_CONTENT_TYPE
from workspace import imports

TASKS = "/api/v1/tasks/import/"
OUTCOMES = "/api/v1/outcomes/import/"


def csv_bytes(rows) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


@pytest.fixture
def world(db):
    return build_world()


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


NEW = [["Plan", "Ref", "Title", "Due date", "Lead organization"],
       ["PLAN-A", "API-1", "From the API", "2030-01-31", "LCO"]]  # fmt: skip


def b64(rows) -> dict:
    return {"filename": "t.csv", "content_base64": base64.b64encode(csv_bytes(rows)).decode()}


def test_dry_run_then_for_real(world):
    client = api(world.user("coordinator"))
    response = client.post(TASKS + "?dry_run=true", b64(NEW), format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["dry_run"] and not body["committed"]
    assert body["counts"] == {"create": 1, "change": 0, "unchanged": 0, "error": 0}
    assert not Task.objects.filter(ref="API-1").exists()
    response = client.post(TASKS, b64(NEW), format="json")
    assert response.status_code == 200 and response.json()["committed"]
    task = Task.objects.get(ref="API-1")
    assert task.lead_organization == world.lead and task.updates.count() == 1


def test_json_with_base64(world):
    body = {"filename": "t.csv", "content_base64": base64.b64encode(csv_bytes(NEW)).decode()}
    response = api(world.user("coordinator")).post(TASKS, body, format="json")
    assert response.status_code == 200 and response.json()["counts"]["create"] == 1


def test_bad_rows_answer_400_naming_each_cell_and_write_nothing(world):
    rows = [*NEW, ["PLAN-A", "API-2", "Bad date", "tomorrow", "LCO"],
            ["PLAN-A", "API-3", "Nobody leads", "2030-01-31", "Nobody Inc"]]  # fmt: skip
    response = api(world.user("coordinator")).post(TASKS, b64(rows), format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    errors = response.json()["errors"]
    assert [(e["field"], e["row"]) for e in errors] == [
        ("rows.3.due_date", 3),
        ("rows.4.lead_organization", 4),
    ]
    assert errors[0]["message"] == str(imports.BAD_DATE)
    assert not Task.objects.filter(ref__startswith="API-").exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "content_base64"),
        ({"content_base64": "%%%"}, "content_base64"),
        ({"content_base64": base64.b64encode(b"PK\x03\x04junk").decode()}, "content_base64"),
        ({"content_base64": "A" * (4 * -(-imports.MAX_BYTES // 3) + 4)}, "content_base64"),
        ([], "non_field_errors"),
    ],
)
def test_a_missing_or_unreadable_file_is_a_400_naming_the_field(world, body, field):
    response = api(world.user("coordinator")).post(TASKS, body, format="json")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_a_bad_dry_run_flag_is_a_400(world):
    response = api(world.user("coordinator")).post(TASKS + "?dry_run=maybe", {}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "dry_run"


def test_a_form_or_multipart_body_is_415(world):
    client = api(world.user("coordinator"))
    response = client.post(TASKS, "a=b", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    upload = SimpleUploadedFile("t.csv", csv_bytes(NEW), content_type="text/csv")
    response = client.post(TASKS, {"file": upload}, format="multipart")
    assert response.status_code == 415
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert not Task.objects.filter(ref="API-1").exists()


def test_anonymous_is_refused(world):
    assert APIClient().post(TASKS, {}, format="json").status_code in (401, 403)


def test_a_firm_user_cannot_change_a_task_and_does_not_learn_hidden_ones(world):
    rows = [["Plan", "Ref", "Title"], ["PLAN-A", TASK_REF, "Renamed by a firm"]]
    body = {"content_base64": base64.b64encode(csv_bytes(rows)).decode()}
    lead = api(world.user("contributor_lead")).post(TASKS, body, format="json")
    assert lead.status_code == 400
    assert lead.json()["errors"][0]["message"] == str(imports.TASK_NOT_CHANGEABLE)
    other = api(world.user("contributor_other")).post(TASKS, body, format="json")
    assert other.status_code == 400
    assert other.json()["errors"][0]["message"] == str(
        imports.TASK_NOT_FOUND % {"ref": TASK_REF, "plan": "PLAN-A"}
    )
    assert Task.objects.get(pk=world.task.pk).title == world.task.title


# --- Outcomes ---------------------------------------------------------------------------------


def test_outcomes_are_created_and_changed_by_forum_and_title(world):
    forum = f"{world.forum.name} ({world.forum.held_on:%Y-%m-%d})"
    rows = [
        ["Forum", "Title", "Kind", "Parties", "Amount", "Currency", "Binding"],
        [forum, world.outcome.title, "Decision", "", "", "", ""],  # changes the kind
        [world.forum.name, "Battery MOU", "MOU", "LCO; Ministry M", "1500000", "usd", "no"],
    ]
    body = {"content_base64": base64.b64encode(csv_bytes(rows)).decode()}
    client = api(world.user("coordinator"))
    response = client.post(OUTCOMES, body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["counts"] == {"create": 1, "change": 1, "unchanged": 0, "error": 0}
    world.outcome.refresh_from_db()
    assert world.outcome.kind == "decision"
    created = Outcome.objects.get(title="Battery MOU")
    assert set(created.parties.all()) == {world.lead, world.m}
    assert (created.currency, int(created.amount)) == ("USD", 1500000)
    again = client.post(OUTCOMES + "?dry_run=true", body, format="json").json()
    assert again["counts"] == {"create": 0, "change": 0, "unchanged": 2, "error": 0}


def test_outcomes_need_a_coordinator_and_report_bad_cells(world):
    rows = [["Title", "Kind", "Amount"], ["New pledge", "Pledge?", "lots"]]
    body = {"content_base64": base64.b64encode(csv_bytes(rows)).decode()}
    url = f"{OUTCOMES}?forum={world.forum.pk}"
    response = api(world.user("coordinator")).post(url, body, format="json")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["rows.2.kind", "rows.2.amount"]
    rows = [["Title", "Kind"], ["New pledge", "Investment pledge"]]
    body = {"content_base64": base64.b64encode(csv_bytes(rows)).decode()}
    response = api(world.user("manager")).post(url, body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == str(imports.OUTCOMES_NOT_ALLOWED)
    assert not Outcome.objects.filter(title="New pledge").exists()
