"""Losing the last membership: no staff status, no session, no token, no calendar feed, and no
sight of the tasks that still name the person; moving organizations ends sight of the old
organization's tasks.

The membership is removed the way production removes it: through the admin's delete page,
which calls `plans.services.membership_delete`.
"""

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from notifications import calendar
from notifications.models import CalendarFeed
from plans import permissions as policy
from plans import services
from plans.models import Task
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.permission_matrix import build_world
from tracker.models import ApiToken, Membership
from tracker.services import api_token_create, system_user

pytestmark = pytest.mark.django_db
Role = Membership.Role


@pytest.fixture
def world():
    return build_world()


@pytest.fixture
def leaver(world):
    """contributor_lead, assigned to T, signed in to the admin, with a token and a feed."""
    user = world.user("contributor_lead")
    services.task_assign(actor=system_user(), task=world.task, assignee=user)
    session = APIClient()
    assert session.login(username=user.username, password=DEFAULT_PASSWORD)
    _token, bearer = api_token_create(actor=user, user=user, name="erp", scope="read_write")
    _feed, feed_url = calendar.calendar_feed_rotate(actor=user, user=user)
    feed_path = "/" + feed_url.split("://", 1)[-1].split("/", 1)[1]
    return type("Leaver", (), {"user": user, "session": session, "bearer": bearer,
                               "feed_path": feed_path})  # fmt: skip


def _admin_delete_membership(world, membership):
    """The plan's coordinator deletes the membership on the admin's delete page."""
    admin = Client()
    admin.force_login(world.user("coordinator"))
    url = reverse("admin:tracker_membership_delete", args=[membership.pk])
    response = admin.post(url, {"post": "yes"})
    assert response.status_code == 302, response.content
    assert not Membership.objects.filter(pk=membership.pk).exists()


def _task_ids(client, **headers):
    response = client.get("/api/v1/tasks/", **headers)
    return response.status_code, [row["id"] for row in response.json().get("results", [])]


def test_before_removal_the_leaver_reaches_the_task_everywhere(world, leaver):
    """The control: each channel works while the membership exists."""
    assert leaver.session.get("/api/v1/users/me/").status_code == 200
    assert _task_ids(leaver.session) == (200, [world.task.pk])
    token_client = APIClient()
    token_client.credentials(HTTP_AUTHORIZATION=f"Bearer {leaver.bearer}")
    assert token_client.get(f"/api/v1/tasks/{world.task.pk}/").status_code == 200
    feed = APIClient().get(leaver.feed_path)
    assert feed.status_code == 200 and world.task.ref.encode() in feed.content
    assert leaver.session.get(reverse("admin:plans_task_changelist")).status_code == 200


def test_removing_the_last_membership_takes_every_access_away(world, leaver):
    _admin_delete_membership(world, world.membership)
    user = leaver.user
    user.refresh_from_db()

    assert user.is_staff is False
    # The session is over: the next request is anonymous.
    assert leaver.session.get("/api/v1/users/me/").status_code in (401, 403)
    admin_page = leaver.session.get(reverse("admin:plans_task_changelist"))
    assert admin_page.status_code == 302 and "/login/" in admin_page["Location"]
    # Every token is revoked.
    assert not ApiToken.objects.filter(user=user, revoked_at__isnull=True).exists()
    token_client = APIClient()
    token_client.credentials(HTTP_AUTHORIZATION=f"Bearer {leaver.bearer}")
    assert token_client.get(f"/api/v1/tasks/{world.task.pk}/").status_code == 401
    # The calendar feed is gone.
    assert not CalendarFeed.objects.filter(user=user).exists()
    assert APIClient().get(leaver.feed_path).status_code == 404
    # Still the task's assignee, yet no sight of it: not through a new login either.
    assert Task.objects.get(pk=world.task.pk).assignee_id == user.pk
    assert not policy.can(user, policy.VIEW, world.task)
    fresh = APIClient()
    assert fresh.login(username=user.username, password=DEFAULT_PASSWORD)
    assert _task_ids(fresh) == (200, [])
    assert fresh.get(f"/api/v1/tasks/{world.task.pk}/").status_code == 404
    assert fresh.get(f"/api/v1/tasks/{world.task.pk}/updates/").status_code == 404
    assert fresh.get(reverse("admin:plans_task_changelist")).status_code == 302


def test_a_manager_with_no_membership_left_sees_the_task_no_more(world):
    manager = world.user("manager")
    services.task_assign(actor=system_user(), task=world.task, assignee=None, manager=manager)
    assert policy.can(manager, policy.VIEW, world.task)
    services.membership_delete(actor=system_user(), membership=manager.memberships.get())
    manager.refresh_from_db()
    assert not manager.is_staff
    assert not policy.can(manager, policy.VIEW, world.task)
    assert not policy.can(manager, policy.VIEW, world.plan_a)


def test_moving_to_another_organization_ends_sight_of_the_old_ones_tasks(world, leaver):
    """Samsung -> Doosan: the person keeps working (session, token, staff), but the old
    organization's task, which still names them, is out of sight."""
    user = leaver.user
    superuser = world.user("superuser")
    services.membership_create(
        actor=superuser, user=user, organization=world.other, role=Role.CONTRIBUTOR
    )
    services.membership_delete(actor=superuser, membership=world.membership)
    user.refresh_from_db()

    assert user.is_staff
    assert ApiToken.objects.filter(user=user, revoked_at__isnull=True).exists()
    assert leaver.session.get("/api/v1/users/me/").status_code == 200
    assert not policy.can(user, policy.VIEW, world.task)
    assert _task_ids(leaver.session) == (200, [])


def test_a_superuser_without_membership_keeps_staff_and_sessions(world):
    root = world.user("superuser")
    org_membership = services.membership_create(
        actor=root, user=root, organization=world.other, role=Role.VIEWER
    )
    client = APIClient()
    client.force_login(root)
    services.membership_delete(actor=root, membership=org_membership)
    root.refresh_from_db()
    assert root.is_staff
    assert client.get("/api/v1/users/me/").status_code == 200


def test_rejoining_gives_back_staff_status_but_not_the_old_session(world, leaver):
    user = leaver.user
    services.membership_delete(actor=system_user(), membership=world.membership)
    services.membership_create(
        actor=system_user(), user=user, organization=world.lead, role=Role.CONTRIBUTOR
    )
    user.refresh_from_db()
    assert user.is_staff
    assert leaver.session.get("/api/v1/users/me/").status_code in (401, 403)
    again = APIClient()
    assert again.login(username=user.username, password=DEFAULT_PASSWORD)
    assert again.get("/api/v1/users/me/").status_code == 200


def test_an_unrelated_user_keeps_their_session(world, leaver):
    """The epoch is per user: someone else's removal signs nobody else out."""
    other = UserFactory()
    services.membership_create(
        actor=system_user(), user=other, organization=world.lead, role=Role.VIEWER
    )
    client = APIClient()
    assert client.login(username=other.username, password=DEFAULT_PASSWORD)
    services.membership_delete(actor=system_user(), membership=world.membership)
    assert client.get("/api/v1/users/me/").status_code == 200
