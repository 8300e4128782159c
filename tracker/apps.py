from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TrackerConfig(AppConfig):
    name = "tracker"
    verbose_name = _("Identity and access")

    def ready(self):
        from tracker import login_limits  # noqa: F401  (connects the lockout log)
