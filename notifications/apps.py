from django.apps import AppConfig
from django.db.models import Q


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from plans import permissions as policy
        from plans.signals import task_changed

        from .models import WebhookDelivery, WebhookSubscription
        from .receivers import task_changed_webhooks

        # Subscriptions belong to an organization: its members see them, its coordinators
        # and managers write them (plans.permissions.organization_resource_q).
        policy.register(
            WebhookSubscription,
            lambda user, action: policy.organization_resource_q(user, action),
            policy.may_manage_organization_resources,
        )

        # The delivery log: seen by the subscription's organization, written by nobody (the
        # delivery services write it as the system).
        def delivery_scope(user, action):
            if action == policy.VIEW:
                return policy.organization_resource_q(
                    user, action, field="subscription__organization"
                )
            return Q(pk__in=[])

        policy.register(
            WebhookDelivery, delivery_scope, lambda user: False,
            nobody=(policy.CHANGE, policy.DELETE),
        )  # fmt: skip

        task_changed.connect(task_changed_webhooks, dispatch_uid="notifications.webhooks")
