"""The auth group of each membership role, with the Django model permissions matching the
role's reach (the policy in plans/permissions.py decides access; these keep Django's own tools
in agreement with it).

Migration 0003 made them once; `ensure_role_groups` runs after every `migrate` and every
`flush` (post_migrate) and recreates a group that is missing, e.g. after a test database was
flushed or an administrator deleted one. An existing group is left as it is."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions

VIEW_ALL = [
    ("plans", "view_forum"), ("plans", "view_outcome"), ("plans", "view_plan"),
    ("plans", "view_planparticipant"), ("plans", "view_workstream"), ("plans", "view_task"),
    ("plans", "view_statusupdate"), ("tracker", "view_organization"),
    ("tracker", "view_membership"),
]  # fmt: skip
WRITE_PLAN = [
    (app, f"{verb}_{model}")
    for app, model in [("plans", "forum"), ("plans", "outcome"), ("plans", "plan"),
                       ("plans", "planparticipant"), ("plans", "workstream"), ("plans", "task"),
                       ("tracker", "organization"), ("tracker", "membership")]
    for verb in ("add", "change")
]  # fmt: skip
GROUPS = {
    "Coordinators": VIEW_ALL + WRITE_PLAN + [("plans", "add_statusupdate"),
                                             ("tracker", "delete_membership")],
    "Managers": VIEW_ALL + [("plans", "change_task"), ("plans", "add_statusupdate")],
    "Contributors": VIEW_ALL + [("plans", "change_task"), ("plans", "add_statusupdate")],
    "Viewers": VIEW_ALL,
}  # fmt: skip


def ensure_role_groups(sender=None, *, apps=global_apps, using="default", **kwargs) -> None:
    """post_migrate receiver: create each missing role group with its permissions."""
    try:
        Group = apps.get_model("auth", "Group")
        Permission = apps.get_model("auth", "Permission")
    except LookupError:
        return
    missing = set(GROUPS) - set(
        Group.objects.using(using).filter(name__in=GROUPS).values_list("name", flat=True)
    )
    if not missing:
        return
    for label in ("plans", "tracker"):  # their permissions may not be made yet in this round
        create_permissions(global_apps.get_app_config(label), verbosity=0, using=using)
    for name in sorted(missing):
        group = Group.objects.using(using).create(name=name)
        group.permissions.set(
            Permission.objects.using(using).get(content_type__app_label=app, codename=codename)
            for app, codename in GROUPS[name]
        )
