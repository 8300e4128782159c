from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class PlansConfig(AppConfig):
    name = "plans"
    verbose_name = _("Plans")

    def ready(self):
        from .intake.policy import register as register_intake
        from .role_groups import ensure_role_groups

        register_intake()
        # A bearer token's query also reads its user's organization and plan ids, so the
        # task list's scope costs no query of its own (permissions.viewer).
        from tracker.services import TOKEN_USER_EXTRAS

        from .permissions import VIEWER_ROWS, viewer_rows_sql

        TOKEN_USER_EXTRAS[VIEWER_ROWS] = viewer_rows_sql

        post_migrate.connect(ensure_role_groups, sender=self, dispatch_uid="plans.role_groups")
