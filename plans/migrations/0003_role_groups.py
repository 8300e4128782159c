"""One auth group per membership role. The permission policy (plans/permissions.py) decides
access; these groups carry the Django model permissions matching each role's reach so that
Django's own tools agree with it."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW_ALL = [
    ("plans", "view_forum"), ("plans", "view_outcome"), ("plans", "view_plan"),
    ("plans", "view_planparticipant"), ("plans", "view_workstream"), ("plans", "view_task"),
    ("plans", "view_statusupdate"), ("tracker", "view_organization"),
    ("tracker", "view_membership"),
]
WRITE_PLAN = [
    (app, f"{verb}_{model}")
    for app, model in [("plans", "forum"), ("plans", "outcome"), ("plans", "plan"),
                       ("plans", "planparticipant"), ("plans", "workstream"), ("plans", "task"),
                       ("tracker", "organization"), ("tracker", "membership")]
    for verb in ("add", "change")
]
GROUPS = {
    "Coordinators": VIEW_ALL + WRITE_PLAN + [("plans", "add_statusupdate"),
                                             ("tracker", "delete_membership")],
    "Managers": VIEW_ALL + [("plans", "change_task"), ("plans", "add_statusupdate")],
    "Contributors": VIEW_ALL + [("plans", "change_task"), ("plans", "add_statusupdate")],
    "Viewers": VIEW_ALL,
}


def create_groups(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codes in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        perms = [
            Permission.objects.get(content_type__app_label=app, codename=codename)
            for app, codename in codes
        ]
        group.permissions.set(perms)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("plans", "0002_initial"),
        ("tracker", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_groups, remove_groups)]
