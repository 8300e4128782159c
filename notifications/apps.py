from django.apps import AppConfig
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")

    def ready(self):
        from plans import permissions as policy
        from plans.signals import task_changed
        from tracker.signals import access_revoked

        from .models import (
            CalendarFeed,
            Digest,
            MyNotificationPreference,
            Notification,
            NotificationPreference,
            ReminderPolicy,
            WebhookDelivery,
            WebhookSubscription,
        )
        from .receivers import access_revoked_calendar_feed, task_changed_webhooks

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
            listed=policy.may_manage_organization_resources,
        )  # fmt: skip

        # A plan's reminder policy: seen with the plan, written by its coordinators.
        def reminder_policy_scope(user, action):
            plan_action = policy.VIEW if action == policy.VIEW else policy.CHANGE
            return Q(plan__in=policy.for_user(user, plan_action, policy.Plan))

        policy.register(
            ReminderPolicy,
            reminder_policy_scope,
            lambda user: policy.can(user, policy.CHANGE, policy.Plan),
            nobody=(policy.DELETE,),
        )

        def own(field: str, *actions):
            """Rows belonging to the user through `field`, for `actions` only."""

            def scope(user, action):
                return Q(**{field: user}) if action in actions else Q(pk__in=[])

            return scope

        VIEW, CHANGE, DELETE, ADD = policy.VIEW, policy.CHANGE, policy.DELETE, policy.ADD
        # Notifications: each person sees and marks read their own; the sweep writes them.
        # Every person has a list of their own: notifications, calendar feed, preferences and
        # digests show in the menu before the first row exists (`listed`).
        policy.register(
            Notification, own("recipient", VIEW, CHANGE), lambda user: False,
            nobody=(ADD, DELETE), listed=policy.is_signed_in,
        )  # fmt: skip
        # Calendar feeds: each person sees, rotates and deletes their own (superusers: all).
        policy.register(
            CalendarFeed, own("user", VIEW, CHANGE, DELETE), lambda user: True,
            listed=policy.is_signed_in,
        )  # fmt: skip
        # Notification preferences: each person sees and changes their own (superusers:
        # everyone's). A row is created on the first change, by its owner.
        for model in (NotificationPreference, MyNotificationPreference):
            policy.register(
                model, own("user", VIEW, CHANGE), policy.is_signed_in, nobody=(DELETE,),
                listed=policy.is_signed_in,
            )  # fmt: skip
        # Daily digests: each person sees their own; only the digest services write them.
        policy.register(
            Digest, own("user", VIEW), lambda user: False, nobody=(ADD, CHANGE, DELETE),
            listed=policy.is_signed_in,
        )  # fmt: skip

        task_changed.connect(task_changed_webhooks, dispatch_uid="notifications.webhooks")
        access_revoked.connect(
            access_revoked_calendar_feed, dispatch_uid="notifications.calendar_feed_revoked"
        )
