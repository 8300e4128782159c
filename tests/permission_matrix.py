"""The permission matrix: one table of expected outcomes per (model, action, role), and the
small world it is about. The policy, service, admin and API tests are all generated from it.

The world (`build_world()`):

- ministry M coordinates plan A; ministry M2 coordinates plan B;
- companies L (lead), S (supporting) and O (other) are members of plan A;
- task T of plan A: led by L, supported by S, visibility "participants", in progress, with a
  progress note on it; a workstream of plan A; a forum with an outcome; O's participation in
  plan A (the plan participant of the matrix);
- one user per role (see ROLES), each given their membership through
  `plans.services.membership_create`, as production does (staff flag and role group).

`EXPECTED[(model, action)][role]` is "allow" (may), "deny" (sees the object but may not: 403)
or "hidden" (may not even see it: 404). The values are read off DESIGN.md ("Permission
policy") and the rules in the docstring of `plans/permissions.py`, never off the code's
answers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from django.contrib.auth.models import AnonymousUser

from plans import services
from plans.models import Forum, Outcome, Plan, PlanParticipant, StatusUpdate, Task, Workstream
from tests.factories import (
    ForumFactory,
    OrganizationFactory,
    OutcomeFactory,
    PlanFactory,
    TaskFactory,
    UserFactory,
    WorkstreamFactory,
)
from tracker.models import Membership, Organization, User
from tracker.services import system_user

ROLES = (
    "anonymous",
    "viewer",
    "contributor_lead",
    "contributor_other",
    "contributor_supporting",
    "manager",
    "coordinator",
    "coordinator_other_plan",
    "superuser",
)

ALLOW, DENY, HIDDEN = "allow", "deny", "hidden"
OUTCOMES = (ALLOW, DENY, HIDDEN)

# Distinctive texts, so a test can tell whether a page reveals the task.
TASK_REF = "SC-77"
TASK_TITLE = "Hydrogen turbine pilot line at Changwon"
TASK_TITLE_PART = "turbine pilot"
STATUS_NOTE = "Pilot line foundations poured."

MODELS: dict[str, type] = {
    "task": Task,
    "plan": Plan,
    "workstream": Workstream,
    "statusupdate": StatusUpdate,
    "forum": Forum,
    "outcome": Outcome,
    "organization": Organization,
    "membership": Membership,
    "planparticipant": PlanParticipant,
}


@dataclass
class World:
    m: Organization  # ministry coordinating plan A
    m2: Organization  # ministry coordinating plan B
    lead: Organization  # L
    supporting: Organization  # S
    other: Organization  # O: member of plan A, neither leads nor supports T
    plan_a: Plan
    plan_b: Plan
    task: Task  # T
    workstream: Workstream
    status_update: StatusUpdate
    forum: Forum
    outcome: Outcome
    membership: Membership  # contributor_lead's membership at L
    users: dict[str, User | None] = field(default_factory=dict)
    participant: PlanParticipant | None = None  # O's participation in plan A (no tasks)

    def user(self, role: str):
        """The user playing `role`; an AnonymousUser for "anonymous"."""
        if role not in ROLES:
            raise KeyError(role)
        user = self.users.get(role)
        return AnonymousUser() if user is None else user

    def obj(self, model: str):
        """The object a row of the matrix is about."""
        return {
            "task": self.task,
            "plan": self.plan_a,
            "workstream": self.workstream,
            "statusupdate": self.status_update,
            "forum": self.forum,
            "outcome": self.outcome,
            "organization": self.lead,
            "membership": self.membership,
            "planparticipant": self.participant,
        }[model]

    def refresh(self) -> None:
        for name in (
            "task", "plan_a", "plan_b", "workstream", "status_update", "membership", "participant"
        ):  # fmt: skip
            getattr(self, name).refresh_from_db()


# Which organization each role is a member of, and with which role.
ROLE_MEMBERSHIPS = {
    "viewer": ("lead", Membership.Role.VIEWER),
    "contributor_lead": ("lead", Membership.Role.CONTRIBUTOR),
    "contributor_other": ("other", Membership.Role.CONTRIBUTOR),
    "contributor_supporting": ("supporting", Membership.Role.CONTRIBUTOR),
    "manager": ("lead", Membership.Role.MANAGER),
    "coordinator": ("m", Membership.Role.COORDINATOR),
    "coordinator_other_plan": ("m2", Membership.Role.COORDINATOR),
}


def build_world() -> World:
    """Create the matrix's world through the factories and services, as the system account."""
    system = system_user()
    ministry = Organization.Kind.MINISTRY
    orgs = {
        "m": OrganizationFactory(name="Ministry M", acronym="MM", kind=ministry),
        "m2": OrganizationFactory(name="Ministry M2", acronym="MM2", kind=ministry, country="US"),
        "lead": OrganizationFactory(name="Lead Co L", acronym="LCO"),
        "supporting": OrganizationFactory(name="Supporting Co S", acronym="SCO"),
        "other": OrganizationFactory(name="Other Co O", acronym="OCO"),
    }
    plan_a = PlanFactory(
        code="PLAN-A",
        title="Joint Plan A",
        coordinating=[orgs["m"]],
        members=[orgs["lead"], orgs["supporting"], orgs["other"]],
    )
    plan_b = PlanFactory(code="PLAN-B", title="Joint Plan B", coordinating=[orgs["m2"]])
    workstream = WorkstreamFactory(
        plan=plan_a, code="WS-A", title="Energy: hydrogen", lead_organizations=[orgs["lead"]]
    )
    task = TaskFactory(
        plan=plan_a,
        workstream=workstream,
        ref=TASK_REF,
        title=TASK_TITLE,
        lead_organization=orgs["lead"],
        supporting_organizations=[orgs["supporting"]],
        visibility=Task.Visibility.PARTICIPANTS,
        due_date=dt.date(2030, 6, 30),
        status=Task.Status.IN_PROGRESS,
    )
    status_update = services.status_update_add(actor=system, task=task, note=STATUS_NOTE)
    forum = ForumFactory(name="Korea-US Industrial Dialogue", hosts=[orgs["m"]])
    outcome = OutcomeFactory(forum=forum, title="Hydrogen cooperation MOU")

    users: dict[str, User | None] = {"anonymous": None}
    memberships = {}
    for role, (org_key, membership_role) in ROLE_MEMBERSHIPS.items():
        user = UserFactory(username=role)
        memberships[role] = services.membership_create(
            actor=system, user=user, organization=orgs[org_key], role=membership_role
        )
        user.refresh_from_db()
        users[role] = user
    users["superuser"] = UserFactory(username="superuser", is_superuser=True, is_staff=True)

    task.refresh_from_db()
    return World(
        m=orgs["m"],
        m2=orgs["m2"],
        lead=orgs["lead"],
        supporting=orgs["supporting"],
        other=orgs["other"],
        plan_a=plan_a,
        plan_b=plan_b,
        task=task,
        workstream=workstream,
        status_update=status_update,
        forum=forum,
        outcome=outcome,
        membership=memberships["contributor_lead"],
        users=users,
        participant=PlanParticipant.objects.get(plan=plan_a, organization=orgs["other"]),
    )


A, D, H = ALLOW, DENY, HIDDEN

# fmt: off
# Columns follow ROLES:
#   anonymous, viewer, contributor_lead, contributor_other, contributor_supporting, manager,
#   coordinator, coordinator_other_plan, superuser
_TABLE: dict[tuple[str, str], tuple[str, ...]] = {
    # T is seen by L and S (leads, supports), the plan's coordinators and superusers; its
    # visibility "participants" hides it from O, and plan B's coordinator has no part in it.
    ("task", "view"):              (H, A, A, H, A, A, A, H, A),
    ("task", "change"):            (H, D, D, H, D, D, A, H, A),  # coordinators of the plan
    ("task", "delete"):            (H, D, D, H, D, D, D, H, D),  # nobody: tasks are cancelled
    ("task", "transition"):        (H, D, A, H, D, A, A, H, A),  # lead org contributor/manager
    ("task", "verify"):            (H, D, D, H, D, D, A, H, A),  # coordinators only
    ("task", "assign"):            (H, D, D, H, D, A, A, H, A),  # + manager of the lead org
    ("task", "change_deadline"):   (H, D, D, H, D, D, A, H, A),  # coordinators only
    ("task", "add_update"):        (H, D, A, H, A, A, A, H, A),  # + supporting org's notes
    # Plan A: seen by every participating organization (O too) and the coordinators.
    ("plan", "view"):              (H, A, A, A, A, A, A, H, A),
    ("plan", "change"):            (H, D, D, D, D, D, A, H, A),
    # Workstreams are seen with their plan and written by its coordinators.
    ("workstream", "view"):        (H, A, A, A, A, A, A, H, A),
    ("workstream", "change"):      (H, D, D, D, D, D, A, H, A),
    ("workstream", "delete"):      (H, D, D, D, D, D, A, H, A),
    # Plan participants (organization and role) likewise: seen with the plan, written by its
    # coordinators (issue 12: the write API).
    ("planparticipant", "view"):   (H, A, A, A, A, A, A, H, A),
    ("planparticipant", "change"): (H, D, D, D, D, D, A, H, A),
    ("planparticipant", "delete"): (H, D, D, D, D, D, A, H, A),
    # A status update is seen with its task; history is append-only for everyone.
    ("statusupdate", "view"):      (H, A, A, H, A, A, A, H, A),
    ("statusupdate", "change"):    (H, D, D, H, D, D, D, H, D),
    ("statusupdate", "delete"):    (H, D, D, H, D, D, D, H, D),
    # Forums and outcomes: public records, read by the signed-in, written by coordinators.
    ("forum", "view"):             (H, A, A, A, A, A, A, A, A),
    ("forum", "change"):           (H, D, D, D, D, D, A, A, A),
    ("forum", "delete"):           (H, D, D, D, D, D, A, A, A),
    ("outcome", "view"):           (H, A, A, A, A, A, A, A, A),
    ("outcome", "change"):         (H, D, D, D, D, D, A, A, A),
    ("outcome", "delete"):         (H, D, D, D, D, D, A, A, A),
    # Organizations: read by the signed-in, written by coordinators, deleted by superusers.
    ("organization", "view"):      (H, A, A, A, A, A, A, A, A),
    ("organization", "change"):    (H, D, D, D, D, D, A, A, A),
    ("organization", "delete"):    (H, D, D, D, D, D, D, D, A),
    # contributor_lead's membership at L: seen by L's members and by whoever manages L's
    # memberships (coordinators of a plan L takes part in); written only by the latter.
    ("membership", "view"):        (H, A, A, H, H, A, A, H, A),
    ("membership", "change"):      (H, D, D, H, H, D, A, H, A),
    ("membership", "delete"):      (H, D, D, H, H, D, A, H, A),
}
# fmt: on

EXPECTED: dict[tuple[str, str], dict[str, str]] = {
    key: dict(zip(ROLES, row, strict=True)) for key, row in _TABLE.items()
}

# Who may create rows of a kind at all: can(user, "add", Model).
#                   anon   viewer c_lead c_oth  c_sup  mgr    coord  coord2 super
_ADD_TABLE = {
    "forum": (False, False, False, False, False, False, True, True, True),
    "plan": (False, False, False, False, False, False, True, True, True),
    "task": (False, False, False, False, False, False, True, True, True),
    "membership": (False, False, False, False, False, False, True, True, True),
    "outcome": (False, False, False, False, False, False, True, True, True),
    "organization": (False, False, False, False, False, False, True, True, True),
    # Workstreams and participants: coordinators of some plan (of which plan: the service).
    "workstream": (False, False, False, False, False, False, True, True, True),
    "planparticipant": (False, False, False, False, False, False, True, True, True),
}
EXPECTED_ADD: dict[str, dict[str, bool]] = {
    model: dict(zip(ROLES, row, strict=True)) for model, row in _ADD_TABLE.items()
}


def _check_table() -> None:
    for key, row in EXPECTED.items():
        assert key[0] in MODELS, key
        assert set(row) == set(ROLES), key
        assert set(row.values()) <= set(OUTCOMES), key
        # Sight is decided once per object: every action of a row agrees on who is hidden.
        view = EXPECTED.get((key[0], "view"))
        assert view is not None, key
        for role, outcome in row.items():
            assert (outcome == HIDDEN) == (view[role] == HIDDEN), (key, role)


_check_table()


def matrix_cases(models=None, actions=None, roles=None):
    """pytest.param(model, action, role, expected) for every cell of the matrix, optionally
    narrowed to some models, actions or roles; ids read like "task-transition-viewer"."""
    for (model, action), row in EXPECTED.items():
        if models is not None and model not in models:
            continue
        if actions is not None and action not in actions:
            continue
        for role in ROLES:
            if roles is not None and role not in roles:
                continue
            yield pytest.param(model, action, role, row[role], id=f"{model}-{action}-{role}")


def expected(model: str, action: str, role: str) -> str:
    return EXPECTED[(model, action)][role]


def roles_where(model: str, action: str, outcome: str) -> tuple[str, ...]:
    return tuple(role for role in ROLES if EXPECTED[(model, action)][role] == outcome)
