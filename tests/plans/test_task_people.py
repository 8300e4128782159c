"""Who may hold a task: the assignee from the lead or a supporting organization (coordinator,
manager or contributor, never a viewer, never an unrelated organization); the manager also
from a coordinating organization of the plan. Refused with an error naming the field in the
services, the API (400) and the admin (form error / action message)."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from plans import services
from plans.models import Task
from tests.factories import OrganizationFactory, UserFactory
from tests.permission_matrix import build_world
from tests.plans.test_admin import _intermediate_data, form_data
from tracker.models import Membership
from tracker.services import system_user

pytestmark = pytest.mark.django_db
Role = Membership.Role


@pytest.fixture
def world():
    return build_world()


def _unrelated_viewer():
    user = UserFactory(username="unrelated-viewer")
    services.membership_create(
        actor=system_user(), user=user, organization=OrganizationFactory(), role=Role.VIEWER
    )
    return user


def _refused(world, *, assignee=None, **kwargs):
    before = Task.objects.filter(pk=world.task.pk).values().get()
    with pytest.raises(ValidationError) as exc:
        services.task_assign(
            actor=world.user("coordinator"), task=world.task, assignee=assignee, **kwargs
        )
    assert Task.objects.filter(pk=world.task.pk).values().get() == before
    return exc.value.message_dict


@pytest.mark.parametrize("who", ["contributor_other", "viewer", "coordinator_other_plan"])
def test_assignee_outside_the_task_organizations_is_refused(world, who):
    person = world.user(who)
    errors = _refused(world, assignee=person)
    assert errors == {"assignee": [services.ASSIGNEE_NOT_IN_TASK_ORGANIZATIONS.format(user=person)]}


def test_viewer_of_an_unrelated_organization_is_refused(world):
    viewer = _unrelated_viewer()
    assert set(_refused(world, assignee=viewer)) == {"assignee"}


@pytest.mark.parametrize("who", ["contributor_lead", "manager", "contributor_supporting"])
def test_assignee_from_the_lead_or_a_supporting_organization_is_taken(world, who):
    person = world.user(who)
    services.task_assign(actor=world.user("coordinator"), task=world.task, assignee=person)
    assert Task.objects.get(pk=world.task.pk).assignee == person


def test_manager_may_come_from_a_coordinating_organization_but_not_from_elsewhere(world):
    coordinator = world.user("coordinator")
    errors = _refused(world, manager=world.user("contributor_other"))
    assert errors == {
        "manager": [
            services.MANAGER_NOT_IN_TASK_ORGANIZATIONS.format(user=world.user("contributor_other"))
        ]
    }
    services.task_assign(actor=coordinator, task=world.task, assignee=None, manager=coordinator)
    assert Task.objects.get(pk=world.task.pk).manager == coordinator


def test_task_create_refuses_an_assignee_from_an_unrelated_organization(world):
    with pytest.raises(ValidationError) as exc:
        services.task_create(
            actor=world.user("coordinator"), plan=world.plan_a, ref="NEW-1", title="New",
            lead_organization=world.lead, due_date=dt.date(2030, 1, 31),
            assignee=world.user("contributor_other"),
        )  # fmt: skip
    assert set(exc.value.message_dict) == {"assignee"}
    assert not Task.objects.filter(ref="NEW-1").exists()
    # a supporting organization listed in the same call makes the same person acceptable
    task = services.task_create(
        actor=world.user("coordinator"), plan=world.plan_a, ref="NEW-1", title="New",
        lead_organization=world.lead, due_date=dt.date(2030, 1, 31),
        supporting_organizations=[world.other], assignee=world.user("contributor_other"),
    )  # fmt: skip
    assert task.assignee == world.user("contributor_other")


# --- The API -------------------------------------------------------------------------------


def _api(world, role="coordinator"):
    client = APIClient()
    client.force_login(world.user(role))
    return client


def _fields_of(response):
    return {error["field"] for error in response.json().get("errors", [])}


def test_api_assign_refuses_an_outsider_naming_assignee(world):
    response = _api(world).post(
        f"/api/v1/tasks/{world.task.pk}/assign/",
        {"assignee": world.user("contributor_other").pk},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert _fields_of(response) == {"assignee"}
    assert Task.objects.get(pk=world.task.pk).assignee_id is None
    # the control: a member of the lead organization is taken
    response = _api(world).post(
        f"/api/v1/tasks/{world.task.pk}/assign/",
        {"assignee": world.user("contributor_lead").pk},
        format="json",
    )
    assert response.status_code == 200, response.content


def test_api_create_refuses_an_outsider_naming_assignee(world):
    response = _api(world).post(
        "/api/v1/tasks/",
        {
            "plan": world.plan_a.pk,
            "ref": "API-1",
            "title": "From the API",
            "lead_organization": world.lead.pk,
            "due_date": "2030-01-31",
            "assignee": world.user("contributor_other").pk,
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    assert _fields_of(response) == {"assignee"}
    assert not Task.objects.filter(ref="API-1").exists()


# --- The admin -----------------------------------------------------------------------------


def test_admin_add_form_shows_the_refusal_on_assignee(world, client):
    client.force_login(world.user("coordinator"))
    add_url = reverse("admin:plans_task_add")
    data = form_data(client.get(add_url), "task_form")
    data.update(
        plan=[str(world.plan_a.pk)], ref=["ADM-1"], title_en=["From the admin"],
        lead_organization=[str(world.lead.pk)], due_date=["2030-01-31"],
        priority=["normal"], visibility=["participants"],
        assignee=[str(world.user("contributor_other").pk)], _save=["Save"],
    )  # fmt: skip
    response = client.post(add_url, data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["assignee"] == [
        services.ASSIGNEE_NOT_IN_TASK_ORGANIZATIONS.format(user=world.user("contributor_other"))
    ]
    assert not Task.objects.filter(ref="ADM-1").exists()
    # the control: the same form with a member of the lead organization saves
    data["assignee"] = [str(world.user("contributor_lead").pk)]
    assert client.post(add_url, data).status_code == 302
    assert Task.objects.get(ref="ADM-1").assignee == world.user("contributor_lead")


def test_admin_assign_action_refuses_an_outsider(world, client):
    client.force_login(world.user("coordinator"))
    changelist = reverse("admin:plans_task_changelist") + "?scope=all"
    intermediate = client.post(
        changelist, {"action": "assign", "_selected_action": [world.task.pk], "index": "0"}
    )
    # The outsider is not even offered; a crafted post naming them is refused on the field.
    offered = intermediate.context["form"].fields["assignee"].queryset
    assert world.user("contributor_other") not in offered
    data = _intermediate_data(intermediate)
    data.update(assignee=[str(world.user("contributor_other").pk)], note=["Handover."])
    response = client.post(changelist, data, follow=True)
    assert Task.objects.get(pk=world.task.pk).assignee_id is None
    assert response.context["form"].errors["assignee"]
    # the control: a member of the lead organization is offered and assigned
    assert world.user("contributor_lead") in offered
    data.update(assignee=[str(world.user("contributor_lead").pk)])
    client.post(changelist, data, follow=True)
    assert Task.objects.get(pk=world.task.pk).assignee == world.user("contributor_lead")


def test_admin_assignee_autocomplete_leaves_out_viewers(world, client):
    client.force_login(world.user("coordinator"))
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "plans", "model_name": "task", "field_name": "assignee", "term": ""},
    )
    assert response.status_code == 200
    offered = {int(row["id"]) for row in response.json()["results"]}
    assert world.user("contributor_lead").pk in offered
    assert world.user("viewer").pk not in offered


def test_changing_the_organizations_keeps_the_people_holding_the_task_allowed(world):
    """Found in review: a PATCH of the lead (or supporting) organizations left an assignee who
    may no longer hold the task, and who lost sight of it and its reminders."""
    services.task_assign(
        actor=world.user("coordinator"), task=world.task, assignee=world.user("contributor_lead")
    )
    task = Task.objects.get(pk=world.task.pk)
    response = _api(world).patch(
        f"/api/v1/tasks/{task.pk}/",
        {"lead_organization": world.other.pk, "supporting_organizations": []},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert _fields_of(response) == {"assignee"}
    after = Task.objects.get(pk=task.pk)
    assert (after.lead_organization_id, after.version) == (world.lead.pk, task.version)
    assert list(after.supporting_organizations.all()) == [world.supporting]
    # the control: a move that keeps the assignee's organization among the task's is taken
    response = _api(world).patch(
        f"/api/v1/tasks/{task.pk}/",
        {"lead_organization": world.other.pk, "supporting_organizations": [world.lead.pk]},
        format="json",
    )
    assert response.status_code == 200, response.content
