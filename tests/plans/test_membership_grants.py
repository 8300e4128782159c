"""What a coordinator may grant: the coordinator role only in organizations they coordinate,
and no member of one organization added to another (superusers only), in the services and
in the admin (a form error naming the field, nothing saved)."""

import pytest
from django.urls import reverse

from plans import permissions as policy
from plans import services
from plans.exceptions import GrantNotAllowed
from tests.factories import UserFactory
from tests.permission_matrix import build_world
from tracker.models import Membership

pytestmark = pytest.mark.django_db
Role = Membership.Role


@pytest.fixture
def world():
    return build_world()


def _refusal(exc, field, template, **names):
    assert exc.value.field == field
    assert exc.value.message == template.format(**names)
    assert exc.value.http_status == 403


def test_coordinator_cannot_make_themselves_coordinator_of_a_participating_firm(world):
    coordinator = world.user("coordinator")
    with pytest.raises(GrantNotAllowed) as exc:
        services.membership_create(
            actor=coordinator, user=coordinator, organization=world.lead, role=Role.COORDINATOR
        )
    _refusal(exc, "role", policy.GRANT_COORDINATOR_ELSEWHERE, organization=world.lead)
    assert not Membership.objects.filter(user=coordinator, organization=world.lead).exists()


def test_coordinator_cannot_raise_a_firms_member_to_coordinator(world):
    with pytest.raises(GrantNotAllowed) as exc:
        services.membership_update(
            actor=world.user("coordinator"), membership=world.membership, role=Role.COORDINATOR
        )
    _refusal(exc, "role", policy.GRANT_COORDINATOR_ELSEWHERE, organization=world.lead)
    world.membership.refresh_from_db()
    assert world.membership.role == Role.CONTRIBUTOR


def test_coordinator_cannot_take_a_firms_coordinator_role_away(world):
    firm_coordinator = services.membership_create(
        actor=world.user("superuser"), user=UserFactory(), organization=world.lead,
        role=Role.COORDINATOR,
    )  # fmt: skip
    coordinator = world.user("coordinator")
    with pytest.raises(GrantNotAllowed):
        services.membership_update(actor=coordinator, membership=firm_coordinator, role=Role.VIEWER)
    with pytest.raises(GrantNotAllowed):
        services.membership_delete(actor=coordinator, membership=firm_coordinator)
    assert Membership.objects.get(pk=firm_coordinator.pk).role == Role.COORDINATOR


def test_coordinator_cannot_add_another_firms_user_to_a_firm(world):
    outsider = world.user("contributor_other")  # a member of O
    with pytest.raises(GrantNotAllowed) as exc:
        services.membership_create(
            actor=world.user("coordinator"), user=outsider, organization=world.lead,
            role=Role.CONTRIBUTOR,
        )  # fmt: skip
    _refusal(exc, "user", policy.GRANT_OTHER_ORGANIZATION, user=outsider.username)
    assert not Membership.objects.filter(user=outsider, organization=world.lead).exists()


def test_coordinator_cannot_move_a_membership_to_a_member_of_another_firm(world):
    with pytest.raises(GrantNotAllowed):
        services.membership_update(
            actor=world.user("coordinator"), membership=world.membership,
            user=world.user("contributor_other"),
        )  # fmt: skip


def test_coordinator_still_grants_working_roles_to_people_of_no_other_firm(world):
    """The control: the refusals above are for the role and the person, not the act."""
    coordinator = world.user("coordinator")
    newcomer = UserFactory()
    membership = services.membership_create(
        actor=coordinator, user=newcomer, organization=world.lead, role=Role.MANAGER
    )
    services.membership_update(actor=coordinator, membership=membership, role=Role.VIEWER)
    services.membership_delete(actor=coordinator, membership=membership)
    # ... and the coordinator role in their own organization.
    services.membership_create(
        actor=coordinator, user=UserFactory(), organization=world.m, role=Role.COORDINATOR
    )


def test_superuser_grants_both(world):
    superuser = world.user("superuser")
    outsider = world.user("contributor_other")
    membership = services.membership_create(
        actor=superuser, user=outsider, organization=world.lead, role=Role.COORDINATOR
    )
    assert membership.role == Role.COORDINATOR
    services.membership_create(
        actor=superuser, user=world.user("coordinator"), organization=world.lead,
        role=Role.COORDINATOR,
    )  # fmt: skip


# --- The admin -----------------------------------------------------------------------------


def _post_add(client, actor, **data):
    client.force_login(actor)
    return client.post(reverse("admin:tracker_membership_add"), data)


def test_admin_shows_the_refusal_on_the_role_field(world, client):
    coordinator = world.user("coordinator")
    response = _post_add(
        client, coordinator, user=coordinator.pk, organization=world.lead.pk,
        role=Role.COORDINATOR,
    )  # fmt: skip
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["role"] == [policy.GRANT_COORDINATOR_ELSEWHERE.format(organization=world.lead)]
    assert not Membership.objects.filter(user=coordinator, organization=world.lead).exists()


def test_admin_shows_the_refusal_on_the_user_field(world, client):
    outsider = world.user("contributor_other")
    response = _post_add(
        client, world.user("coordinator"), user=outsider.pk, organization=world.lead.pk,
        role=Role.CONTRIBUTOR,
    )  # fmt: skip
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["user"] == [policy.GRANT_OTHER_ORGANIZATION.format(user=outsider.username)]
    assert not Membership.objects.filter(user=outsider, organization=world.lead).exists()


def test_admin_change_to_coordinator_is_refused_on_the_field(world, client):
    client.force_login(world.user("coordinator"))
    url = reverse("admin:tracker_membership_change", args=[world.membership.pk])
    response = client.post(
        url,
        {
            "user": world.membership.user_id,
            "organization": world.lead.pk,
            "role": Role.COORDINATOR,
        },
    )
    assert response.status_code == 200
    assert "role" in response.context["adminform"].form.errors
    world.membership.refresh_from_db()
    assert world.membership.role == Role.CONTRIBUTOR


def test_admin_superuser_adds_a_member_of_another_firm(world, client):
    outsider = world.user("contributor_other")
    response = _post_add(
        client, world.user("superuser"), user=outsider.pk, organization=world.lead.pk,
        role=Role.COORDINATOR,
    )  # fmt: skip
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Membership.objects.get(user=outsider, organization=world.lead).role == Role.COORDINATOR


# --- Found in review: moving a member, deleting what may not be deleted ------------------------


def test_coordinator_cannot_move_a_firms_member_to_another_firm(world):
    """A role change keeps the user where they are; a change of organization adds a firm's
    member to another firm, which only superusers may."""
    with pytest.raises(GrantNotAllowed) as exc:
        services.membership_update(
            actor=world.user("coordinator"), membership=world.membership,
            organization=world.other,
        )  # fmt: skip
    assert exc.value.field == "user"
    world.membership.refresh_from_db()
    assert world.membership.organization == world.lead


def _firm_coordinator(world):
    return services.membership_create(
        actor=world.user("superuser"), user=UserFactory(), organization=world.lead,
        role=Role.COORDINATOR,
    )  # fmt: skip


def test_admin_does_not_offer_deleting_a_firms_coordinator(world, client):
    firm_coordinator = _firm_coordinator(world)
    client.force_login(world.user("coordinator"))
    url = reverse("admin:tracker_membership_delete", args=[firm_coordinator.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert Membership.objects.filter(pk=firm_coordinator.pk).exists()


def test_admin_bulk_delete_with_a_refused_membership_deletes_nothing(world, client):
    firm_coordinator = _firm_coordinator(world)
    client.force_login(world.user("coordinator"))
    response = client.post(
        reverse("admin:tracker_membership_changelist"),
        {
            "action": "delete_selected",
            "_selected_action": [world.membership.pk, firm_coordinator.pk],
            "post": "yes",
        },
    )
    assert response.status_code in (200, 302, 403)
    assert Membership.objects.filter(pk__in=[world.membership.pk, firm_coordinator.pk]).count() == 2
    world.membership.user.refresh_from_db()
    assert world.membership.user.is_staff
