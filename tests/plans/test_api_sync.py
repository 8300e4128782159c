"""Incremental sync (issue 14, item 4): `updated_after` on every list, and the changes feed.

The mirror test keeps a client-side copy of everything a reader sees, synced through the API
alone (`updated_after` on each list, deletions from /api/v1/changes/), through 1,000 random
changes interleaved with syncs, and compares it with a full read at the end, for a plan
coordinator and for a firm's contributor (docs/integration/sync.md describes the loop).
"""

import datetime as dt
import random

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient
from rest_framework.views import APIView

from notifications import services as notification_services
from notifications.models import WebhookSubscription
from notifications.tasks import deliver_webhook_task, deliver_webhooks_task
from plans import services
from plans.exceptions import DomainError
from plans.models import Forum, Outcome, Plan, PlanParticipant, Task, Workstream
from tests.factories import OrganizationFactory, PlanFactory, TaskFactory, UserFactory
from tracker.models import Membership, Organization
from tracker.services import system_user

pytestmark = pytest.mark.django_db

API = "/api/v1/"
LISTS = {
    "task": "tasks/",
    "plan": "plans/",
    "workstream": "workstreams/",
    "plan-participant": "plan-participants/",
    "forum": "forums/",
    "outcome": "outcomes/",
    "organization": "organizations/",
    "webhook": "webhooks/",
    "status-update": "status-updates/",
}
# Roll-ups of the tasks the reader sees: derived per reader, not rows (decision 0013).
DERIVED = {"task_count", "done_count", "overdue_count", "progress"}
ROLLED_UP = {"plan", "workstream", "outcome"}


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    """No webhook is delivered and no throttle counts: this test makes thousands of calls."""
    monkeypatch.setattr(deliver_webhook_task, "apply_async", lambda *args, **kwargs: None)
    monkeypatch.setattr(deliver_webhooks_task, "apply_async", lambda *args, **kwargs: None)
    monkeypatch.setattr(APIView, "get_throttles", lambda self: [])


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _page_through(client, path: str, params: dict) -> list[dict]:
    rows, url = [], API + path
    response = client.get(url, {**params, "page_size": 200})
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        rows += body["results"]
        if not body.get("next"):
            return rows
        response = client.get(body["next"])


def _comparable(kind: str, row: dict) -> dict:
    if kind in ROLLED_UP:
        return {key: value for key, value in row.items() if key not in DERIVED}
    return row


class Mirror:
    """What a syncing client holds: rows by kind and id, and its high-water mark."""

    def __init__(self, user, *, use_feed: bool = True):
        self.client = _client(user)
        self.use_feed = use_feed
        self.rows: dict[str, dict[int, dict]] = {kind: {} for kind in LISTS}
        self.mark: str | None = None
        self.full_syncs = self.syncs = self.deletes = 0

    def read_all(self) -> dict[str, dict[int, dict]]:
        return {
            kind: {row["id"]: row for row in _page_through(self.client, path, {})}
            for kind, path in LISTS.items()
        }

    def sync(self) -> None:
        self.syncs += 1
        params = {"after": self.mark} if self.mark else {}
        response = self.client.get(API + "changes/", params)
        assert response.status_code == 200, response.content
        feed = response.json()
        if feed["full_sync_required"]:
            self.full_syncs += 1
            self.rows = self.read_all()
            self.mark = feed["until"]
            return
        for change in feed["results"] if self.use_feed else []:
            if change["op"] == "delete":
                self.deletes += 1
                self.drop(change["kind"], change["id"])
            else:
                self.arrive(change["kind"], change["id"])
        for kind, path in LISTS.items():
            for row in _page_through(self.client, path, {"updated_after": self.mark}):
                self.upsert(kind, row)
        self.mark = feed["until"]  # the tests run one at a time: no overlap window needed

    def upsert(self, kind: str, row: dict) -> None:
        new = row["id"] not in self.rows[kind]
        self.rows[kind][row["id"]] = row
        if new and kind == "task":  # a task that came into view brings its history
            self.children(row["id"], "task", ["status-update"])
        if new and kind == "plan":  # a plan, its workstreams and participants
            self.children(row["id"], "plan", ["workstream", "plan-participant"])

    def children(self, pk: int, parent: str, kinds: list[str]) -> None:
        for kind in kinds:
            for row in _page_through(self.client, LISTS[kind], {parent: pk}):
                self.rows[kind][row["id"]] = row

    def arrive(self, kind: str, pk: int) -> None:
        """A row that came into view without changing (a plan seen through a new task)."""
        response = self.client.get(f"{API}{LISTS[kind]}{pk}/")
        if response.status_code != 200:
            return
        self.upsert(kind, response.json())

    def drop(self, kind: str, pk: int) -> None:
        """A delete implies what hangs under the row (docs/integration/sync.md)."""
        self.rows[kind].pop(pk, None)
        if kind == "task":
            self._drop_where("status-update", task=pk)
        if kind == "plan":
            for child in ("workstream", "plan-participant"):
                self._drop_where(child, plan=pk)
            for task in [t for t in self.rows["task"].values() if t["plan"] == pk]:
                self.drop("task", task["id"])

    def _drop_where(self, kind: str, **match) -> None:
        for pk, row in list(self.rows[kind].items()):
            if all(row.get(key) == value for key, value in match.items()):
                del self.rows[kind][pk]

    def differences(self) -> list[str]:
        server = self.read_all()
        found = []
        for kind in LISTS:
            held, truth = self.rows[kind], server[kind]
            for pk in sorted(set(held) | set(truth)):
                if pk not in truth:
                    found.append(f"{kind} {pk}: held, gone on the server")
                elif pk not in held:
                    found.append(f"{kind} {pk}: on the server, not held")
                elif _comparable(kind, held[pk]) != _comparable(kind, truth[pk]):
                    found.append(f"{kind} {pk}: stale")
        return found


# --- The world and the random changes --------------------------------------------------------


class World:
    """A ministry coordinating two plans; a firm in one, other organizations around them."""

    def __init__(self, seed: int):
        self.random = random.Random(seed)
        self.system = system_user()
        self.ministry = OrganizationFactory(kind="ministry", name="Ministry", acronym="MIN")
        self.firm = OrganizationFactory(name="Firm", acronym="FIRM")
        self.other = OrganizationFactory(name="Other", acronym="OTH")
        self.extra = [OrganizationFactory(name=f"Extra {n}") for n in range(3)]
        self.plans = [
            PlanFactory(coordinating=[self.ministry], members=[self.firm, self.other]),
            PlanFactory(coordinating=[self.ministry], members=[self.other]),
        ]
        self.coordinator, self.firm_user = UserFactory(), UserFactory()
        for user, org, role in [
            (self.coordinator, self.ministry, "coordinator"),
            (self.firm_user, self.firm, "contributor"),
        ]:
            services.membership_create(actor=self.system, user=user, organization=org, role=role)
        for plan in self.plans:
            for n in range(3):
                TaskFactory(plan=plan, lead_organization=self.pick_org(), ref=f"{plan.pk}-S{n}")
        self.count = 0

    def pick_org(self) -> Organization:
        return self.random.choice([self.ministry, self.firm, self.other, self.firm])

    def some(self, rows: list, most: int) -> list:
        return self.random.sample(rows, k=min(len(rows), self.random.randint(0, most)))

    def task(self) -> Task:
        return self.random.choice(list(Task.objects.all()))

    # Each change returns normally when it wrote something; a refusal raises.

    def task_create(self):
        plan = self.random.choice(self.plans)
        self.count += 1
        services.task_create(
            actor=self.coordinator, plan=plan, ref=f"R-{self.count}", title=f"Task {self.count}",
            lead_organization=self.pick_org(), due_date=dt.date(2030, 1, 1),
            visibility=self.random.choice(["participants", "plan"]),
            supporting_organizations=self.some([self.firm, self.other], 1),
        )  # fmt: skip

    def task_update(self):
        task = self.task()
        change = self.random.choice(["title", "lead", "visibility", "support", "workstream"])
        fields = {}
        if change == "title":
            fields["title"] = f"Renamed {self.random.randint(0, 10**6)}"
        elif change == "lead":
            fields["lead_organization"] = self.pick_org()
        elif change == "visibility":
            fields["visibility"] = "plan" if task.visibility == "participants" else "participants"
        elif change == "support":
            fields["supporting_organizations"] = self.random.sample(
                [self.firm, self.other, self.ministry], k=self.random.randint(0, 2)
            )
        else:
            workstreams = list(Workstream.objects.filter(plan=task.plan_id)) + [None]
            fields["workstream"] = self.random.choice(workstreams)
        services.task_update(actor=self.coordinator, task=task, **fields)

    def task_transition(self):
        task = self.task()
        moves = [to for (frm, to) in services.WORKFLOW if frm == task.status]
        services.task_transition(
            actor=self.coordinator, task=task, to_status=self.random.choice(moves),
            expected_from=task.status, note="random", evidence_url="https://example.org/e",
        )  # fmt: skip

    def task_cancel(self):
        task = self.task()
        services.task_transition(
            actor=self.coordinator, task=task, to_status="cancelled",
            expected_from=task.status, note="no longer needed",
        )  # fmt: skip

    def progress(self):
        services.status_update_add(
            actor=self.coordinator, task=self.task(), progress=self.random.randint(0, 99),
            note="progress",
        )  # fmt: skip

    def deadline(self):
        services.task_change_deadline(
            actor=self.coordinator, task=self.task(), reason="moved",
            due_date=dt.date(2030, 1, 1) + dt.timedelta(days=self.random.randint(1, 900)),
        )  # fmt: skip

    def link_outcomes(self):
        outcomes = list(Outcome.objects.all()[:5])
        services.task_update(
            actor=self.coordinator, task=self.task(),
            source_outcomes=self.some(outcomes, 2),
        )  # fmt: skip

    def workstream(self):
        existing = list(Workstream.objects.all())
        if existing and self.random.random() < 0.4:
            services.workstream_delete(
                actor=self.coordinator, workstream=self.random.choice(existing)
            )
        elif existing and self.random.random() < 0.5:
            services.workstream_update(
                actor=self.coordinator, workstream=self.random.choice(existing),
                title=f"WS {self.random.randint(0, 10**6)}", plan=self.random.choice(self.plans),
                lead_organizations=self.random.sample([self.firm, self.other], k=1),
            )  # fmt: skip
        else:
            self.count += 1
            services.workstream_create(
                actor=self.coordinator, plan=self.random.choice(self.plans),
                code=f"W{self.count}", title=f"Workstream {self.count}",
            )  # fmt: skip

    def forum_or_outcome(self):
        forums, outcomes = list(Forum.objects.all()), list(Outcome.objects.all())
        roll = self.random.random()
        self.count += 1
        if roll < 0.25 or not forums:
            services.forum_create(
                actor=self.coordinator, kind="dialogue", name=f"Forum {self.count}",
                held_on=dt.date(2025, 1, 1), hosts=[self.ministry],
            )  # fmt: skip
        elif roll < 0.4:
            services.forum_update(
                actor=self.coordinator, forum=self.random.choice(forums),
                participants=self.random.sample(self.extra, k=2),
            )  # fmt: skip
        elif roll < 0.5:
            services.forum_delete(actor=self.coordinator, forum=self.random.choice(forums))
        elif roll < 0.7:
            services.outcome_create(
                actor=self.coordinator, forum=self.random.choice(forums), kind="commitment",
                title=f"Outcome {self.count}", parties=[self.ministry],
            )  # fmt: skip
        elif roll < 0.85 and outcomes:
            services.outcome_update(
                actor=self.coordinator, outcome=self.random.choice(outcomes),
                parties=self.random.sample(self.extra, k=1),
            )  # fmt: skip
        elif outcomes:
            services.outcome_delete(actor=self.coordinator, outcome=self.random.choice(outcomes))
        else:
            raise ValidationError("nothing to do")

    def organization(self):
        self.count += 1
        if self.random.random() < 0.5:
            services.organization_create(
                actor=self.coordinator, name=f"Org {self.count}", kind="company", country="KR"
            )
        else:
            services.organization_update(
                actor=self.coordinator, organization=self.random.choice(self.extra),
                website=f"https://example.org/{self.count}",
            )  # fmt: skip

    def participant(self):
        plan = self.random.choice(self.plans)
        org = self.random.choice([*self.extra, self.firm])
        row = PlanParticipant.objects.filter(plan=plan, organization=org).first()
        if row is None:
            services.participant_add(actor=self.coordinator, plan=plan, organization=org)
        elif self.random.random() < 0.3:
            services.participant_update(
                actor=self.coordinator, participant=row,
                role="coordinating" if row.role == "member" else "member",
            )  # fmt: skip
        else:
            services.participant_remove(actor=self.coordinator, participant=row)

    def membership(self):
        """The firm user joins or leaves another organization: their scope changes."""
        row = Membership.objects.filter(user=self.firm_user, organization=self.other).first()
        if row is None:
            services.membership_create(
                actor=self.system, user=self.firm_user, organization=self.other, role="viewer"
            )
        else:
            services.membership_delete(actor=self.system, membership=row)

    def webhook(self):
        hooks = list(WebhookSubscription.objects.all())
        if hooks and self.random.random() < 0.5:
            notification_services.webhook_subscription_delete(
                actor=self.system, subscription=self.random.choice(hooks)
            )
            return
        self.count += 1
        notification_services.webhook_subscription_create(
            actor=self.system, organization=self.random.choice([self.firm, self.ministry]),
            url=f"http://127.0.0.1:9/hook/{self.count}", events=["task.updated"],
        )  # fmt: skip

    CHANGES = [
        ("task_create", 10), ("task_update", 14), ("task_transition", 12), ("task_cancel", 3),
        ("progress", 8), ("deadline", 4), ("link_outcomes", 3), ("workstream", 6),
        ("forum_or_outcome", 10), ("organization", 3), ("participant", 4), ("membership", 1),
        ("webhook", 3),
    ]  # fmt: skip

    def change(self) -> str:
        names, weights = zip(*self.CHANGES, strict=True)
        name = self.random.choices(names, weights)[0]
        getattr(self, name)()
        return name


def run(world: World, mirrors: list[Mirror], changes: int) -> dict[str, int]:
    """`changes` successful random changes, the mirrors syncing every few of them."""
    for mirror in mirrors:
        mirror.sync()
    done: dict[str, int] = {}
    while sum(done.values()) < changes:
        try:
            name = world.change()
        except (ValidationError, DomainError, ValueError, IndexError):
            continue  # refused: nothing written, not counted
        done[name] = done.get(name, 0) + 1
        if world.random.random() < 0.06:
            world.random.choice(mirrors).sync()
    for mirror in mirrors:
        mirror.sync()
    return done


def test_a_mirror_kept_by_sync_equals_the_server_after_1000_random_changes():
    world = World(seed=14)
    mirrors = [Mirror(world.coordinator), Mirror(world.firm_user)]
    done = run(world, mirrors, 1000)
    assert sum(done.values()) == 1000
    assert done.keys() == {name for name, _ in World.CHANGES}  # every kind of change ran
    for mirror in mirrors:
        assert mirror.differences() == []
        assert mirror.syncs > 15 and mirror.deletes > 0
    # The firm's scope changed (memberships, participations): it had to re-read in full.
    assert mirrors[1].full_syncs > 1
    # And the mirrors are not empty: the comparison compared something.
    assert len(mirrors[0].rows["task"]) > 50 and len(mirrors[1].rows["task"]) > 10


def test_without_the_feed_the_mirror_keeps_deleted_rows():
    """The same loop, ignoring the feed's deletions: the comparison catches it."""
    world = World(seed=15)
    mirror = Mirror(world.coordinator, use_feed=False)
    run(world, [mirror], 80)
    assert any("held, gone on the server" in line for line in mirror.differences())


# --- updated_after on every list, and the feed's rules ---------------------------------------

EVERY_LIST = [*LISTS.values(), "notifications/"]


@pytest.fixture
def people():
    ministry = OrganizationFactory(kind="ministry", name="Ministry", acronym="MIN")
    firm, other = OrganizationFactory(name="Firm"), OrganizationFactory(name="Other")
    plan = PlanFactory(coordinating=[ministry], members=[firm, other])
    coordinator, firm_user = UserFactory(), UserFactory()
    for user, org, role in [(coordinator, ministry, "coordinator"), (firm_user, firm, "viewer")]:
        services.membership_create(actor=system_user(), user=user, organization=org, role=role)
    return type("People", (), locals())


@pytest.mark.parametrize("path", EVERY_LIST)
def test_every_list_takes_updated_after_and_names_it_when_bad(people, path):
    client = _client(people.coordinator)
    for bad in ("yesterday", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00-25:00"):
        response = client.get(API + path, {"updated_after": bad})
        assert response.status_code == 400, (path, bad)
        assert [error["field"] for error in response.json()["errors"]] == ["updated_after"]
    response = client.get(API + path, {"updated_after": "2020-01-01T09:00:00+09:00"})
    assert response.status_code == 200


def test_updated_after_pages_in_updated_at_then_id_order_through_ties(people):
    import time_machine

    instant = dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC)
    with time_machine.travel(instant, tick=False):  # five rows written in the same instant
        tasks = [
            TaskFactory(plan=people.plan, lead_organization=people.firm, ref=f"TIE-{n}")
            for n in range(5)
        ]
    with time_machine.travel(instant + dt.timedelta(seconds=1), tick=False):
        services.task_update(actor=people.coordinator, task=tasks[0], title="Changed later")
    client = _client(people.coordinator)
    params = {"updated_after": "2026-05-01T08:59:59Z", "ordering": "-due_date", "page_size": 2}
    seen, response = [], client.get(API + "tasks/", params)
    while True:
        body = response.json()
        seen += [row["id"] for row in body["results"]]
        if not body["next"]:
            break
        response = client.get(body["next"])
    assert seen == [task.pk for task in tasks[1:]] + [tasks[0].pk]
    after_ties = client.get(API + "tasks/", {"updated_after": "2026-05-01T09:00:00Z"}).json()
    assert [row["id"] for row in after_ties["results"]] == [tasks[0].pk]


def test_link_changes_bump_the_row_the_client_sees(people):
    def bumped(model, pk, write):
        before = model.objects.get(pk=pk).updated_at
        write()
        return model.objects.get(pk=pk).updated_at > before

    actor, firm, other = people.coordinator, people.firm, people.other
    forum = services.forum_create(
        actor=actor, kind="dialogue", name="F", held_on=dt.date(2025, 1, 1)
    )
    outcome = services.outcome_create(actor=actor, forum=forum, kind="mou", title="O")
    workstream = services.workstream_create(actor=actor, plan=people.plan, code="W", title="W")
    task = TaskFactory(plan=people.plan, lead_organization=firm)
    assert bumped(
        Forum, forum.pk, lambda: services.forum_update(actor=actor, forum=forum, hosts=[firm])
    )
    assert bumped(
        Outcome,
        outcome.pk,
        lambda: services.outcome_update(actor=actor, outcome=outcome, parties=[firm]),
    )
    assert bumped(
        Workstream,
        workstream.pk,
        lambda: services.workstream_update(
            actor=actor, workstream=workstream, lead_organizations=[firm]
        ),
    )
    assert bumped(
        Task,
        task.pk,
        lambda: services.task_update(actor=actor, task=task, supporting_organizations=[other]),
    )
    assert bumped(
        Task,
        task.pk,
        lambda: services.task_update(actor=actor, task=task, source_outcomes=[outcome]),
    )
    extra = OrganizationFactory(name="Extra")
    assert bumped(
        Plan,
        people.plan.pk,
        lambda: services.participant_add(actor=actor, plan=people.plan, organization=extra),
    )
    row = PlanParticipant.objects.get(plan=people.plan, organization=extra)
    assert bumped(
        Plan, people.plan.pk, lambda: services.participant_remove(actor=actor, participant=row)
    )
    assert bumped(
        Organization, extra.pk,
        lambda: services.organization_update(
            actor=actor, organization=extra, website="https://example.org"
        ),
    )  # fmt: skip


def _feed(user, after) -> dict:
    response = _client(user).get(API + "changes/", {"after": after.isoformat()})
    assert response.status_code == 200, response.content
    return response.json()


def _entries(feed) -> set[tuple]:
    return {(entry["kind"], entry["id"], entry["op"]) for entry in feed["results"]}


def test_the_feed_names_only_rows_the_reader_could_see(people):
    actor = people.coordinator
    seen_task = TaskFactory(plan=people.plan, lead_organization=people.firm)
    unseen_task = TaskFactory(plan=people.plan, lead_organization=people.other)
    forum = services.forum_create(
        actor=actor, kind="dialogue", name="F", held_on=dt.date(2025, 1, 1)
    )
    workstream = services.workstream_create(actor=actor, plan=people.plan, code="W", title="W")
    mark = dt.datetime.now(dt.UTC)
    services.task_update(actor=actor, task=seen_task, lead_organization=people.other)
    services.task_update(actor=actor, task=unseen_task, lead_organization=people.ministry)
    services.forum_delete(actor=actor, forum=forum)
    services.workstream_delete(actor=actor, workstream=workstream)
    firm_feed = _feed(people.firm_user, mark)
    assert not firm_feed["full_sync_required"]
    # The firm's task left its view; the other one it never saw is not named.
    assert _entries(firm_feed) == {
        ("task", seen_task.pk, "delete"), ("forum", forum.pk, "delete"),
        ("workstream", workstream.pk, "delete"),
    }  # fmt: skip
    # The coordinator still sees both tasks: only the deletions.
    assert _entries(_feed(people.coordinator, mark)) == {
        ("forum", forum.pk, "delete"), ("workstream", workstream.pk, "delete"),
    }  # fmt: skip


def test_the_feed_asks_for_a_full_read_when_the_readers_access_changes(people):
    mark = dt.datetime.now(dt.UTC)
    assert not _feed(people.firm_user, mark)["full_sync_required"]
    services.membership_create(
        actor=system_user(), user=people.firm_user, organization=people.other, role="viewer"
    )
    assert _feed(people.firm_user, mark)["full_sync_required"]
    assert not _feed(people.coordinator, mark)["full_sync_required"]
    response = _client(people.firm_user).get(API + "changes/")
    assert response.json()["full_sync_required"]  # no `after`: a first sync
    response = _client(people.firm_user).get(API + "changes/", {"after": "soon"})
    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["after"]


def test_the_feed_takes_the_same_queries_for_few_and_many_changes(
    people, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_for(count: int) -> int:
        mark = dt.datetime.now(dt.UTC)
        for n in range(count):
            forum = services.forum_create(
                actor=people.coordinator, kind="dialogue", name=f"F{count}-{n}",
                held_on=dt.date(2025, 1, 1),
            )  # fmt: skip
            task = TaskFactory(plan=people.plan, lead_organization=people.firm)
            services.forum_delete(actor=people.coordinator, forum=forum)
            services.task_update(
                actor=people.coordinator, task=task, lead_organization=people.other
            )
        client = _client(people.firm_user)
        with CaptureQueriesContext(connection) as captured:
            feed = client.get(API + "changes/", {"after": mark.isoformat()}).json()
        assert len(feed["results"]) == 2 * count
        return len(captured)

    assert queries_for(2) == queries_for(12)
