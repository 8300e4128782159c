from django.apps import AppConfig


class TrackerConfig(AppConfig):
    name = "tracker"
    verbose_name = "Identity and access"

    def ready(self):
        from tracker import login_limits  # noqa: F401  (connects the lockout log)
