"""factory_boy factories for the identity and plan models.

Plans, workstreams and tasks are created through `plans.services`, so a factory-made row is
exactly what the application would have written: validated with `full_clean()`, with its
derived fields (`Task.deadline_at`) and its first line of history (the `created`
StatusUpdate). `build()` gives unsaved instances with the same derived fields.

`TaskFactory(status=...)` walks the workflow from `planned` to the requested status through
`task_transition`, so a done task has progress 100, `completed_at` and a history; pass
`actor=` to record who did it.

Users are never superusers or staff unless a test says so.
"""

import datetime as dt
from collections import deque

import factory
from factory.django import DjangoModelFactory

from plans import services
from plans.models import Forum, Outcome, Plan, PlanParticipant, Task, Workstream
from tracker.models import Membership, Organization, User
from tracker.services import system_user

DEFAULT_PASSWORD = "correct-horse-battery-staple"
FACTORY_NOTE = "Moved by the test factory."
FACTORY_EVIDENCE_URL = "https://example.org/evidence"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.org")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password(DEFAULT_PASSWORD)
    is_superuser = False
    is_staff = False
    is_active = True
    time_zone = "Asia/Seoul"
    language = User.Language.ENGLISH


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organization {n}")
    acronym = factory.Sequence(lambda n: f"ORG{n}")
    kind = Organization.Kind.COMPANY
    country = "KR"
    parent = None


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Membership.Role.CONTRIBUTOR


class ForumFactory(DjangoModelFactory):
    class Meta:
        model = Forum
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Korea-US Forum {n}")
    kind = Forum.Kind.DIALOGUE
    held_on = dt.date(2025, 7, 1)
    location = "Seoul"

    @factory.post_generation
    def hosts(self, create, extracted, **kwargs):
        if create and extracted:
            self.hosts.set(extracted)

    @factory.post_generation
    def participants(self, create, extracted, **kwargs):
        if create and extracted:
            self.participants.set(extracted)


class OutcomeFactory(DjangoModelFactory):
    class Meta:
        model = Outcome
        skip_postgeneration_save = True

    forum = factory.SubFactory(ForumFactory)
    kind = Outcome.Kind.COMMITMENT
    title = factory.Sequence(lambda n: f"Commitment {n}")

    @factory.post_generation
    def parties(self, create, extracted, **kwargs):
        if create and extracted:
            self.parties.set(extracted)


class PlanFactory(DjangoModelFactory):
    """A plan made by `plan_create`.

    `PlanFactory(coordinating=[org], members=[org2])` adds participants with those roles.
    """

    class Meta:
        model = Plan

    code = factory.Sequence(lambda n: f"plan-{n}")
    title = factory.Sequence(lambda n: f"Joint Plan {n}")
    period_start = dt.date(2025, 1, 1)
    period_end = dt.date(2030, 12, 31)
    status = Plan.Status.ACTIVE
    time_zone = "Asia/Seoul"
    requires_evidence = False

    @classmethod
    def _create(cls, model_class, *args, coordinating=(), members=(), actor=None, **kwargs):
        return services.plan_create(
            actor=actor or system_user(), coordinating=coordinating, members=members, **kwargs
        )


class PlanParticipantFactory(DjangoModelFactory):
    class Meta:
        model = PlanParticipant

    plan = factory.SubFactory(PlanFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = PlanParticipant.Role.MEMBER


class WorkstreamFactory(DjangoModelFactory):
    """A workstream made by `workstream_create`; `lead_organizations=[...]` sets its leads."""

    class Meta:
        model = Workstream

    plan = factory.SubFactory(PlanFactory)
    code = factory.Sequence(lambda n: f"WS{n}")
    title = factory.Sequence(lambda n: f"Workstream {n}")
    order = 0

    @classmethod
    def _create(cls, model_class, *args, lead_organizations=(), actor=None, **kwargs):
        return services.workstream_create(
            actor=actor or system_user(), lead_organizations=lead_organizations, **kwargs
        )


def workflow_path(from_status: str, to_status: str) -> list[str]:
    """The shortest list of statuses leading from one status to another in WORKFLOW."""
    previous: dict[str, str | None] = {from_status: None}
    queue = deque([from_status])
    while queue:
        status = queue.popleft()
        if status == to_status:
            path = []
            while status != from_status:
                path.append(status)
                status = previous[status]
            return path[::-1]
        for source, target in services.WORKFLOW:
            if source == status and target not in previous:
                previous[target] = status
                queue.append(target)
    raise ValueError(f"No path in the workflow from {from_status!r} to {to_status!r}.")


class TaskFactory(DjangoModelFactory):
    """A task made by `task_create` (and `task_transition` when `status` is not planned).

    Extra keywords go to `task_create`: `supporting_organizations`, `source_outcomes`,
    `depends_on`, `note`, `at`, and `actor` (also accepted as `created_by`).
    """

    class Meta:
        model = Task

    plan = factory.SubFactory(PlanFactory)
    ref = factory.Sequence(lambda n: f"T-{n:03d}")
    title = factory.Sequence(lambda n: f"Task {n}")
    lead_organization = factory.SubFactory(OrganizationFactory)
    # Far enough ahead that a default task is not overdue; overdue tests set their dates.
    due_date = dt.date(2030, 6, 30)
    status = Task.Status.PLANNED
    # Set for build(); task_create computes it again on create.
    deadline_at = factory.LazyAttribute(lambda o: Task.deadline_for(o.due_date, o.plan.time_zone))

    @classmethod
    def _create(cls, model_class, *args, status=Task.Status.PLANNED, **kwargs):
        kwargs.pop("deadline_at", None)
        actor = kwargs.pop("actor", None) or kwargs.pop("created_by", None) or system_user()
        kwargs.pop("created_by", None)
        task = services.task_create(actor=actor, **kwargs)
        for next_status in workflow_path(task.status, status):
            task = services.task_transition(
                actor=actor,
                task=task,
                to_status=next_status,
                expected_from=task.status,
                note=FACTORY_NOTE,
                evidence_url=FACTORY_EVIDENCE_URL,
            )
        return task
