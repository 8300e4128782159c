"""`manage.py seed_demo`: idempotent, complete, safe when DEBUG is off, usable logins."""

import datetime as dt
import io
import zoneinfo
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import Q
from django.test import override_settings

from fixtures import demo
from fixtures.loader import SYSTEM_UNASSIGNED, validate
from plans.management.commands.seed_demo import REFUSED_WITHOUT_DEBUG
from plans.models import (
    Forum,
    Outcome,
    Plan,
    PlanParticipant,
    StatusUpdate,
    Task,
    Workstream,
)
from tracker.models import Membership, Organization, User

SEOUL = zoneinfo.ZoneInfo("Asia/Seoul")
# "Today" for the demo data: the day the plan is shown as of.
TODAY = dt.datetime(2026, 11, 21, 12, 0, tzinfo=SEOUL)

MODELS = (
    Organization,
    Membership,
    User,
    Group,
    Forum,
    Outcome,
    Plan,
    PlanParticipant,
    Workstream,
    Task,
    StatusUpdate,
)
THROUGH_MODELS = (
    Forum.hosts.through,
    Forum.participants.through,
    Outcome.parties.through,
    Workstream.lead_organizations.through,
    Task.supporting_organizations.through,
    Task.source_outcomes.through,
    Task.depends_on.through,
    User.groups.through,
    Group.permissions.through,
)


def seed(**options) -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def snapshot() -> dict:
    """Every row the seed writes, by primary key, so a second run that rewrote anything shows."""
    return {
        "counts": {m._meta.label: m.objects.count() for m in (*MODELS, *THROUGH_MODELS)},
        "organizations": list(
            Organization.objects.order_by("pk").values_list("pk", "name", "parent_id", "kind")
        ),
        "memberships": list(
            Membership.objects.order_by("pk").values_list("pk", "user__username", "role")
        ),
        "users": list(User.objects.order_by("pk").values_list("pk", "username", "is_superuser")),
        "outcomes": list(Outcome.objects.order_by("pk").values_list("pk", "title", "status")),
        "tasks": list(
            Task.objects.order_by("pk").values_list(
                "pk",
                "plan__code",
                "ref",
                "status",
                "progress",
                "due_date",
                "version",
                "assignee__username",
                "manager__username",
                "updated_at",
            )
        ),
        "updates": list(
            StatusUpdate.objects.order_by("pk").values_list(
                "pk", "task__ref", "created_at", "kind", "status_to", "author__username"
            )
        ),
    }


@pytest.fixture
def debug(settings):
    settings.DEBUG = True
    return settings


def test_demo_data_is_consistent():
    assert validate() == []


@pytest.mark.django_db
def test_seeding_twice_writes_nothing_new(debug):
    seed()
    first = snapshot()
    seed()
    assert snapshot() == first
    assert first["counts"]["plans.Task"] >= 25
    assert first["counts"]["tracker.User"] == len(demo.ACCOUNTS) + 1  # and the system account


@pytest.fixture(scope="class")
def seeded_once(django_db_setup, django_db_blocker):
    """The demo seeded once for the tests of a class that only read it (a seed takes seconds):
    inside a transaction that is rolled back after the class, around each test's own."""
    with django_db_blocker.unblock(), transaction.atomic(), override_settings(DEBUG=True):
        seed()
        yield
        transaction.set_rollback(True)


@pytest.mark.django_db
@pytest.mark.usefixtures("seeded_once")
class TestTheSeededDemo:
    """Tests that read what one `seed_demo` wrote and change nothing."""

    def test_plan_2_has_the_required_shape(self):
        plan = Plan.objects.get(code="KUS-JP2")
        assert plan.title == "Korea-US Industrial Cooperation Joint Plan 2.0 (2025-2027)"
        assert plan.status == Plan.Status.ACTIVE
        assert plan.time_zone == "Asia/Seoul"
        assert plan.predecessor.code == "KUS-JP1"
        assert plan.predecessor.status == Plan.Status.CLOSED

        roles = dict(plan.participations.values_list("organization__acronym", "role"))
        assert roles["MOTIE"] == roles["DOC"] == PlanParticipant.Role.COORDINATING
        members = set(plan.participants.values_list("name", flat=True))
        assert {"Samsung Electronics", "Doosan Enerbility"} <= members
        assert roles["KEIT"] == PlanParticipant.Role.MEMBER

        minerals = Workstream.objects.get(plan=plan, code="CM")
        assert minerals.parent.code == "EW"

        tasks = plan.tasks.all()
        assert tasks.count() >= 25
        statuses = Counter(tasks.values_list("status", flat=True))
        assert set(statuses) == set(Task.Status.values)
        assert statuses[Task.Status.CANCELLED] == 1
        assert set(tasks.values_list("visibility", flat=True)) == set(Task.Visibility.values)
        due_years = {task.due_date.year for task in tasks}
        assert {2025, 2026, 2027} <= due_years
        assert not tasks.filter(lead_organization__isnull=True).exists()
        assert not tasks.filter(source_outcomes__isnull=True).exists()

    def test_samsung_and_doosan_have_their_tasks(self):
        tasks = Task.objects.filter(plan__code="KUS-JP2")
        assert tasks.filter(lead_organization__name="Samsung Electronics").count() >= 2
        assert tasks.filter(supporting_organizations__name="Samsung Electronics").count() >= 1
        assert tasks.filter(lead_organization__name="Doosan Enerbility").count() >= 2
        samsung = User.objects.get(username="samsung")
        assert tasks.filter(
            assignee=samsung, lead_organization__name="Samsung Electronics"
        ).exists()
        assert tasks.filter(manager__username="manager.kr").count() >= 3
        # Samsung's own progress notes are written by the samsung account.
        assert StatusUpdate.objects.filter(
            author=samsung, task__lead_organization__name="Samsung Electronics"
        ).exists()

    def test_task_organizations_participate_in_their_plan(self):
        for task in Task.objects.select_related("plan").prefetch_related(
            "supporting_organizations"
        ):
            participants = set(task.plan.participations.values_list("organization_id", flat=True))
            orgs = {task.lead_organization_id, *(o.pk for o in task.supporting_organizations.all())}
            assert orgs <= participants, task.ref

    def test_some_open_tasks_are_overdue_and_others_are_not(self):
        plan_tasks = Task.objects.filter(plan__code="KUS-JP2")
        overdue = plan_tasks.overdue(now=TODAY)
        assert overdue.count() >= 4
        assert all(task.is_open and task.due_date < TODAY.date() for task in overdue)
        assert plan_tasks.open().not_overdue(now=TODAY).count() >= 4

    def test_every_task_has_a_chronological_history(self):
        end_of_today = dt.datetime(2026, 11, 22, tzinfo=SEOUL)
        for task in Task.objects.prefetch_related("updates"):
            updates = list(task.updates.order_by("pk"))
            assert updates, task.ref
            assert updates[0].kind == StatusUpdate.Kind.CREATED
            times = [update.created_at for update in updates]
            assert times == sorted(times), task.ref
            assert times[-1] < end_of_today, task.ref
            transitions = [u for u in updates if u.kind == StatusUpdate.Kind.TRANSITION]
            if transitions:
                assert transitions[-1].status_to == task.status, task.ref
            else:
                assert task.status == Task.Status.PLANNED, task.ref

    def test_deadline_changes_carry_a_reason(self):
        changes = StatusUpdate.objects.filter(kind=StatusUpdate.Kind.DEADLINE_CHANGE)
        assert changes.count() >= 2
        for change in changes:
            assert change.note
            assert (
                change.task.due_date == change.due_date_to
                or change.task.updates.filter(
                    kind=StatusUpdate.Kind.DEADLINE_CHANGE, created_at__gt=change.created_at
                ).exists()
            )

    def test_organizations_forums_and_outcomes_follow_the_records(self):
        org = Organization.objects.get
        assert org(acronym="KATS").parent == org(acronym="MOTIE")
        assert org(name="Absolics").parent == org(name="SKC")
        assert org(name="Doosan Robotics").parent == org(name="Doosan Corporation")
        assert org(acronym="METI").country == "JP"
        assert org(acronym="DOC").kind == Organization.Kind.MINISTRY

        business = Forum.objects.get(name="Korea-US Business Forum")
        assert business.held_on == dt.date(2023, 4, 25)
        assert list(business.hosts.values_list("acronym", flat=True)) == ["FKI"]
        conference = Forum.objects.get(name="5th Korea-US Industrial Cooperation Conference")
        assert conference.held_on == dt.date(2025, 4, 15)
        assert Forum.objects.filter(series="SCCD", held_on=dt.date(2024, 6, 27)).count() == 2
        assert not Forum.objects.exclude(source_url="").exists()  # the records carry no URLs

        nuscale = Outcome.objects.get(title__startswith="Doosan Enerbility, NuScale Power")
        assert set(nuscale.parties.values_list("name", flat=True)) == {
            "Doosan Enerbility",
            "NuScale Power",
            "Export-Import Bank of the United States",
        }
        pledge = Outcome.objects.get(kind=Outcome.Kind.INVESTMENT_PLEDGE)
        assert (pledge.amount, pledge.currency) == (Decimal("600000000.00"), "USD")
        assert not Outcome.objects.filter(binding=True).exists()

    def test_accounts_have_roles_zones_languages_and_permissions(self):
        users = {user.username: user for user in User.objects.filter(is_system=False)}
        assert users["admin"].is_superuser and users["admin"].is_staff
        assert all(user.is_staff for user in users.values())
        assert not any(user.is_superuser for name, user in users.items() if name != "admin")

        roles = {
            (m.user.username, m.organization.name, m.role)
            for m in Membership.objects.select_related("user", "organization")
        }
        assert ("coordinator.kr", "Ministry of Trade, Industry and Energy", "coordinator") in roles
        assert ("coordinator.us", "U.S. Department of Commerce", "coordinator") in roles
        assert ("manager.kr", "Ministry of Trade, Industry and Energy", "manager") in roles
        assert ("samsung", "Samsung Electronics", "contributor") in roles
        assert ("doosan", "Doosan Enerbility", "contributor") in roles
        assert any(user == "viewer" and role == "viewer" for user, _, role in roles)

        assert users["coordinator.us"].time_zone == "America/New_York"
        assert users["coordinator.kr"].time_zone == "Asia/Seoul"
        assert {
            users[n].language for n in ("coordinator.kr", "manager.kr", "samsung", "doosan")
        } == {"ko"}
        assert {users[n].language for n in ("admin", "coordinator.us", "viewer")} == {"en"}
        assert all(user.email.endswith("example.org") for user in users.values())

        coordinator, viewer = users["coordinator.kr"], users["viewer"]
        assert coordinator.has_perm("plans.change_task")
        assert coordinator.has_perm("tracker.add_organization")
        assert not coordinator.has_perm("plans.delete_statusupdate")
        assert viewer.has_perm("plans.view_task")
        assert viewer.has_perm("tracker.view_organization")
        assert not viewer.has_perm("plans.change_task")

    def test_no_task_is_given_to_the_system_account(self):
        given = Task.objects.filter(Q(assignee__is_system=True) | Q(manager__is_system=True))
        assert not given.exists(), list(given.values_list("ref", flat=True))
        # Where the demo means "nobody" (SC-01: a manager, no assignee), the field is empty.
        sc01 = Task.objects.get(plan__code="KUS-JP2", ref="SC-01")
        assert sc01.assignee is None
        assert sc01.manager.username == "manager.kr"


@pytest.mark.django_db
def test_refuses_to_create_accounts_when_debug_is_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError) as excinfo:
        seed()
    assert str(excinfo.value) == REFUSED_WITHOUT_DEBUG
    assert "--force" in str(excinfo.value)
    assert not Organization.objects.exists()
    assert not User.objects.exists()


@pytest.mark.django_db
def test_force_creates_accounts_when_debug_is_off(settings, client):
    settings.DEBUG = False
    output = seed(force=True)
    assert User.objects.filter(is_system=False).count() == len(demo.ACCOUNTS)
    assert "coordinator.kr" in output
    assert client.login(username="coordinator.kr", password=settings.DEMO_PASSWORD)


@pytest.mark.django_db
def test_no_accounts_loads_only_the_data(settings):
    settings.DEBUG = False
    output = seed(no_accounts=True)
    assert not User.objects.filter(is_system=False).exists()
    assert Task.objects.count() >= 25
    assert not StatusUpdate.objects.exclude(author__is_system=True).exists()
    assert not Task.objects.filter(assignee__isnull=False).exists()
    assert "No accounts created" in output


@pytest.mark.django_db
def test_every_demo_account_can_log_in(debug, client):
    debug.DEMO_PASSWORD = "a-demo-password"
    output = seed()
    for account in demo.ACCOUNTS:
        assert client.login(username=account.username, password="a-demo-password"), account
        assert account.username in output
        client.logout()
    assert "a-demo-password" in output


@pytest.mark.django_db
def test_seeding_again_resets_passwords_and_profiles(debug, client):
    seed()
    user = User.objects.get(username="samsung")
    user.set_password("changed")
    user.time_zone = "Europe/London"
    user.save()
    seed()
    assert client.login(username="samsung", password=debug.DEMO_PASSWORD)
    assert User.objects.get(username="samsung").time_zone == "Asia/Seoul"


@pytest.mark.django_db
def test_seeding_clears_system_assignments_an_earlier_loader_made(debug):
    seed()
    system = User.objects.get(is_system=True)
    # What the loader before the fix wrote for SC-01 and DS-03.
    Task.objects.filter(ref__in=["SC-01", "DS-03"]).update(assignee=system)
    seed()
    assert not Task.objects.filter(assignee=system).exists()
    corrections = StatusUpdate.objects.filter(note=SYSTEM_UNASSIGNED)
    assert sorted(corrections.values_list("task__ref", "kind")) == [
        ("DS-03", StatusUpdate.Kind.ASSIGNMENT),
        ("SC-01", StatusUpdate.Kind.ASSIGNMENT),
    ]
    repaired = snapshot()
    seed()
    assert snapshot() == repaired


# The README's walkthrough ("Try it: as samsung, move SC-04-M2 from planned ..."), step by step
# through the admin as the README tells a person to.
WALKTHROUGH_TASK = "SC-04-M2"
README = Path(__file__).resolve().parents[2] / "README.md"


def _admin_action(client, action: str, task: Task, **data) -> list[str]:
    response = client.post(
        "/admin/plans/task/",
        {"action": action, "_selected_action": [task.pk], "apply": "1", **data},
        follow=True,
    )
    assert response.status_code == 200
    return [str(message) for message in response.context["messages"]]


@pytest.mark.django_db
def test_the_readme_walkthrough_works_on_the_demo(debug, client):
    text = " ".join(README.read_text().split())
    assert f"as `samsung`, move {WALKTHROUGH_TASK} from planned to in progress" in text
    seed()
    task = Task.objects.get(plan__code="KUS-JP2", ref=WALKTHROUGH_TASK)
    assert task.status == Task.Status.PLANNED
    assert task.lead_organization.name == "Samsung Electronics"
    assert task.assignee.username == "samsung"

    assert client.login(username="samsung", password=debug.DEMO_PASSWORD)
    assert WALKTHROUGH_TASK in client.get("/admin/plans/task/").content.decode()
    started = _admin_action(client, "change_status", task, to_status="in_progress", note="")
    evidence_url = "https://evidence.example.org/kus-jp2/sc-04-m2/curriculum.pdf"
    finished = _admin_action(
        client,
        "change_status",
        task,
        to_status="done",
        note="Curriculum and trainers confirmed with KSIA.",
        evidence_url=evidence_url,
    )
    # The demo's people read the admin in their own language (samsung and coordinator.kr: Korean).
    assert started == finished == ["상태 변경: 과제 1건을 처리했습니다."]
    client.logout()

    assert client.login(username="coordinator.kr", password=debug.DEMO_PASSWORD)
    assert _admin_action(client, "verify", task) == ["완료 검증: 과제 1건을 처리했습니다."]
    other = Task.objects.get(plan__code="KUS-JP2", ref="SC-05")
    moved = _admin_action(
        client, "change_deadline", other, due_date="2027-03-31", reason="One more quarter."
    )
    assert moved == ["마감일 변경: 과제 1건을 처리했습니다."]
    assert client.get(f"/admin/plans/task/{task.pk}/history/").status_code == 200

    task.refresh_from_db()
    assert task.status == Task.Status.VERIFIED
    steps = list(
        task.updates.filter(kind=StatusUpdate.Kind.TRANSITION)
        .order_by("pk")
        .values_list("status_to", "author__username", "evidence_url")
    )
    assert steps == [
        ("in_progress", "samsung", ""),
        ("done", "samsung", evidence_url),
        ("verified", "coordinator.kr", ""),
    ]
    other.refresh_from_db()
    assert other.due_date == dt.date(2027, 3, 31)
