"""Data of the fault tests, made in a separate process against their private PostgreSQL and
Redis (the test process's own database is the shared test database).

    DATABASE_URL=... python -m tests.integration.fault_world build TASKS
        TASKS tasks due in ten days, each with two recipients (a Seoul contributor, a New
        York manager); run once, in the template database.
    DATABASE_URL=... REDIS_URL=... python -m tests.integration.fault_world sweep [WEBHOOK_URL]
        optionally a webhook subscription to `task.due_soon` at WEBHOOK_URL, then the reminder
        sweep at the real current time: 2 x TASKS notifications, whose messages go to Redis
        after commit (and one webhook delivery per task). Prints JSON: how many were created,
        the Message-IDs expected at the SMTP server, the number of webhook deliveries."""

import datetime as dt
import json
import os
import sys


def build(tasks: int) -> dict:
    from django.utils import timezone

    from tests.factories import TaskFactory
    from tests.notifications import reminders_world as w

    now = timezone.now()
    # Ten days ahead: the reminder due now is the 14-day one in every zone at any hour, so the
    # sweeps beat runs meanwhile create nothing more.
    due = now.date() + dt.timedelta(days=10)
    created = now - dt.timedelta(days=30)
    world = w.build(due=due, created=created)
    for _ in range(tasks - 1):
        TaskFactory(
            plan=world.plan,
            lead_organization=world.lead,
            due_date=due,
            assignee=world.seoul,
            manager=world.new_york,
            at=created,
        )
    return {"tasks": tasks}


def sweep(url: str = "") -> dict:
    from notifications import emails, services
    from notifications.models import Notification, WebhookDelivery, WebhookSubscription
    from tracker.models import Organization

    if url:
        # Straight into the table: the receiver is local on purpose.
        subscription = WebhookSubscription(
            organization=Organization.objects.order_by("pk").first(),
            url=url,
            events=["task.due_soon"],
        )
        subscription.set_secret("whsec_" + "x" * 32)
        subscription.save()
    result = services.reminders_sweep()
    keys = Notification.objects.values_list("dedupe_key", flat=True)
    return {
        "created": result.created,
        "message_ids": sorted(emails.message_id(key) for key in keys),
        "webhook_deliveries": WebhookDelivery.objects.count(),
    }


def main(argv: list[str]) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tracker.settings")
    django.setup()
    if argv[0] == "build":
        return build(int(argv[1]))
    return sweep(*argv[1:])


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
