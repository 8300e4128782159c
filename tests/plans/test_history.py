"""The audit history: who changed what, old and new values, from any caller; editable by nobody."""

import datetime as dt
import io

import pytest
from django.contrib import admin
from django.core.management import call_command

from plans import services
from plans.models import Forum, Outcome, Plan, PlanParticipant, Task, Workstream
from tests.factories import OrganizationFactory, PlanFactory, TaskFactory, UserFactory
from tracker.models import Membership, Organization
from tracker.services import system_user

pytestmark = pytest.mark.django_db


def coordinated_plan():
    ministry = OrganizationFactory(kind=Organization.Kind.MINISTRY)
    coordinator = UserFactory()
    services.membership_create(
        actor=system_user(), user=coordinator, organization=ministry, role="coordinator"
    )
    return PlanFactory(coordinating=[ministry]), coordinator


def test_every_audited_model_has_history():
    for model in (
        Plan,
        Workstream,
        Task,
        Outcome,
        Forum,
        Organization,
        Membership,
        PlanParticipant,
    ):
        assert hasattr(model, "history"), model


def test_service_outside_a_request_records_author_and_field_changes():
    plan, coordinator = coordinated_plan()
    task = TaskFactory(plan=plan, title="Old title", priority="normal")
    services.task_update(actor=coordinator, task=task, title="New title", priority="high")

    latest = task.history.first()
    assert latest.history_user == coordinator
    changes = {c.field: (c.old, c.new) for c in latest.diff_against(latest.prev_record).changes}
    assert changes["title"] == ("Old title", "New title")
    assert changes["priority"] == ("normal", "high")


def test_workflow_moves_are_in_the_history_with_their_author():
    plan, coordinator = coordinated_plan()
    task = TaskFactory(plan=plan)
    services.task_transition(
        actor=coordinator, task=task, to_status="in_progress", expected_from="planned"
    )
    services.task_change_deadline(
        actor=coordinator,
        task=task,
        due_date=task.due_date + dt.timedelta(days=30),
        reason="Partner asked for a month.",
    )
    records = list(task.history.order_by("history_date", "history_id"))
    statuses = [r.status for r in records]
    assert statuses[0] == "planned" and "in_progress" in statuses
    assert records[-1].history_user == coordinator
    assert records[-1].due_date == task.due_date + dt.timedelta(days=30)


def test_automated_work_is_recorded_as_the_system_account():
    task = TaskFactory()
    system = system_user()
    services.task_transition(
        actor=system, task=task, to_status="in_progress", expected_from="planned"
    )
    assert task.history.first().history_user == system
    assert task.history.first().history_user.username == "system"


def test_many_to_many_changes_are_recorded():
    plan, coordinator = coordinated_plan()
    task = TaskFactory(plan=plan)
    supporter = OrganizationFactory()
    services.task_update(actor=coordinator, task=task, supporting_organizations=[supporter])
    latest = task.history.first()
    assert [row.organization_id for row in latest.supporting_organizations.all()] == [supporter.pk]
    assert latest.history_user == coordinator


def test_membership_changes_are_recorded():
    plan, coordinator = coordinated_plan()
    org = OrganizationFactory()
    PlanParticipant.objects.create(plan=plan, organization=org)
    person = UserFactory()
    membership = services.membership_create(
        actor=coordinator, user=person, organization=org, role="viewer"
    )
    services.membership_update(actor=coordinator, membership=membership, role="contributor")
    records = list(membership.history.order_by("history_date", "history_id"))
    assert [(r.history_type, r.role) for r in records] == [("+", "viewer"), ("~", "contributor")]
    assert {r.history_user for r in records} == {coordinator}


def test_management_command_writes_history_with_authors(settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=io.StringIO())
    history = Task.history.model.objects
    assert history.exists()
    assert not history.filter(history_user__isnull=True).exists()


def test_history_cannot_be_edited_or_reverted(client):
    # No admin page edits historical rows, and reverting is switched off.
    registered = {model for model in admin.site._registry}
    assert not any(model.__name__.startswith("Historical") for model in registered)
    superuser = UserFactory(is_superuser=True, is_staff=True)
    plan, coordinator = coordinated_plan()
    task = TaskFactory(plan=plan, title="First")
    services.task_update(actor=coordinator, task=task, title="Second")
    first = task.history.order_by("history_date", "history_id").first()

    client.force_login(superuser)
    url = f"/admin/plans/task/{task.pk}/history/{first.history_id}/"
    client.post(url, {"title": "First", "_save": "1"})
    task.refresh_from_db()
    assert task.title == "Second"
