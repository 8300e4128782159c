"""Writes of the tracker app."""

from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .models import Membership, User, WorkerHeartbeat


def heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    """Stamp the heartbeat row of `hostname`; safe for concurrent workers."""
    with transaction.atomic():
        now = timezone.now()
        beat, created = WorkerHeartbeat.objects.select_for_update().get_or_create(
            hostname=hostname, defaults={"last_seen_at": now, "beats": 1}
        )
        if not created:
            WorkerHeartbeat.objects.filter(pk=beat.pk).update(
                last_seen_at=now, beats=F("beats") + 1
            )
            beat.refresh_from_db()
    return beat


SYSTEM_USERNAME = "system"


def system_user() -> User:
    """The account automated work acts as (Celery tasks, management commands).

    It cannot sign in (inactive, unusable password) and the policy lets it do everything; the
    history records its changes under its name.
    """
    user = User.objects.filter(is_system=True).first()
    if user is None:
        user, _ = User.objects.get_or_create(
            username=SYSTEM_USERNAME,
            defaults={"is_system": True, "is_active": False, "first_name": "System"},
        )
        if not user.is_system:
            raise RuntimeError(f"the username {SYSTEM_USERNAME!r} is taken by a person")
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


# One group per membership role; a user's groups follow their memberships.
ROLE_GROUPS = {
    Membership.Role.COORDINATOR: "Coordinators",
    Membership.Role.MANAGER: "Managers",
    Membership.Role.CONTRIBUTOR: "Contributors",
    Membership.Role.VIEWER: "Viewers",
}


def membership_sync_access(*, user: User) -> None:
    """Give a user the role groups of their memberships and admin access when they have any.

    The permission policy decides what they see and do; the groups name their roles (for
    Django's tools and reports), so no per-user checkbox is ever needed.
    """
    roles = set(Membership.objects.filter(user=user).values_list("role", flat=True))
    wanted = Group.objects.filter(name__in=[ROLE_GROUPS[role] for role in roles])
    role_groups = Group.objects.filter(name__in=ROLE_GROUPS.values())
    user.groups.remove(*role_groups.exclude(pk__in=wanted))
    user.groups.add(*wanted)
    if roles and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
