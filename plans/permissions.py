"""The permission policy: the only place role rules live.

Two functions, used by the admin, the API and the services alike:

- `for_user(user, action, model)` -> the queryset of `model` rows the user may `action`
  (a scope). Scopes are built from subqueries on the user's memberships, so applying one adds
  no query of its own.
- `can(user, action, obj)` -> True when `obj` lies inside that scope. With a model class
  instead of an instance it answers "may the user create rows of this kind at all?".

`ensure(user, action, obj)` raises NotVisible (-> 404) when the user may not even see the
object and NotAllowed (-> 403) when they see it but may not do `action`.

Actions: view, add, change, delete; on tasks also transition (moves made by the lead
organization), verify (moves only coordinators make: verify, return for revision, cancel,
reopen), assign, change_deadline and add_update (progress notes and evidence).

The rules (DESIGN.md, "Permission policy"):
- superuser and the system actor: everything.
- coordinator of an organization that is a coordinating participant of a plan: everything in
  that plan.
- everyone else sees a task when their organization leads or supports it, or when its
  visibility is `plan` and their organization participates in the plan; they see a plan when
  they see any of its tasks or their organization participates.
- being a task's assignee or manager adds sight of it only while the person still belongs to
  one of the plan's coordinating organizations (a ministry official overseeing a firm's task).
  Rights follow current memberships, never past ones: someone who moved from Samsung to
  Doosan no longer sees Samsung's task, even if it still names them; a person with no
  membership at all sees no task (and loses staff status, sessions, tokens and calendar
  feed: `tracker.services.membership_sync_access`).
- who may hold a task (`assignee_candidates`, `manager_candidates`): the assignee is a
  coordinator, manager or contributor of the lead or a supporting organization; the manager
  likewise, or of a coordinating organization of the plan. Viewers never.
- memberships: coordinators manage those of the organizations they coordinate and of the
  organizations taking part in plans they coordinate, but grant the coordinator role only in
  organizations they coordinate themselves, and never give a member of one organization a
  membership in another: only superusers do that (`membership_grant_refusal`).
- contributor and manager (and coordinator) of the lead organization: transitions and progress;
  a manager may also set the assignee, within their organization.
- contributors, managers and coordinators of a supporting organization: progress notes only.
- viewer: read only.
- people: a user sees their own account, the members of their organizations (and of those they
  manage), and the people named on the tasks they may view (assignee, manager, and those the
  task's history names), so every surface names the same people.
- forums, outcomes and organizations: readable by every signed-in user; written by
  coordinators (of any organization). Deleting an organization: superusers only.
- nobody, superusers included, changes or deletes a status update or deletes a task (tasks
  are cancelled; their history stays).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.db.models.expressions import RawSQL
from django.utils.functional import cached_property
from django.utils.hashable import make_hashable
from django.utils.translation import gettext_noop

from tracker.i18n import message
from tracker.models import Membership, Organization, User

from .exceptions import NotAllowed, NotVisible
from .models import Forum, Outcome, Plan, PlanParticipant, StatusUpdate, Task, Workstream

Role = Membership.Role

VIEW, ADD, CHANGE, DELETE = "view", "add", "change", "delete"
TRANSITION, VERIFY, ASSIGN = "transition", "verify", "assign"
CHANGE_DEADLINE, ADD_UPDATE = "change_deadline", "add_update"
ACTIONS = (VIEW, ADD, CHANGE, DELETE, TRANSITION, VERIFY, ASSIGN, CHANGE_DEADLINE, ADD_UPDATE)
TASK_ACTIONS = ACTIONS

# Roles of an organization's members that may work on the organization's tasks.
WORKING_ROLES = (Role.COORDINATOR, Role.MANAGER, Role.CONTRIBUTOR)


def move_action(move) -> str:
    """The action a workflow move needs: lead-organization moves are `transition`, moves only
    coordinators make (verify, return for revision, cancel, reopen) are `verify`."""
    return TRANSITION if move.by == "lead" else VERIFY


def is_signed_in(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def is_unrestricted(user) -> bool:
    """Superusers and the system actor (automated work) are bound by no scope. The system
    account cannot sign in (inactive, no password); it only acts through services."""
    if user is None or not user.is_authenticated:
        return False
    return getattr(user, "is_system", False) or (user.is_active and user.is_superuser)


# --- Building blocks (subqueries, evaluated inside the caller's query) ---------------------


def _orgs(user: User, roles=None):
    memberships = Membership.objects.filter(user=user)
    if roles is not None:
        memberships = memberships.filter(role__in=roles)
    return memberships.values("organization_id")


def _coordinated_plans(user: User):
    return PlanParticipant.objects.filter(
        role=PlanParticipant.Role.COORDINATING,
        organization_id__in=_orgs(user, [Role.COORDINATOR]),
    ).values("plan_id")


def _participating_plans(user: User, orgs=None):
    orgs = _orgs(user) if orgs is None else orgs
    return PlanParticipant.objects.filter(organization_id__in=orgs).values("plan_id")


def _supported_tasks(user: User, roles=None, orgs=None):
    orgs = _orgs(user, roles) if orgs is None else orgs
    through = Task.supporting_organizations.through
    return through.objects.filter(organization_id__in=orgs).values("task_id")


def is_coordinator(user: User) -> bool:
    """Has a coordinator membership anywhere: may record forums, outcomes and plans."""
    return Membership.objects.filter(user=user, role=Role.COORDINATOR).exists()


# --- Scopes as Q objects, per model and action -----------------------------------------------


def _task_q(user: User, action: str, prefix: str = "") -> Q:
    def q(**kwargs):
        return Q(**{prefix + key: value for key, value in kwargs.items()})

    coordinated = q(plan_id__in=_coordinated_plans(user))
    if action == VIEW:
        orgs = _orgs(user)  # built once for four subqueries (each use resolves a copy)
        overseen = PlanParticipant.objects.filter(
            role=PlanParticipant.Role.COORDINATING, organization_id__in=orgs
        ).values("plan_id")
        return (
            coordinated
            | q(lead_organization_id__in=orgs)
            | q(pk__in=_supported_tasks(user, orgs=orgs))
            # Assignee or manager: only while a member of a coordinating organization (the
            # lead and supporting organizations are covered above). No membership, no sight.
            | ((q(assignee=user) | q(manager=user)) & q(plan_id__in=overseen))
            | q(visibility=Task.Visibility.PLAN, plan_id__in=_participating_plans(user, orgs=orgs))
        )
    if action == TRANSITION:
        return coordinated | q(lead_organization_id__in=_orgs(user, WORKING_ROLES))
    if action == ADD_UPDATE:
        return (
            coordinated
            | q(lead_organization_id__in=_orgs(user, WORKING_ROLES))
            | q(pk__in=_supported_tasks(user, WORKING_ROLES))
        )
    if action == ASSIGN:
        return coordinated | q(lead_organization_id__in=_orgs(user, [Role.MANAGER]))
    if action in (ADD, CHANGE, VERIFY, CHANGE_DEADLINE):
        return coordinated
    if action == DELETE:
        return Q(pk__in=[])  # a task keeps its history: it is cancelled, never deleted
    raise ValueError(f"unknown action {action!r}")


@dataclass(frozen=True)
class Viewer:
    """The ids a user's task VIEW scope depends on, read once (one query) and applied as
    literal id lists: cheaper to compile and to plan than the six subqueries of `_task_q`."""

    user_id: int
    organization_ids: tuple[int, ...] = ()
    coordinated_plan_ids: tuple[int, ...] = ()  # a coordinator org of theirs coordinates it
    overseen_plan_ids: tuple[int, ...] = ()  # any org of theirs coordinates it
    participating_plan_ids: tuple[int, ...] = ()  # any org of theirs takes part


class LiteralSQL(RawSQL):
    """RawSQL whose identity (hash, equality) is its SQL, parameters and output type, read
    directly: Django binds the constructor's signature for it, a noticeable share of
    compiling the task list's page, which holds several of these."""

    @cached_property
    def identity(self):
        return (type(self), self.sql, make_hashable(self.params), type(self.output_field))


# Where a bearer token's one query leaves the reader's rows for `viewer` (tracker.services
# TOKEN_USER_EXTRAS, registered in plans.apps): "org:role:plan:plan_role" per membership and
# participation ("org:role::" for a membership without one), read with the token.
VIEWER_ROWS = "plans_viewer_rows"


def viewer_rows_sql(user_id_sql: str) -> RawSQL:
    """The rows `viewer` reads, as one value of the query that finds `user_id_sql`'s user:
    an array of text on PostgreSQL, JSON text on SQLite."""
    from django.db import connection

    membership, participant = Membership._meta.db_table, PlanParticipant._meta.db_table
    row = (
        "CAST(m.\"organization_id\" AS TEXT) || ':' || m.\"role\" || ':' || "
        "COALESCE(CAST(pp.\"plan_id\" AS TEXT), '') || ':' || COALESCE(pp.\"role\", '')"
    )
    source = (
        f'FROM "{membership}" m LEFT JOIN "{participant}" pp '
        f'ON pp."organization_id" = m."organization_id" WHERE m."user_id" = {user_id_sql}'
    )
    if connection.vendor == "postgresql":
        sql = f"ARRAY(SELECT {row} {source})"
    else:
        sql = f"(SELECT json_group_array({row}) {source})"
    return LiteralSQL(sql, [], output_field=_ViewerRowsField())


class _ViewerRowsField(models.Field):
    def get_internal_type(self):
        return "TextField"

    def from_db_value(self, value, expression, connection):
        import json

        if value is None:
            return []
        return json.loads(value) if isinstance(value, str) else list(value)


def _viewer_rows(user: User):
    """(organization id, role, plan id or None, plan role or None) of each membership and its
    organization's plan participations: read with the bearer token, else one query."""
    rows = getattr(user, VIEWER_ROWS, None)
    if rows is None:
        return Membership.objects.filter(user=user).values_list(
            "organization_id",
            "role",
            "organization__plan_participations__plan_id",
            "organization__plan_participations__role",
        )
    parsed = []
    for row in rows:
        organization_id, role, plan_id, plan_role = row.split(":")
        parsed.append((int(organization_id), role, int(plan_id) if plan_id else None, plan_role))
    return parsed


def viewer(user: User) -> Viewer:
    """The user's memberships and their organizations' plan participations: ONE query, or
    none when the bearer token's query brought them (`VIEWER_ROWS`)."""
    rows = _viewer_rows(user)
    orgs, coordinated, overseen, participating = set(), set(), set(), set()
    coordinating = PlanParticipant.Role.COORDINATING
    for organization_id, role, plan_id, plan_role in rows:
        orgs.add(organization_id)
        if plan_id is None:
            continue
        participating.add(plan_id)
        if plan_role == coordinating:
            overseen.add(plan_id)
            if role == Role.COORDINATOR:
                coordinated.add(plan_id)
    return Viewer(
        user.pk, *(tuple(sorted(ids)) for ids in (orgs, coordinated, overseen, participating))
    )


def task_view_sql(seen: Viewer, alias: str) -> tuple[str, list]:
    """`_task_q(user, VIEW)` as an SQL condition on the task table aliased `alias`, written
    with the literal ids of `seen` (see `Viewer`), supporting organizations as a correlated
    EXISTS (not a hash of every supported task's id). Plain SQL (PostgreSQL and SQLite): it
    costs nothing to compile, on the hottest path of the API. ("0 = 1" when nothing is seen.)"""

    def marks(ids):
        return ", ".join(["%s"] * len(ids))

    support = Task.supporting_organizations.through._meta.db_table
    parts, params = [], []
    if seen.coordinated_plan_ids:
        parts.append(f'{alias}."plan_id" IN ({marks(seen.coordinated_plan_ids)})')
        params += seen.coordinated_plan_ids
    if seen.organization_ids:
        orgs = marks(seen.organization_ids)
        parts.append(f'{alias}."lead_organization_id" IN ({orgs})')
        parts.append(
            f'EXISTS (SELECT 1 FROM "{support}" s WHERE s."task_id" = {alias}."id" '
            f'AND s."organization_id" IN ({orgs}))'
        )
        params += seen.organization_ids * 2
    if seen.overseen_plan_ids:
        # Assignee or manager: only while a member of a coordinating organization.
        parts.append(
            f'(({alias}."assignee_id" = %s OR {alias}."manager_id" = %s) '
            f'AND {alias}."plan_id" IN ({marks(seen.overseen_plan_ids)}))'
        )
        params += [seen.user_id, seen.user_id, *seen.overseen_plan_ids]
    if seen.participating_plan_ids:
        parts.append(
            f'({alias}."visibility" = %s '
            f'AND {alias}."plan_id" IN ({marks(seen.participating_plan_ids)}))'
        )
        params += [Task.Visibility.PLAN, *seen.participating_plan_ids]
    if not parts:
        return "0 = 1", []
    return "(" + " OR ".join(parts) + ")", params


class TaskScope:
    """The task VIEW scope of one reader for one request: `q` filters a Task queryset,
    `sql(alias)` states it on another alias (related tasks named by the page)."""

    def __init__(self, user):
        self.unrestricted = is_unrestricted(user)
        self.seen = None if self.unrestricted or not is_signed_in(user) else viewer(user)

    def sql(self, alias: str) -> tuple[str, list]:
        if self.unrestricted:
            return "1 = 1", []
        if self.seen is None:
            return "0 = 1", []
        return task_view_sql(self.seen, alias)

    @property
    def q(self) -> Q:
        if self.unrestricted:
            return Q()
        if self.seen is None:
            return Q(pk__in=[])
        sql, params = task_view_sql(self.seen, f'"{Task._meta.db_table}"')
        return Q(LiteralSQL(sql, params, output_field=models.BooleanField()))


def task_view_scope(user) -> TaskScope:
    """`scope_q(user, VIEW, Task)` with literal ids: one query now (none for superusers and
    anonymous users), then none of its own inside the caller's query. Apply `.q`."""
    return TaskScope(user)


def _plan_q(user: User, action: str) -> Q:
    coordinated = Q(pk__in=_coordinated_plans(user))
    if action == VIEW:
        return (
            coordinated
            | Q(pk__in=_participating_plans(user))
            | Q(pk__in=Task.objects.filter(_task_q(user, VIEW)).values("plan_id"))
        )
    return coordinated


def _in_plan_q(user: User, action: str) -> Q:
    """Workstreams and participants: seen with their plan, written by its coordinators."""
    return Q(plan__in=Plan.objects.filter(_plan_q(user, VIEW if action == VIEW else CHANGE)))


def _status_update_q(user: User, action: str) -> Q:
    if action == VIEW:
        return _task_q(user, VIEW, prefix="task__")
    if action == ADD:
        return _task_q(user, ADD_UPDATE, prefix="task__")
    return Q(pk__in=[])  # append-only: nobody changes or deletes history


def _public_record_q(user: User, action: str) -> Q:
    """Forums and outcomes are public records: all read, coordinators write."""
    if action == VIEW:
        return Q()
    return Q() if is_coordinator(user) else Q(pk__in=[])


def _organization_q(user: User, action: str) -> Q:
    if action == VIEW:
        return Q()
    if action == DELETE:
        return Q(pk__in=[])
    return Q() if is_coordinator(user) else Q(pk__in=[])


def organizations_managed_by(user) -> models.QuerySet:
    """Organizations whose memberships `user` may add, change and remove."""
    if is_unrestricted(user):
        return Organization.objects.all()
    if not is_signed_in(user):
        return Organization.objects.none()
    return Organization.objects.filter(pk__in=_managed_orgs(user))


def _managed_orgs(user: User):
    """Organizations whose memberships the user manages: those they coordinate, and those
    taking part in a plan they coordinate."""
    return Organization.objects.filter(
        Q(pk__in=_orgs(user, [Role.COORDINATOR]))
        | Q(plan_participations__plan_id__in=_coordinated_plans(user))
    ).values("pk")


def _membership_q(user: User, action: str) -> Q:
    managed = Q(organization_id__in=_managed_orgs(user))
    if action == VIEW:
        return managed | Q(organization_id__in=_orgs(user))
    return managed


def _user_q(user: User, action: str) -> Q:
    if action == VIEW:
        colleagues = Membership.objects.filter(
            Q(organization_id__in=_orgs(user)) | Q(organization_id__in=_managed_orgs(user))
        ).values("user_id")
        return Q(pk=user.pk) | Q(pk__in=colleagues) | _named_on(Q(_task_q(user, VIEW)))
    return Q(pk__in=[])  # accounts are managed by superusers


def _named_on(task_q: Q) -> Q:
    """People named on the tasks `task_q` selects: assignee and manager, and whoever the tasks'
    history names (authors, earlier and later assignees); the system account never. A firm
    sees the ministry official who manages its task, and every surface (API, webhooks,
    workspace, admin) names the same people."""
    tasks = Task.objects.filter(task_q)
    history = StatusUpdate.objects.filter(task_id__in=tasks.values("pk"))
    named = (
        Q(pk__in=tasks.values("assignee_id"))
        | Q(pk__in=tasks.values("manager_id"))
        | Q(pk__in=history.values("author_id"))
        | Q(pk__in=history.values("assignee_from_id"))
        | Q(pk__in=history.values("assignee_to_id"))
    )
    return named & Q(is_system=False)


# What nobody does, superusers included: history is append-only, tasks keep theirs.
NOBODY = {(StatusUpdate, CHANGE), (StatusUpdate, DELETE), (Task, DELETE)}

SCOPES = {
    Task: _task_q,
    Plan: _plan_q,
    Workstream: _in_plan_q,
    PlanParticipant: _in_plan_q,
    StatusUpdate: _status_update_q,
    Forum: _public_record_q,
    Outcome: _public_record_q,
    Organization: _organization_q,
    Membership: _membership_q,
    User: _user_q,
}


def scope_q(user, action: str, model: type[models.Model]) -> Q:
    """The policy's condition for `user` doing `action` on rows of `model`."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if model not in SCOPES:
        raise ValueError(f"no policy for {model.__name__}")
    if (model, action) in NOBODY:
        return Q(pk__in=[])
    if is_unrestricted(user):
        return Q()
    if not is_signed_in(user):
        return Q(pk__in=[])
    return SCOPES[model](user, action)


def for_user(user, action: str, model_or_queryset) -> models.QuerySet:
    """Rows of a model (or a queryset of it) that `user` may `action`. Deny by default."""
    if isinstance(model_or_queryset, models.QuerySet):
        queryset = model_or_queryset
    else:
        queryset = model_or_queryset._default_manager.all()
    return queryset.filter(scope_q(user, action, queryset.model))


# Who may create rows of a kind at all (the object does not exist yet).
def _may_create(user, model: type[models.Model]) -> bool:
    if is_unrestricted(user):
        return True
    if not is_signed_in(user):
        return False
    if model in (Forum, Outcome, Organization, Plan):
        return is_coordinator(user)
    if model in (Task, Workstream, PlanParticipant):
        return PlanParticipant.objects.filter(plan_id__in=_coordinated_plans(user)).exists()
    if model is Membership:
        return Organization.objects.filter(pk__in=_managed_orgs(user)).exists()
    if model is StatusUpdate:
        return for_user(user, ADD_UPDATE, Task).exists()
    if model in CREATORS:
        return CREATORS[model](user)
    return False


def can(user, action: str, obj) -> bool:
    """True when `obj` lies inside the user's scope for `action`.

    `obj` may be a model class: then the question is whether the user may create (`add`)
    rows of that kind at all, or act on any row of it.
    """
    if isinstance(obj, type):
        if action == ADD:
            return _may_create(user, obj)
        return (is_unrestricted(user) or is_signed_in(user)) and for_user(
            user, action, obj
        ).exists()
    if obj is None or obj.pk is None:
        return False
    return for_user(user, action, type(obj)).filter(pk=obj.pk).exists()


def may_open_list(user, model: type[models.Model]) -> bool:
    """May `user` open the list of `model` at all (the admin's menu entry), rows or not: when
    they may add rows of it, see some, or the kind is one every person has their own of (their
    notifications, digests, calendar feed, preferences: `register(..., listed=...)`)."""
    if is_unrestricted(user):
        return True
    if not is_signed_in(user):
        return False
    listed = LISTED.get(model)
    if listed is not None and listed(user):
        return True
    # Seeing a row is the common case: one query, as before there was a menu for adders.
    return can(user, VIEW, model) or can(user, ADD, model)


def ensure(user, action: str, obj) -> None:
    """Raise NotVisible when `obj` is out of sight, NotAllowed when sight is all there is."""
    if can(user, action, obj):
        return
    if isinstance(obj, type):
        raise NotAllowed(action=action, obj=obj)
    if action != VIEW and can(user, VIEW, obj):
        raise NotAllowed(action=action, obj=obj)
    raise NotVisible(obj=obj)


# --- Who may hold a task ------------------------------------------------------------------


def _working_members(organization_ids) -> models.QuerySet:
    return User.objects.filter(
        is_active=True,
        is_system=False,
        pk__in=Membership.objects.filter(
            organization_id__in=organization_ids, role__in=WORKING_ROLES
        ).values("user_id"),
    )


def assignee_candidates(*, lead_organization_id, supporting_organization_ids=()):
    """People who may be a task's assignee: coordinators, managers and contributors of its
    lead or a supporting organization (never a viewer, never an unrelated organization)."""
    return _working_members([lead_organization_id, *supporting_organization_ids])


def manager_candidates(*, plan_id, lead_organization_id, supporting_organization_ids=()):
    """People who may manage a task: as for the assignee, or a working member of one of the
    plan's coordinating organizations (the ministry overseeing the task)."""
    coordinating = PlanParticipant.objects.filter(
        plan_id=plan_id, role=PlanParticipant.Role.COORDINATING
    ).values("organization_id")
    return _working_members(
        Organization.objects.filter(
            Q(pk__in=[lead_organization_id, *supporting_organization_ids]) | Q(pk__in=coordinating)
        ).values("pk")
    )


def task_holders():
    """Everyone who could hold some task (a working membership anywhere): the choices a form
    offers before it knows the task's organizations; the services check the task itself."""
    return User.objects.filter(
        is_active=True,
        is_system=False,
        pk__in=Membership.objects.filter(role__in=WORKING_ROLES).values("user_id"),
    )


def person_sees_task_q(user_field: str) -> Q:
    """On Task rows: whether the person the task names in `user_field` (its assignee or
    manager) still sees it, by the VIEW rules above written per row instead of per user, for
    set-based work over many tasks and people (the reminder sweep). Activity is not checked:
    inactive people's reminders stay in-app."""
    person = OuterRef(user_field)
    member = Membership.objects.filter(user_id=person)
    supporting = Task.supporting_organizations.through.objects.filter(
        task_id=OuterRef(OuterRef("pk"))
    ).values("organization_id")
    in_plan = PlanParticipant.objects.filter(plan_id=OuterRef(OuterRef("plan_id")))
    coordinating = in_plan.filter(role=PlanParticipant.Role.COORDINATING)
    return (
        Q(Exists(User.objects.filter(pk=person, is_superuser=True)))
        | Q(Exists(member.filter(organization_id=OuterRef("lead_organization_id"))))
        | Q(Exists(member.filter(organization_id__in=supporting)))
        | Q(Exists(member.filter(organization_id__in=coordinating.values("organization_id"))))
        | (
            Q(visibility=Task.Visibility.PLAN)
            & Q(Exists(member.filter(organization_id__in=in_plan.values("organization_id"))))
        )
    )


# --- What a coordinator may grant ----------------------------------------------------------

GRANT_COORDINATOR_ELSEWHERE = gettext_noop(
    "Only coordinators of {organization} (or a superuser) can grant, change or remove its "
    "coordinator role."
)
GRANT_OTHER_ORGANIZATION = gettext_noop(
    "{user} already belongs to another organization: only a superuser can add a member of one "
    "organization to another."
)


def membership_grant_refusal(
    actor,
    *,
    user: User,
    organization: Organization,
    role: str,
    membership: Membership | None = None,
    removal: bool = False,
) -> tuple[str, str] | None:
    """Why `actor` may not give `user` the `role` in `organization` (in place of
    `membership` when it is a change; `removal` when that membership is being deleted), as
    (field, message); None when they may.

    On top of managing the organization's memberships (`organizations_managed_by`): the
    coordinator role is given, changed or taken away only by coordinators of that very
    organization, and a member of one organization is added to another only by superusers.
    """
    if is_unrestricted(actor):
        return None
    touched = [(organization, role)]
    if membership is not None:
        touched.append((membership.organization, membership.role))
    for org, held in touched:
        if (
            held == Role.COORDINATOR
            and not Membership.objects.filter(
                user=actor, organization=org, role=Role.COORDINATOR
            ).exists()
        ):
            return "role", message(GRANT_COORDINATOR_ELSEWHERE, organization=org)
    if removal:
        return None
    elsewhere = Membership.objects.filter(user=user).exclude(organization=organization)
    # A role change keeps the user where they are; moving a membership to another
    # organization is adding that organization's member elsewhere.
    if membership is not None and membership.pk and membership.organization_id == organization.pk:
        elsewhere = elsewhere.exclude(pk=membership.pk)
    if elsewhere.exists():
        return "user", message(GRANT_OTHER_ORGANIZATION, user=user.get_username())
    return None


# --- Organizations as subjects (webhooks act for an organization, not a person) -------------


def organization_task_q(organization_id: int) -> Q:
    """Tasks an organization may see: it coordinates the plan, leads or supports the task,
    or the task is visible plan-wide and the organization takes part in the plan."""
    coordinating = PlanParticipant.objects.filter(
        organization_id=organization_id, role=PlanParticipant.Role.COORDINATING
    ).values("plan_id")
    participating = PlanParticipant.objects.filter(organization_id=organization_id).values(
        "plan_id"
    )
    supported = Task.supporting_organizations.through.objects.filter(
        organization_id=organization_id
    ).values("task_id")
    return (
        Q(plan_id__in=coordinating)
        | Q(lead_organization_id=organization_id)
        | Q(pk__in=supported)
        | Q(visibility=Task.Visibility.PLAN, plan_id__in=participating)
    )


def organization_user_q(organization_id: int) -> Q:
    """People an organization may see (named in payloads sent to it): its own members, and
    the members of organizations taking part in plans it coordinates (as its coordinators
    would), and the people named on the tasks it may see."""
    coordinated = PlanParticipant.objects.filter(
        organization_id=organization_id, role=PlanParticipant.Role.COORDINATING
    ).values("plan_id")
    managed = Organization.objects.filter(
        Q(pk=organization_id) | Q(plan_participations__plan_id__in=coordinated)
    ).values("pk")
    members = Membership.objects.filter(organization_id__in=managed).values("user_id")
    return Q(pk__in=members) | _named_on(organization_task_q(organization_id))


def organization_resource_q(user: User, action: str, field: str = "organization") -> Q:
    """Rows belonging to an organization (e.g. its webhook subscriptions): its members see
    them; its coordinators and managers add, change and delete them."""
    roles = None if action == VIEW else [Role.COORDINATOR, Role.MANAGER]
    return Q(**{f"{field}_id__in": _orgs(user, roles)})


def may_manage_organization_resources(user: User) -> bool:
    return Membership.objects.filter(user=user, role__in=[Role.COORDINATOR, Role.MANAGER]).exists()


# Models other apps registered, with who may create rows of them, and who may open their
# list before any row of theirs exists.
CREATORS: dict = {}
LISTED: dict = {}


def register(model: type[models.Model], scope, may_create, nobody=(), listed=None) -> None:
    """Let another app put its model under this policy: `scope(user, action) -> Q`,
    `may_create(user) -> bool`, both built from the rules above, the actions `nobody`
    (superusers included) may take on it, and `listed(user) -> bool`: who may open its list
    even when it holds no row of theirs yet (see `may_open_list`)."""
    SCOPES[model] = scope
    CREATORS[model] = may_create
    NOBODY.update((model, action) for action in nobody)
    if listed is not None:
        LISTED[model] = listed


# --- Notifications' rules (registered by notifications.apps at start-up) --------------------


def register_notifications() -> None:
    """The rules of the notifications app's models, kept here with every other rule; the
    app calls this once from its AppConfig.ready (its models cannot be imported before)."""
    from notifications.models import (
        CalendarFeed,
        Digest,
        MyNotificationPreference,
        Notification,
        NotificationPreference,
        ReminderPolicy,
        WebhookDelivery,
        WebhookSubscription,
    )

    # Subscriptions belong to an organization: its members see them, its coordinators and
    # managers write them (organization_resource_q).
    register(
        WebhookSubscription,
        lambda user, action: organization_resource_q(user, action),
        may_manage_organization_resources,
    )
    from plans import changes  # deletions reach syncing clients (/api/v1/changes/)

    changes.register("webhook", WebhookSubscription)

    # The delivery log: seen by the subscription's organization, written by nobody (the
    # delivery services write it as the system).
    def delivery_scope(user, action):
        if action == VIEW:
            return organization_resource_q(user, action, field="subscription__organization")
        return Q(pk__in=[])

    register(
        WebhookDelivery, delivery_scope, lambda user: False,
        nobody=(CHANGE, DELETE), listed=may_manage_organization_resources,
    )  # fmt: skip

    # A plan's reminder policy: seen with the plan, written by its coordinators.
    def reminder_policy_scope(user, action):
        plan_action = VIEW if action == VIEW else CHANGE
        return Q(plan__in=for_user(user, plan_action, Plan))

    register(
        ReminderPolicy,
        reminder_policy_scope,
        lambda user: can(user, CHANGE, Plan),
        nobody=(DELETE,),
    )

    def own(field: str, *actions):
        """Rows belonging to the user through `field`, for `actions` only."""

        def scope(user, action):
            return Q(**{field: user}) if action in actions else Q(pk__in=[])

        return scope

    # Notifications: each person sees and marks read their own; the sweep writes them. Every
    # person has a list of their own: notifications, calendar feed, preferences and digests
    # show in the menu before the first row exists (`listed`).
    register(
        Notification, own("recipient", VIEW, CHANGE), lambda user: False,
        nobody=(ADD, DELETE), listed=is_signed_in,
    )  # fmt: skip
    # Calendar feeds: each person sees, rotates and deletes their own (superusers: all).
    register(
        CalendarFeed, own("user", VIEW, CHANGE, DELETE), lambda user: True,
        listed=is_signed_in,
    )  # fmt: skip
    # Notification preferences: each person sees and changes their own (superusers:
    # everyone's). A row is created on the first change, by its owner.
    for model in (NotificationPreference, MyNotificationPreference):
        register(
            model, own("user", VIEW, CHANGE), is_signed_in, nobody=(DELETE,),
            listed=is_signed_in,
        )  # fmt: skip
    # Daily digests: each person sees their own; only the digest services write them.
    register(
        Digest, own("user", VIEW), lambda user: False, nobody=(ADD, CHANGE, DELETE),
        listed=is_signed_in,
    )  # fmt: skip


# --- Per-request memo (plans/policy_memo.py) -------------------------------------------------
# Within an admin request the same questions get the same answers from a memo; anywhere else
# (and after the request's first write) these run exactly as written above. The names are
# rebound here, so the functions above (ensure, may_open_list, _may_create...) use the memo too.
from . import policy_memo as _policy_memo  # noqa: E402

can = _policy_memo.memoized(can, "can", with_obj=True)
# Tasks, workstreams and participants: one rule in _may_create (coordinating a plan that has
# participants), asked once a request for the three.
_may_create = _policy_memo.memoized(
    _may_create, "may_create", with_obj=True, alike=[(Task, Workstream, PlanParticipant)]
)
_orgs = _policy_memo.literal_orgs(_orgs)
_coordinated_plans = _policy_memo.literal_coordinated_plans(
    _coordinated_plans, _orgs, Role.COORDINATOR, PlanParticipant.Role.COORDINATING, PlanParticipant
)
is_coordinator = _policy_memo.holds_role(is_coordinator, [Role.COORDINATOR])
may_manage_organization_resources = _policy_memo.holds_role(
    may_manage_organization_resources, [Role.COORDINATOR, Role.MANAGER]
)
may_open_list = _policy_memo.memoized(may_open_list, "may_open_list", with_obj=True)
