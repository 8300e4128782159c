from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")

    def ready(self):
        from plans import permissions as policy
        from plans.signals import task_changed
        from tracker.signals import access_revoked

        from .receivers import access_revoked_calendar_feed, task_changed_webhooks

        # The rules of this app's models live with all the others, in the one policy.
        policy.register_notifications()

        task_changed.connect(task_changed_webhooks, dispatch_uid="notifications.webhooks")
        access_revoked.connect(
            access_revoked_calendar_feed, dispatch_uid="notifications.calendar_feed_revoked"
        )
