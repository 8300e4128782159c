"""Run one reminder sweep and one digest sweep and send the emails in the foreground
(cron-only deployments, demos). Safe to run as often as you like: each reminder and each
digest is created and emailed once."""

from django.core.management.base import BaseCommand
from django.utils import timezone

from notifications import services


class Command(BaseCommand):
    help = (
        "Create the reminders and daily digests due now and email them (and any still unsent) "
        "over one connection. --now: treat every reminder of today (in each recipient's time "
        "zone) as due, even before 09:00, and today's digests as due even before 08:00."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--now",
            action="store_true",
            help="Send today's reminders and digests now instead of at 09:00 and 08:00 in "
            "each recipient's zone.",
        )

    def handle(self, *args, now: bool = False, **options):
        moment = timezone.now()
        result = services.reminders_sweep(now=moment, whole_day=now, enqueue=False)
        deliveries = services.notifications_deliver_pending(now=timezone.now())
        sent = sum(1 for d in deliveries if d.sent)
        retrying = sum(1 for d in deliveries if d.retry_in is not None)
        not_sent = len(deliveries) - sent - retrying
        self.stdout.write(
            f"Created {result.created} notification(s); sent {sent} email(s)"
            + (f"; {retrying} to retry" if retrying else "")
            + (f"; {not_sent} not emailed (see the admin)" if not_sent else "")
            + "."
        )

        digests = services.digests_sweep(now=moment, whole_day=now, enqueue=False)
        results = services.digests_deliver_pending(now=timezone.now())
        counts = {status: 0 for status in services.DigestStatus.values}
        retrying = 0
        for digest in results:
            if digest.retry_in is not None:
                retrying += 1
            else:
                counts[digest.status] += 1
        self.stdout.write(
            f"Created {digests.created} digest(s); sent {counts['sent']} digest email(s)"
            + (f"; {counts['empty']} with nothing to report" if counts["empty"] else "")
            + (f"; {retrying} to retry" if retrying else "")
            + (f"; {counts['not_sent']} not sent (see the admin)" if counts["not_sent"] else "")
            + "."
        )
