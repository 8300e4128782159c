"""Input rules (issue 9, item 5): refs and names without control characters, dates within
bounds, strict integer ids, links without credentials, bounded JSON nesting. Each bad input
is a 400 problem document naming the field (a form error in the admin), never a 500."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from plans import services
from plans.models import Task
from tests.factories import UserFactory
from tests.permission_matrix import build_world
from tracker.api.parsers import TOO_DEEP
from tracker.models import Organization
from tracker.validators import (
    CONTROL_CHARACTERS,
    DATE_OUT_OF_RANGE,
    URL_SCHEME,
    URL_WITH_CREDENTIALS,
)

pytestmark = pytest.mark.django_db
FAR = "9999-12-31"
PROBLEM = "application/problem+json"


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def someone(db):
    """A signed-in user with no membership: enough for input refused before any lookup."""
    client = APIClient()
    client.force_authenticate(UserFactory())
    return client


@pytest.fixture
def api(world):
    client = APIClient()
    client.force_authenticate(world.user("coordinator"))
    return client


def fields_of(response) -> dict[str, list[str]]:
    assert response.status_code == 400, (response.status_code, response.content)
    assert response["Content-Type"] == PROBLEM
    errors: dict[str, list[str]] = {}
    for error in response.json()["errors"]:
        errors.setdefault(error["field"], []).append(error["message"])
    return errors


def new_task(world, **changes):
    body = {
        "plan": world.plan_a.pk,
        "ref": "IN-01",
        "title": "Open the joint testing centre",
        "lead_organization": world.lead.pk,
        "due_date": "2030-06-30",
    }
    body.update(changes)
    return body


# --- Control characters ----------------------------------------------------------------------


REFS = ["SC-03\nBcc: x@example.org", "SC\r03", "SC\t03", "SC\x0003", "SC\x8503", "SC\u202803"]


def test_api_refuses_a_ref_with_a_control_character(api, world):
    for ref in REFS:
        response = api.post("/api/v1/tasks/", new_task(world, ref=ref), format="json")
        assert list(fields_of(response)) == ["ref"], ref
    assert not Task.objects.filter(title="Open the joint testing centre").exists()


def test_api_refuses_a_title_with_a_line_break_and_keeps_them_in_the_description(api, world):
    response = api.post("/api/v1/tasks/", new_task(world, title="Two\nlines"), format="json")
    assert fields_of(response) == {"title": [CONTROL_CHARACTERS]}

    description = "First line\n\tindented second line\r\n"
    response = api.post("/api/v1/tasks/", new_task(world, description=description), format="json")
    assert response.status_code == 201, response.content
    assert Task.objects.get(pk=response.json()["id"]).description == description.strip()

    response = api.patch(
        f"/api/v1/tasks/{world.task.pk}/", {"description": "bell\x07"}, format="json"
    )
    assert list(fields_of(response)) == ["description"]


def test_services_refuse_control_characters_in_names(world):
    coordinator = world.user("coordinator")
    with pytest.raises(ValidationError) as caught:
        services.forum_create(
            actor=coordinator, name="Dialogue\nX", kind="dialogue", held_on=dt.date(2025, 7, 1)
        )
    assert caught.value.message_dict == {"name": [CONTROL_CHARACTERS]}
    with pytest.raises(ValidationError) as caught:
        services.workstream_create(actor=coordinator, plan=world.plan_a, code="W\n1", title="t")
    assert caught.value.message_dict == {"code": [CONTROL_CHARACTERS]}
    org = Organization(name="Acme\r\nCorp", acronym="A\tC", kind="company", country="KR")
    with pytest.raises(ValidationError) as caught:
        org.full_clean()
    assert set(caught.value.message_dict) == {"name_en", "acronym_en"}


def test_admin_refuses_a_ref_with_a_line_break(client, world):
    client.force_login(world.user("coordinator"))
    add = reverse("admin:plans_task_add")
    response = client.post(
        add,
        {
            "plan": world.plan_a.pk,
            "ref": "AD-01\nX",
            "title": "Admin task",
            "lead_organization": world.lead.pk,
            "visibility": "participants",
            "priority": "normal",
            "status": "planned",
            "progress": "0",
            "due_date": "2030-06-30",
            **_empty_inlines(client, add),
        },
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["ref"] == [CONTROL_CHARACTERS]
    assert not Task.objects.filter(title="Admin task").exists()


def _empty_inlines(client, add_url) -> dict:
    """The management forms of the add page's inlines, as a browser sends them unchanged."""
    data = {}
    for formset in client.get(add_url).context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for name, field in management.fields.items():
            data[f"{management.prefix}-{name}"] = management.initial.get(name, field.initial)
    return data


# --- Dates -----------------------------------------------------------------------------------


def test_api_create_refuses_a_due_date_of_year_9999(api, world):
    response = api.post("/api/v1/tasks/", new_task(world, due_date=FAR), format="json")
    assert fields_of(response) == {"due_date": [DATE_OUT_OF_RANGE]}
    response = api.post("/api/v1/tasks/", new_task(world, due_date="1899-12-31"), format="json")
    assert fields_of(response) == {"due_date": [DATE_OUT_OF_RANGE]}
    assert not Task.objects.filter(ref="IN-01").exists()


def test_api_patch_refuses_a_start_date_of_year_9999(api, world):
    task = world.task
    response = api.patch(f"/api/v1/tasks/{task.pk}/", {"start_date": FAR}, format="json")
    assert fields_of(response) == {"start_date": [DATE_OUT_OF_RANGE]}
    response = api.patch(f"/api/v1/tasks/{task.pk}/", {"due_date": FAR}, format="json")
    assert list(fields_of(response)) == ["due_date"]
    assert Task.objects.get(pk=task.pk).version == task.version


def test_api_deadline_action_refuses_year_9999(api, world):
    task = world.task
    response = api.post(
        f"/api/v1/tasks/{task.pk}/deadline/", {"due_date": FAR, "reason": "far"}, format="json"
    )
    assert fields_of(response) == {"due_date": [DATE_OUT_OF_RANGE]}
    assert Task.objects.get(pk=task.pk).due_date == task.due_date


def test_services_refuse_out_of_range_dates_before_computing_the_deadline(world):
    coordinator = world.user("coordinator")
    with pytest.raises(ValidationError) as caught:
        services.task_change_deadline(
            actor=coordinator, task=world.task, due_date=dt.date(9999, 12, 31), reason="far"
        )
    assert caught.value.message_dict == {"due_date": [DATE_OUT_OF_RANGE]}
    with pytest.raises(ValidationError) as caught:
        services.task_create(
            actor=coordinator, plan=world.plan_a, ref="SV-1", title="t",
            lead_organization=world.lead, due_date=dt.date(9999, 12, 31),
        )  # fmt: skip
    assert caught.value.message_dict == {"due_date": [DATE_OUT_OF_RANGE]}
    with pytest.raises(ValidationError) as caught:
        services.plan_create(
            actor=coordinator, code="FAR", title="Far", period_start=dt.date(2025, 1, 1),
            period_end=dt.date(9999, 12, 31), coordinating=[world.m],
        )  # fmt: skip
    assert caught.value.message_dict == {"period_end": [DATE_OUT_OF_RANGE]}


def test_admin_deadline_action_refuses_year_9999(client, world):
    client.force_login(world.user("coordinator"))
    changelist = reverse("admin:plans_task_changelist") + "?scope=all"
    response = client.post(
        changelist,
        {
            "action": "change_deadline",
            "_selected_action": [world.task.pk],
            "index": "0",
            "apply": "yes",
            "due_date": FAR,
            "reason": "Much later.",
        },
    )
    assert response.status_code == 200  # the action's form again, with the error
    assert response.context["form"].errors == {"due_date": [DATE_OUT_OF_RANGE]}
    assert Task.objects.get(pk=world.task.pk).due_date == world.task.due_date


def test_admin_add_form_refuses_year_9999(client, world):
    client.force_login(world.user("coordinator"))
    add = reverse("admin:plans_task_add")
    response = client.post(
        add,
        {
            "plan": world.plan_a.pk,
            "ref": "AD-02",
            "title": "Far task",
            "lead_organization": world.lead.pk,
            "visibility": "participants",
            "priority": "normal",
            "status": "planned",
            "progress": "0",
            "due_date": FAR,
            **_empty_inlines(client, add),
        },
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["due_date"] == [DATE_OUT_OF_RANGE]
    assert not Task.objects.filter(ref="AD-02").exists()


def test_date_filters_refuse_out_of_range_dates(someone):
    for path, query in [
        ("tasks", "due_before=9999-12-31"),
        ("tasks", "due_after=0001-01-01"),
        ("tasks", "updated_after=9999-12-31T23:59:59-23:59"),
        ("tasks", "updated_after=0001-01-01T00:00:00%2B23:59"),
        ("tasks", "updated_after=2300-01-01T00:00:00Z"),
        ("forums", "held_before=9999-12-31"),
        ("status-updates", "created_after=9999-12-31T00:00:00Z"),
    ]:
        response = someone.get(f"/api/v1/{path}/?{query}")
        assert list(fields_of(response)) == [query.split("=")[0]], query
    assert someone.get("/api/v1/tasks/?due_before=2200-12-31").status_code == 200


# --- Ids -------------------------------------------------------------------------------------


def test_api_refuses_an_id_that_is_not_an_integer(api, world):
    for bad in [1.5, "1.5", True, 1e3, "1e3", " 1", "", [1], {"id": 1}, 2**64]:
        response = api.post("/api/v1/tasks/", new_task(world, lead_organization=bad))
        assert list(fields_of(response)) == ["lead_organization"], bad
        response = api.post("/api/v1/tasks/", new_task(world, supporting_organizations=[bad]))
        assert list(fields_of(response)) == ["supporting_organizations"], bad
    assert not Task.objects.filter(ref="IN-01").exists()


def test_an_id_of_1_5_is_not_taken_as_1(api, world):
    lead = world.lead.pk
    response = api.post("/api/v1/tasks/", new_task(world, lead_organization=lead + 0.5))
    assert list(fields_of(response)) == ["lead_organization"]
    response = api.post("/api/v1/tasks/", new_task(world, lead_organization=float(lead)))
    assert list(fields_of(response)) == ["lead_organization"]
    response = api.post("/api/v1/tasks/", new_task(world, lead_organization=str(lead)))
    assert response.status_code == 201, response.content


def test_id_filters_refuse_anything_but_a_plain_integer(someone):
    for value in ["1.5", "1.0", "1_000", "١", "1e3", "0", "-1", "99999999999999999999"]:
        for path, name in [("tasks", "lead_organization"), ("tasks", "plan"),
                           ("tasks", "organization"), ("outcomes", "party"),
                           ("organizations", "parent"), ("status-updates", "task")]:  # fmt: skip
            response = someone.get(f"/api/v1/{path}/?{name}={value}")
            assert list(fields_of(response)) == [name], (path, name, value)
    assert someone.get("/api/v1/tasks/?lead_organization=1,2").status_code == 200


def test_webhook_organization_id_is_strict(api, world):
    response = api.post(
        "/api/v1/webhooks/",
        {
            "organization": world.m.pk + 0.5,
            "url": "https://example.org/h",
            "events": ["task.created"],
        },
        format="json",
    )
    assert list(fields_of(response)) == ["organization"]


# --- Evidence links --------------------------------------------------------------------------


BAD_LINKS = [
    ("https://user:pass@evidence.example.org/minutes.pdf", URL_WITH_CREDENTIALS),
    ("https://token@evidence.example.org/", URL_WITH_CREDENTIALS),
    ("ftp://evidence.example.org/minutes.pdf", URL_SCHEME),
]


def test_evidence_links_are_http_without_credentials(api, world):
    for url, message in BAD_LINKS:
        _refused_everywhere(api, world.task, url, message)


def _refused_everywhere(api, task, url, message):
    response = api.post(
        f"/api/v1/tasks/{task.pk}/updates/", {"note": "minutes", "evidence_url": url}, format="json"
    )
    assert fields_of(response) == {"evidence_url": [message]}
    response = api.post(
        f"/api/v1/tasks/{task.pk}/transition/",
        {"to": "done", "expected_from": "in_progress", "note": "done", "evidence_url": url},
        format="json",
    )
    assert list(fields_of(response)) == ["evidence_url"]
    assert Task.objects.get(pk=task.pk).status == Task.Status.IN_PROGRESS
    assert not task.updates.filter(evidence_url=url).exists()


def test_admin_change_status_action_refuses_credentials_in_the_evidence_link(client, world):
    client.force_login(world.user("coordinator"))
    changelist = reverse("admin:plans_task_changelist") + "?scope=all"
    response = client.post(
        changelist,
        {
            "action": "change_status",
            "_selected_action": [world.task.pk],
            "index": "0",
            "apply": "yes",
            "to_status": "done",
            "note": "Finished.",
            "evidence_url": "https://user:secret@evidence.example.org/",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {"evidence_url": [URL_WITH_CREDENTIALS]}
    assert Task.objects.get(pk=world.task.pk).status == Task.Status.IN_PROGRESS


# --- JSON nesting ----------------------------------------------------------------------------


def test_fifty_thousand_nested_brackets_are_a_400(someone):
    api = someone
    response = api.post("/api/v1/tasks/", "[" * 50_000, content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert "JSON parse error" in response.json()["detail"]


def test_json_nested_beyond_the_bound_is_a_400_and_within_it_parses(api, world):
    deep = "[" * 33 + "]" * 33
    response = api.post("/api/v1/tasks/", f'{{"title": {deep}}}', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"] == TOO_DEEP
    # depth 2 (an object holding a list) is what the API takes
    body = new_task(world, supporting_organizations=[world.other.pk])
    response = api.post("/api/v1/tasks/", body, format="json")
    assert response.status_code == 201, response.content


def test_form_bodies_are_refused(api, world):
    response = api.post("/api/v1/tasks/", new_task(world), format="multipart")
    assert response.status_code == 415


def test_a_ref_stored_before_the_rules_does_not_block_other_edits(world):
    Task.objects.filter(pk=world.task.pk).update(ref="OLD\nREF")
    coordinator = world.user("coordinator")
    task = services.task_update(actor=coordinator, task=world.task, title="Renamed")
    assert (task.ref, task.title) == ("OLD\nREF", "Renamed")
    with pytest.raises(ValidationError) as caught:
        services.task_update(actor=coordinator, task=task, title="Two\nlines")
    assert caught.value.message_dict == {"title": [CONTROL_CHARACTERS]}
