"""Related ids in payloads name only what the reader may see: a parent or dependency the
reader cannot open is absent (null parent, left out of depends_on), a person outside the
reader's scope is null; the same for a webhook's receiving organization. The people named on a
task the reader may view (assignee, manager, history) are in the reader's scope; the system
account never is. A fixed number of
queries per list page, however many rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from notifications import services as notification_services
from notifications.tasks import deliver_webhook_task, deliver_webhooks_task
from plans import permissions as policy
from plans import services
from plans.models import StatusUpdate
from tests.factories import TaskFactory
from tests.permission_matrix import build_world
from tracker.services import system_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """T (led by L, supported by S) has parent H and depends on H and V. H is led by O with
    visibility "participants": L and S cannot open it; V is led by L, visible plan-wide.
    T's assignee is S's contributor, its manager M's coordinator."""
    world = build_world()
    system = system_user()
    world.hidden = TaskFactory(plan=world.plan_a, ref="H-1", lead_organization=world.other)
    world.visible = TaskFactory(
        plan=world.plan_a, ref="V-1", lead_organization=world.lead, visibility="plan"
    )
    services.task_update(
        actor=system, task=world.task, parent=world.hidden,
        depends_on=[world.hidden, world.visible],
    )  # fmt: skip
    services.task_assign(
        actor=system, task=world.task, assignee=world.user("contributor_supporting"),
        manager=world.user("coordinator"),
    )  # fmt: skip
    return world


def _client(world, role):
    client = APIClient()
    client.force_login(world.user(role))
    return client


def _task(world, role):
    response = _client(world, role).get(f"/api/v1/tasks/{world.task.pk}/")
    assert response.status_code == 200
    return response.json()


def test_a_hidden_parent_and_dependency_are_left_out(world):
    body = _task(world, "contributor_lead")
    assert body["parent"] is None
    assert body["depends_on"] == [world.visible.pk]
    listed = _client(world, "contributor_lead").get("/api/v1/tasks/").json()["results"]
    (row,) = [row for row in listed if row["id"] == world.task.pk]
    assert (row["parent"], row["depends_on"]) == (None, [world.visible.pk])


def test_the_plan_coordinator_sees_every_related_id(world):
    """The control: the ids are there for a reader who may see them."""
    body = _task(world, "coordinator")
    assert body["parent"] == world.hidden.pk
    assert sorted(body["depends_on"]) == sorted([world.hidden.pk, world.visible.pk])
    assert body["assignee"] == world.user("contributor_supporting").pk
    assert body["manager"] == world.user("coordinator").pk
    assert _task(world, "superuser")["parent"] == world.hidden.pk


def test_people_named_on_a_visible_task_are_named(world):
    """L's contributor sees who holds T (S's contributor, M's coordinator): they are named on
    a task L may view, though they are not L's colleagues."""
    lead = _task(world, "contributor_lead")
    assert lead["assignee"] == world.user("contributor_supporting").pk
    assert lead["manager"] == world.user("coordinator").pk
    reader = world.user("contributor_lead")
    for person in ("contributor_supporting", "coordinator"):
        assert policy.can(reader, policy.VIEW, world.user(person))


def test_people_named_only_on_hidden_tasks_stay_hidden(world):
    """O's contributor holds H, which L cannot open: L's contributor gets no name for them,
    by the policy's people scope; once a task L sees names them, they are seen."""
    system = system_user()
    other = world.user("contributor_other")
    services.task_assign(actor=system, task=world.hidden, assignee=other, manager=None)
    client = _client(world, "contributor_lead")
    reader = world.user("contributor_lead")
    assert not policy.can(reader, policy.VIEW, other)
    services.task_update(actor=system, task=world.visible, supporting_organizations=[world.other])
    world.visible.refresh_from_db()
    services.task_assign(
        actor=system, task=world.visible, assignee=other, manager=None,
        expected_version=world.visible.version,
    )  # fmt: skip
    assert policy.can(reader, policy.VIEW, other)
    body = client.get(f"/api/v1/tasks/{world.visible.pk}/").json()
    assert body["assignee"] == other.pk


def test_status_updates_never_name_the_system_account(world):
    assignment = world.task.updates.get(kind=StatusUpdate.Kind.ASSIGNMENT)
    client = _client(world, "contributor_lead")
    history = client.get(f"/api/v1/tasks/{world.task.pk}/updates/").json()
    (row,) = [row for row in history if row["id"] == assignment.pk]
    assert row["author"] is None  # the system account
    assert row["assignee_to"] == world.user("contributor_supporting").pk  # named on T
    listed = client.get("/api/v1/status-updates/").json()["results"]
    (row,) = [row for row in listed if row["id"] == assignment.pk]
    assert (row["author"], row["assignee_to"]) == (None, world.user("contributor_supporting").pk)
    assert not policy.can(world.user("contributor_lead"), policy.VIEW, system_user())


def test_webhook_payload_names_only_what_the_receiving_organization_sees(world, monkeypatch):
    monkeypatch.setattr(deliver_webhook_task, "apply_async", lambda *args, **kwargs: None)
    monkeypatch.setattr(deliver_webhooks_task, "apply_async", lambda *args, **kwargs: None)
    for organization in (world.supporting, world.m):
        notification_services.webhook_subscription_create(
            actor=system_user(), organization=organization,
            url="http://127.0.0.1:9/hook", events=["task.updated"],
        )  # fmt: skip
    deliveries = notification_services.webhook_events_record(
        event="task.updated", task_id=world.task.pk, fields=["title"]
    )
    payloads = {d.subscription.organization_id: d.payload["data"]["task"] for d in deliveries}
    supporting = payloads[world.supporting.pk]
    assert supporting["parent"] is None
    assert supporting["depends_on"] == [world.visible.pk]
    assert supporting["manager"] == world.user("coordinator").pk  # named on a task S sees
    assert supporting["assignee"] == world.user("contributor_supporting").pk
    ministry = payloads[world.m.pk]  # the coordinating ministry sees it all
    assert ministry["parent"] == world.hidden.pk
    assert sorted(ministry["depends_on"]) == sorted([world.hidden.pk, world.visible.pk])


def test_reminder_webhook_payload_is_filtered_per_organization(world, monkeypatch):
    monkeypatch.setattr(deliver_webhook_task, "apply_async", lambda *args, **kwargs: None)
    monkeypatch.setattr(deliver_webhooks_task, "apply_async", lambda *args, **kwargs: None)
    notification_services.webhook_subscription_create(
        actor=system_user(), organization=world.supporting,
        url="http://127.0.0.1:9/hook", events=["task.due_soon"],
    )  # fmt: skip
    import datetime as dt

    now = dt.datetime(2030, 6, 20, tzinfo=dt.UTC)
    created = [(1, world.task.pk, "due_soon", world.task.due_date, 14)]
    (delivery,) = notification_services.reminder_webhooks_record(created, now=now)
    task = delivery.payload["data"]["task"]
    assert (task["parent"], task["depends_on"]) == (None, [world.visible.pk])


def _grow(world, n):
    for _ in range(n):
        TaskFactory(
            plan=world.plan_a, lead_organization=world.lead, parent=world.hidden,
            depends_on=[world.hidden, world.visible], assignee=world.user("contributor_lead"),
            manager=world.user("manager"), supporting_organizations=[world.supporting],
        )  # fmt: skip


def _count(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(queries), len(response.json()["results"])


@pytest.mark.parametrize("role", ["contributor_lead", "coordinator", "superuser"])
@pytest.mark.parametrize("url", ["/api/v1/tasks/", "/api/v1/status-updates/"])
def test_query_count_does_not_grow_with_rows(world, role, url):
    client = _client(world, role)
    _grow(world, 3)
    small, rows_small = _count(client, url)
    _grow(world, 30)
    large, rows_large = _count(client, url)
    assert rows_large > rows_small
    assert small == large
    if url == "/api/v1/tasks/":
        assert large <= 4  # session, user, the page, its related ids (one query)
