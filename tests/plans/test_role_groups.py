"""The role groups survive a flush (what a transactional test does after itself, and what
`manage.py flush` does): post_migrate recreates each missing group with its permissions."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from plans.role_groups import GROUPS

pytestmark = pytest.mark.django_db(transaction=True)


def _groups() -> dict[str, set[tuple[str, str]]]:
    return {
        group.name: {(p.content_type.app_label, p.codename) for p in group.permissions.all()}
        for group in Group.objects.prefetch_related("permissions__content_type")
    }


def test_a_flush_recreates_the_role_groups_with_their_permissions():
    before = _groups()
    assert set(before) >= set(GROUPS)
    call_command("flush", interactive=False, verbosity=0)
    after = _groups()
    for name, codes in GROUPS.items():
        assert after[name] == set(codes) == before[name], name


def test_a_deleted_group_comes_back_and_an_existing_one_is_left_alone():
    Group.objects.filter(name="Viewers").delete()
    managers = Group.objects.get(name="Managers")
    managers.permissions.clear()  # an administrator's choice: kept
    call_command("migrate", verbosity=0)
    assert {(p.content_type.app_label, p.codename) for p in Group.objects.get(
        name="Viewers").permissions.all()} == set(GROUPS["Viewers"])  # fmt: skip
    assert not Group.objects.get(name="Managers").permissions.exists()
