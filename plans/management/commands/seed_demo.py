"""`manage.py seed_demo`: load the demo data and accounts (idempotent, one transaction)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from fixtures import demo
from fixtures.loader import load_demo
from plans.models import Forum, Outcome, Plan, PlanParticipant, StatusUpdate, Task, Workstream
from tracker.models import Membership, Organization, User

REFUSED_WITHOUT_DEBUG = (
    "DEBUG is off: refusing to create the demo accounts, whose password is well known. "
    "Run `seed_demo --force` to create them anyway, or `seed_demo --no-accounts` to load "
    "only the data."
)

COUNTED = (
    ("organizations", Organization),
    ("accounts", User),
    ("memberships", Membership),
    ("forums", Forum),
    ("outcomes", Outcome),
    ("plans", Plan),
    ("plan participants", PlanParticipant),
    ("workstreams", Workstream),
    ("tasks", Task),
    ("status updates", StatusUpdate),
)


class Command(BaseCommand):
    help = (
        "Load the demo data drawn from the public forum records (organizations, forums, "
        "outcomes, Joint Plan 1.0 and 2.0 with task histories) and the demo accounts. "
        "Running it again creates nothing new, leaves existing tasks alone and resets the "
        "demo passwords to DEMO_PASSWORD."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="Create the demo accounts even when DEBUG is off.",
        )
        parser.add_argument(
            "--no-accounts",
            action="store_true",
            help="Load only the data; create no accounts (history is then authored by the system).",
        )

    def handle(self, *args, force: bool = False, no_accounts: bool = False, **options):
        accounts = not no_accounts
        if accounts and not settings.DEBUG and not force:
            raise CommandError(REFUSED_WITHOUT_DEBUG)
        password = getattr(settings, "DEMO_PASSWORD", "") or "demo"
        before = {label: model.objects.count() for label, model in COUNTED}
        loaded_accounts = load_demo(accounts=accounts, password=password)

        if options["verbosity"] >= 1:
            parts = []
            for label, model in COUNTED:
                total = model.objects.count()
                parts.append(f"{total} {label} ({total - before[label]} new)")
            self.stdout.write("Demo data loaded: " + ", ".join(parts) + ".")
        if accounts:
            self._print_logins(loaded_accounts, password)
        else:
            self.stdout.write("No accounts created (--no-accounts).")

    def _print_logins(self, accounts: list[demo.Account], password: str) -> None:
        rows = [("username", "role", "organization", "password")]
        for account in accounts:
            org = demo.ORGANIZATIONS.get(account.organization)
            rows.append(
                (account.username, account.role, org.acronym or org.name if org else "-", password)
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        rows.insert(1, tuple("-" * width for width in widths))
        self.stdout.write("")
        self.stdout.write(f"Demo logins ({settings.SITE_URL}/admin/):")
        for row in rows:
            line = "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True))
            self.stdout.write(f"  {line}".rstrip())
