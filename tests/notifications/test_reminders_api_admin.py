"""In-app notifications (API and admin) and the reminder policy's admin: each person sees
their own notifications; a plan's policy is edited by its coordinators only."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse
from rest_framework.test import APIClient

from notifications import services
from notifications.models import Notification, ReminderPolicy
from tests.factories import MembershipFactory, OrganizationFactory, PlanFactory
from tests.notifications import reminders_world as w
from tests.notifications.reminders_world import DUE, NEW_YORK, local
from tracker.models import Membership

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    world = w.build()
    for day in (DUE - dt.timedelta(days=7), DUE - dt.timedelta(days=1), DUE):
        with time_machine.travel(local(day, NEW_YORK), tick=False):
            services.reminders_sweep(enqueue=False)
    return world


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_list_own_newest_first_and_unread_filter(world):
    response = api(world.seoul).get("/api/v1/notifications/")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["step"] for r in results] == [0, 1, 7]
    assert {r["task"] for r in results} == {world.task.pk}
    assert all(r["is_read"] is False and r["email_status"] == "pending" for r in results)
    mine = set(Notification.objects.filter(recipient=world.seoul).values_list("pk", flat=True))
    assert {r["id"] for r in results} == mine

    first = results[0]["id"]
    read = api(world.seoul).post(f"/api/v1/notifications/{first}/read/")
    assert read.status_code == 200 and read.json()["is_read"] is True
    unread = api(world.seoul).get("/api/v1/notifications/?unread=true").json()["results"]
    assert [r["step"] for r in unread] == [1, 7]


def test_someone_elses_notification_is_404(world):
    theirs = Notification.objects.filter(recipient=world.new_york).first()
    response = api(world.seoul).post(f"/api/v1/notifications/{theirs.pk}/read/")
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None
    # The same request by its recipient works (it failed for the right reason).
    assert api(world.new_york).post(f"/api/v1/notifications/{theirs.pk}/read/").status_code == 200


def test_read_all(world):
    response = api(world.seoul).post("/api/v1/notifications/read-all/")
    assert response.status_code == 200 and response.json() == {"marked": 3}
    assert not Notification.objects.filter(recipient=world.seoul, read_at__isnull=True).exists()
    assert Notification.objects.filter(recipient=world.new_york, read_at__isnull=True).exists()
    assert api(world.seoul).post("/api/v1/notifications/read-all/").json() == {"marked": 0}


def test_anonymous_is_refused():
    assert APIClient().get("/api/v1/notifications/").status_code in (401, 403)


def _staff(user):
    user.is_staff = True
    user.save()
    return user


def test_admin_lists_own_notifications_and_marks_read(client, world):
    client.force_login(_staff(world.seoul))
    url = reverse("admin:notifications_notification_changelist")
    response = client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count == 3
    ids = list(Notification.objects.filter(recipient=world.seoul).values_list("pk", flat=True))
    client.post(url, {"action": "mark_read", "_selected_action": ids[:2]})
    assert Notification.objects.filter(recipient=world.seoul, read_at__isnull=True).count() == 1
    theirs = Notification.objects.filter(recipient=world.new_york).first()
    change = reverse("admin:notifications_notification_change", args=[theirs.pk])
    assert client.get(change).status_code == 404


def test_admin_shows_email_failures(admin_client, world):
    failed = Notification.objects.first()
    failed.email_failed_at = failed.created_at
    failed.failure_reason = "Refused by the mail server: 550 No such user"
    failed.save()
    response = admin_client.get(
        reverse("admin:notifications_notification_changelist") + "?email=failed"
    )
    assert "550 No such user" in response.content.decode()


POLICY_FORM = {
    "before_days": "10, 3, 0, 3",
    "overdue_every_days": "5",
    "escalate_manager_after_days": "2",
    "escalate_coordinators_after_days": "",
    "verification_reminder_after_days": "7",
    "due_to_assignee": "on",
    "overdue_to_assignee": "on",
    "overdue_to_manager": "on",
}


def test_coordinators_edit_their_plans_policy(client, world):
    client.force_login(_staff(world.coordinator))
    response = client.post(
        reverse("admin:notifications_reminderpolicy_add"), {"plan": world.plan.pk, **POLICY_FORM}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    policy = ReminderPolicy.objects.get(plan=world.plan)
    assert policy.before_days == [10, 3, 0]
    assert policy.escalate_coordinators_after_days is None
    assert policy.due_to_lead_organization is False


def test_policy_days_are_validated(client, world):
    client.force_login(_staff(world.coordinator))
    response = client.post(
        reverse("admin:notifications_reminderpolicy_add"),
        {"plan": world.plan.pk, **POLICY_FORM, "before_days": "7, -1"},
    )
    assert response.status_code == 200
    assert "cannot be negative" in response.content.decode()
    assert not ReminderPolicy.objects.exists()


def test_others_cannot_edit_the_policy(client, world):
    policy = services.reminder_policy_for(actor=world.coordinator, plan=world.plan)
    change = reverse("admin:notifications_reminderpolicy_change", args=[policy.pk])
    # A manager of the lead organization sees the plan, so the policy, but cannot change it.
    client.force_login(_staff(world.new_york))
    assert client.get(change).status_code == 200
    response = client.post(change, POLICY_FORM)
    assert response.status_code == 403
    # A coordinator of another plan does not even see it.
    other = OrganizationFactory()
    PlanFactory(coordinating=[other])
    stranger = MembershipFactory(organization=other, role=Membership.Role.COORDINATOR).user
    client.force_login(_staff(stranger))
    assert client.get(change).status_code == 404
    add = client.post(
        reverse("admin:notifications_reminderpolicy_add"), {"plan": world.plan.pk, **POLICY_FORM}
    )
    assert add.status_code == 200  # the plan is not among the choices: a form error
    assert ReminderPolicy.objects.get(pk=policy.pk).before_days == [14, 7, 1, 0]
    # Its coordinator can (the same change, allowed).
    client.force_login(_staff(world.coordinator))
    assert client.post(change, POLICY_FORM).status_code == 302
    assert ReminderPolicy.objects.get(pk=policy.pk).before_days == [10, 3, 0]


def test_policy_is_created_lazily_with_the_defaults(world, settings):
    settings.REMINDER_BEFORE_DAYS = [5, 0]
    policy = services.reminder_policy_for(actor=world.coordinator, plan=world.plan)
    assert policy.before_days == [5, 0] and policy.overdue_every_days == 7
    assert services.reminder_policy_for(actor=world.new_york, plan=world.plan) == policy
