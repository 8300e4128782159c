"""Every write of the plan domain.

Each service takes keyword-only arguments and an explicit `actor` (a person, or
`tracker.services.system_user()` for automated work), checks the permission policy for that
actor, runs in one transaction, validates with `full_clean()`, writes the task's StatusUpdate
itself, records the actor in the audit history and announces the change after commit
(`plans.signals`). A refused change writes nothing.
"""

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from tracker import content_language
from tracker.i18n import message
from tracker.models import Membership, Organization, User
from tracker.services import membership_sync_access
from tracker.validators import validate_date_in_range, validate_web_url

from . import etags, signals
from . import permissions as policy
from .exceptions import (
    GrantNotAllowed,
    InUse,
    NotAllowed,
    NotVisible,
    TaskClosed,
    TaskMoved,
    TransitionNotAllowed,
    VersionConflict,
    status_label,
)
from .models import Forum, Outcome, Plan, PlanParticipant, StatusUpdate, Task, Workstream

S = Task.Status
logger = logging.getLogger(__name__)

NOTE_REQUIRED = gettext_noop(
    "A note is required to move a task from '{from_status}' to '{to_status}'."
)
EVIDENCE_REQUIRED = gettext_noop("This plan requires an evidence link to mark a task done.")
REASON_REQUIRED = gettext_noop("A reason is required to change a deadline.")
DEADLINE_UNCHANGED = gettext_noop("The task is already due on {due_date}.")
DEADLINE_BEFORE_START = gettext_noop("The due date cannot be before the start date ({start_date}).")
EMPTY_UPDATE = gettext_noop("A status update needs a note, a progress value or an evidence link.")
PROGRESS_RANGE = gettext_noop("Progress must be a whole number from 0 to 100.")
ASSIGNMENT_UNCHANGED = gettext_noop("The task already has this assignee and manager.")
DEPENDENCY_OTHER_PLAN = gettext_noop("A task can only depend on tasks of its own plan.")
DEPENDENCY_SELF = gettext_noop("A task cannot depend on itself.")
ASSIGNEE_OUTSIDE_ORGANIZATION = gettext_noop(
    "A manager can only assign members of the lead organization ({organization})."
)
PLAN_WITHOUT_ACTOR = gettext_noop(
    "List among the coordinating organizations one where you are a coordinator, "
    "or you could not manage the plan you create."
)
ASSIGNEE_NOT_IN_TASK_ORGANIZATIONS = gettext_noop(
    "{user} cannot be this task's assignee: choose a coordinator, manager or contributor of "
    "its lead or a supporting organization."
)
MANAGER_NOT_IN_TASK_ORGANIZATIONS = gettext_noop(
    "{user} cannot manage this task: choose a coordinator, manager or contributor of its lead "
    "or a supporting organization, or of a coordinating organization of the plan."
)
MEMBERSHIP_ORGANIZATION = gettext_noop("You cannot manage memberships of this organization.")
NEW_TASK_PLANNED = gettext_noop("A new task starts as 'planned'.")
NOT_UPDATABLE = gettext_noop(
    "These fields cannot be changed here: {fields}. Use the workflow services."
)
TITLE_REQUIRED = gettext_noop("Give a title in English (title_en) or Korean (title_ko).")


@dataclass(frozen=True)
class Move:
    """One allowed edge of the workflow.

    `by` names who may make the move (the permission policy reads it): "lead" = contributors
    and managers of the lead organization and coordinators; "coordinator" = coordinators only.
    """

    by: str
    needs_note: bool = False
    needs_evidence: bool = False  # only where the plan requires evidence
    label: str = ""


# The workflow, as one table: (from, to) -> Move. Anything not listed is forbidden.
WORKFLOW: dict[tuple[str, str], Move] = {
    (S.PLANNED, S.IN_PROGRESS): Move("lead", label="Start"),
    (S.IN_PROGRESS, S.AT_RISK): Move("lead", needs_note=True, label="Flag at risk"),
    (S.IN_PROGRESS, S.BLOCKED): Move("lead", needs_note=True, label="Flag blocked"),
    (S.AT_RISK, S.IN_PROGRESS): Move("lead", label="Back on track"),
    (S.BLOCKED, S.IN_PROGRESS): Move("lead", label="Unblocked"),
    (S.IN_PROGRESS, S.DONE): Move("lead", needs_note=True, needs_evidence=True, label="Done"),
    (S.AT_RISK, S.DONE): Move("lead", needs_note=True, needs_evidence=True, label="Done"),
    (S.DONE, S.VERIFIED): Move("coordinator", label="Verify"),
    (S.DONE, S.IN_PROGRESS): Move("coordinator", needs_note=True, label="Return for revision"),
    **{
        (open_status, S.CANCELLED): Move("coordinator", needs_note=True, label="Cancel")
        for open_status in Task.OPEN_STATUSES
    },
    (S.CANCELLED, S.PLANNED): Move("coordinator", needs_note=True, label="Reopen"),
}


def workflow_move(from_status: str, to_status: str) -> Move | None:
    return WORKFLOW.get((from_status, to_status))


def _announce(event: str, task_id: int, **extra) -> None:
    """Tell listeners after commit. A failing listener is logged, never turned into an error
    for a change that is already committed."""

    def send():
        results = signals.task_changed.send_robust(
            sender=Task, event=event, task_id=task_id, **extra
        )
        for receiver, result in results:
            if isinstance(result, Exception):
                logger.error(
                    "listener %r failed on %s for task %s", receiver, event, task_id,
                    exc_info=result,
                )  # fmt: skip

    transaction.on_commit(send)


def _validate_url(field: str, value: str) -> None:
    """An http(s) link with no credentials in it, or a ValidationError naming `field`."""
    try:
        validate_web_url(value)
    except ValidationError as exc:
        raise ValidationError({field: exc.messages}) from exc


def _validate_date(field: str, value) -> None:
    """A date within the years the system handles (before any arithmetic on it)."""
    try:
        validate_date_in_range(value)
    except ValidationError as exc:
        raise ValidationError({field: exc.messages}) from exc


def _named(field: str, value: str | None) -> dict:
    """`{field: value}` unless None: callers may give the English and Korean versions
    (`title_en`, `title_ko`) instead of the active language's `title`."""
    return {} if value is None else {field: value}


def _save_new(obj, actor: User, given=()) -> None:
    """Validate and insert `obj`, recording `actor` in its audit history. `given`: the
    translated fields set by their plain name (errors are reported under that name)."""
    with content_language.errors_named_as_given(given):
        obj.full_clean()
    obj._history_user = actor
    obj.save()


def _record(*, task: Task, actor: User, kind: str, at: dt.datetime | None, **fields):
    update = StatusUpdate(
        task=task, author=actor, kind=kind, created_at=at or timezone.now(), **fields
    )
    update.full_clean()
    update.save()
    return update


def _lock(task: Task | int) -> Task:
    pk = task.pk if isinstance(task, Task) else task
    try:
        return Task.objects.select_for_update().select_related("plan").get(pk=pk)
    except (Task.DoesNotExist, ValueError, TypeError):
        raise NotVisible() from None


def _check_version(task: Task, expected_version: int | None) -> None:
    """Optimistic concurrency: the row is locked, so compare-then-bump is atomic."""
    if expected_version is not None and task.version != expected_version:
        raise VersionConflict(expected=expected_version, actual=task.version)


def _touch(task: Task, actor: User, fields: list[str], reason: str = "") -> None:
    task.version += 1
    task.updated_by = actor
    task._history_user = actor
    # The audit history shows why (a deadline's reason, a transition's note); None: no reason.
    task._change_reason = reason or None
    task.save(update_fields=[*fields, "version", "updated_by", "updated_at"])


# --- Forums, outcomes, plans, workstreams ---------------------------------------------------


@transaction.atomic
def forum_create(
    *,
    actor: User,
    kind: str,
    held_on: dt.date,
    name: str | None = None,
    hosts: Iterable[Organization] = (),
    participants: Iterable[Organization] = (),
    **fields,
) -> Forum:
    """`name` is the active language's; or give `name_en` / `name_ko` (likewise `summary`)."""
    policy.ensure(actor, policy.ADD, Forum)
    forum = Forum(kind=kind, held_on=held_on, **_named("name", name), **fields)
    _save_new(forum, actor, given=["name"] if name is not None else [])
    forum.hosts.set(hosts)
    forum.participants.set(participants)
    return forum


@transaction.atomic
def forum_update(
    *,
    actor: User,
    forum: Forum,
    hosts: Iterable[Organization] | None = None,
    participants: Iterable[Organization] | None = None,
    expected_etag: str | None = None,
    **fields,
) -> Forum:
    """Change a forum's fields (e.g. its Korean name `name_ko`) and, when given, its hosts
    and participants. `expected_etag`: the If-Match value (plans.etags); stale -> 412."""
    policy.ensure(actor, policy.CHANGE, forum)
    forum = Forum.objects.select_for_update().get(pk=forum.pk)
    etags.check(forum, expected_etag)
    for name, value in fields.items():
        setattr(forum, name, value)
    with content_language.errors_named_as_given(set(fields) & {"name", "summary"}):
        forum.full_clean()
    forum._history_user = actor
    forum.save(update_fields=[*fields, "updated_at"])  # links count as a change too
    if hosts is not None:
        forum.hosts.set(hosts)
    if participants is not None:
        forum.participants.set(participants)
    return forum


@transaction.atomic
def outcome_create(
    *,
    actor: User,
    forum: Forum,
    kind: str,
    title: str | None = None,
    parties: Iterable[Organization] = (),
    **fields,
) -> Outcome:
    policy.ensure(actor, policy.ADD, Outcome)
    outcome = Outcome(forum=forum, kind=kind, **_named("title", title), **fields)
    _save_new(outcome, actor, given=["title"] if title is not None else [])
    outcome.parties.set(parties)
    return outcome


@transaction.atomic
def plan_create(
    *,
    actor: User,
    code: str,
    period_start: dt.date,
    period_end: dt.date,
    title: str | None = None,
    coordinating: Iterable[Organization] = (),
    members: Iterable[Organization] = (),
    **fields,
) -> Plan:
    """Create a plan with its coordinating and member organizations.

    A coordinator must list one of their own organizations as coordinating, or the plan would
    be out of their reach the moment it exists.
    """
    policy.ensure(actor, policy.ADD, Plan)
    coordinating, members = list(coordinating), list(members)
    if not policy.is_unrestricted(actor):
        own = set(
            Membership.objects.filter(user=actor, role=Membership.Role.COORDINATOR).values_list(
                "organization_id", flat=True
            )
        )
        if not own & {org.pk for org in coordinating}:
            raise ValidationError({"coordinating": message(PLAN_WITHOUT_ACTOR)})
    plan = Plan(
        code=code, period_start=period_start, period_end=period_end, **_named("title", title),
        **fields,
    )  # fmt: skip
    _save_new(plan, actor, given=["title"] if title is not None else [])
    roles = {org.pk: (org, PlanParticipant.Role.MEMBER) for org in members}
    roles.update({org.pk: (org, PlanParticipant.Role.COORDINATING) for org in coordinating})
    for org, role in roles.values():
        _save_new(PlanParticipant(plan=plan, organization=org, role=role), actor)
    return plan


@transaction.atomic
def plan_update(*, actor: User, plan: Plan, expected_etag: str | None = None, **fields) -> Plan:
    """Change a plan's fields; a new time zone moves every task's deadline instant with it."""
    policy.ensure(actor, policy.CHANGE, plan)
    plan = Plan.objects.select_for_update().get(pk=plan.pk)
    etags.check(plan, expected_etag)
    old_zone = plan.time_zone
    for name, value in fields.items():
        setattr(plan, name, value)
    with content_language.errors_named_as_given(set(fields) & {"title", "description"}):
        plan.full_clean()
    plan._history_user = actor
    plan.save(update_fields=[*fields, "updated_at"])
    if plan.time_zone != old_zone:
        tasks = list(Task.objects.select_for_update().filter(plan=plan))
        for task in tasks:
            task.deadline_at = Task.deadline_for(task.due_date, plan.time_zone)
            _touch(task, actor, ["deadline_at"])
            _announce("task.updated", task.pk, fields=["deadline_at"])
    return plan


@transaction.atomic
def workstream_create(
    *,
    actor: User,
    plan: Plan,
    code: str,
    title: str | None = None,
    lead_organizations: Iterable[Organization] = (),
    **fields,
) -> Workstream:
    policy.ensure(actor, policy.CHANGE, plan)
    workstream = Workstream(plan=plan, code=code, **_named("title", title), **fields)
    _save_new(workstream, actor, given=["title"] if title is not None else [])
    workstream.lead_organizations.set(lead_organizations)
    return workstream


@transaction.atomic
def workstream_update(
    *,
    actor: User,
    workstream: Workstream,
    lead_organizations: Iterable[Organization] | None = None,
    expected_etag: str | None = None,
    **fields,
) -> Workstream:
    policy.ensure(actor, policy.CHANGE, workstream)
    workstream = Workstream.objects.select_for_update().get(pk=workstream.pk)
    etags.check(workstream, expected_etag)
    if "plan" in fields and fields["plan"].pk != workstream.plan_id:
        policy.ensure(actor, policy.CHANGE, fields["plan"])
    for name, value in fields.items():
        setattr(workstream, name, value)
    with content_language.errors_named_as_given(set(fields) & {"title", "description"}):
        workstream.full_clean()
    workstream._history_user = actor
    workstream.save(update_fields=[*fields, "updated_at"])  # links count as a change too
    if lead_organizations is not None:
        workstream.lead_organizations.set(lead_organizations)
    return workstream


# --- Tasks ---------------------------------------------------------------------------------


def _check_dates(task: Task, changed: Iterable[str] = ("start_date", "due_date")) -> None:
    """Report out-of-range dates (of the fields that change) and due-before-start, where a
    form can show them; before Task.deadline_for adds a day to the due date."""
    start, due = task.start_date, task.due_date
    for name in ("start_date", "due_date"):
        if name in changed:
            _validate_date(name, getattr(task, name))
    if isinstance(start, dt.date) and isinstance(due, dt.date) and due < start:
        raise ValidationError({"due_date": message(DEADLINE_BEFORE_START, start_date=start)})


def _check_dependencies(task: Task, depends_on: Iterable[Task]) -> list[Task]:
    depends_on = list(depends_on)
    if any(other.pk == task.pk for other in depends_on):
        raise ValidationError({"depends_on": message(DEPENDENCY_SELF)})
    if any(other.plan_id != task.plan_id for other in depends_on):
        raise ValidationError({"depends_on": message(DEPENDENCY_OTHER_PLAN)})
    return depends_on


def task_people_check(
    *,
    plan_id: int,
    lead_organization_id: int,
    supporting_organization_ids: Iterable[int] = (),
    assignee: User | None = None,
    manager: User | None = None,
) -> None:
    """Refuse (a ValidationError naming `assignee` / `manager`) people who may not hold the
    task: `plans.permissions.assignee_candidates` and `manager_candidates`. None passes."""
    supporting = list(supporting_organization_ids)
    errors = {}
    if assignee is not None and not (
        policy.assignee_candidates(
            lead_organization_id=lead_organization_id, supporting_organization_ids=supporting
        )
        .filter(pk=assignee.pk)
        .exists()
    ):
        errors["assignee"] = message(ASSIGNEE_NOT_IN_TASK_ORGANIZATIONS, user=assignee)
    if manager is not None and not (
        policy.manager_candidates(
            plan_id=plan_id,
            lead_organization_id=lead_organization_id,
            supporting_organization_ids=supporting,
        )
        .filter(pk=manager.pk)
        .exists()
    ):
        errors["manager"] = message(MANAGER_NOT_IN_TASK_ORGANIZATIONS, user=manager)
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def task_create(
    *,
    actor: User,
    plan: Plan,
    ref: str,
    lead_organization: Organization,
    due_date: dt.date,
    title: str | None = None,
    supporting_organizations: Iterable[Organization] = (),
    source_outcomes: Iterable[Outcome] = (),
    depends_on: Iterable[Task] = (),
    note: str = "",
    at: dt.datetime | None = None,
    **fields,
) -> Task:
    """Create a planned task and the first line of its history.

    `at` backdates the record for imports of past plans; it defaults to now.
    """
    policy.ensure(actor, policy.CHANGE, plan)
    task = Task(
        plan=plan,
        ref=ref,
        **_named("title", title),
        lead_organization=lead_organization,
        due_date=due_date,
        created_by=actor,
        updated_by=actor,
        **fields,
    )
    if task.status != S.PLANNED:
        raise ValidationError({"status": message(NEW_TASK_PLANNED)})
    supporting_organizations = list(supporting_organizations)
    if isinstance(lead_organization, Organization):
        task_people_check(
            plan_id=plan.pk,
            lead_organization_id=lead_organization.pk,
            supporting_organization_ids=[org.pk for org in supporting_organizations],
            assignee=fields.get("assignee"),
            manager=fields.get("manager"),
        )
    _check_dates(task)
    if isinstance(due_date, dt.date):
        task.deadline_at = Task.deadline_for(due_date, plan.time_zone)
    _save_new(task, actor, given=["title"] if title is not None else [])
    if at is not None:
        Task.objects.filter(pk=task.pk).update(created_at=at)
        task.created_at = at
    # A new task has no related rows yet: add() is set() without reading the empty lists
    # first (the same signals and history), and nothing to add costs nothing.
    for related, objs in (
        (task.supporting_organizations, supporting_organizations),
        (task.source_outcomes, list(source_outcomes)),
        (task.depends_on, _check_dependencies(task, depends_on)),
    ):
        if objs:
            related.add(*objs)
    _record(
        task=task,
        actor=actor,
        kind=StatusUpdate.Kind.CREATED,
        at=at,
        status_to=task.status,
        note=note,
    )
    _announce("task.created", task.pk)
    return task


UPDATABLE_FIELDS = frozenset(
    {
        "title",
        "description",
        # The English and Korean versions (tracker/content_language.py); "title" alone is
        # the active language's.
        "title_en",
        "title_ko",
        "description_en",
        "description_ko",
        "workstream",
        "lead_organization",
        "start_date",
        "priority",
        "visibility",
        "parent",
    }
)


# Fields whose rules (tracker/validators.py) came after rows were stored; _check_dates
# covers the date constraint that skipping them in full_clean skips.
LEGACY_TOLERATED = (
    "ref", "title", "title_en", "title_ko", "description", "description_en", "description_ko",
    "start_date", "due_date",
)  # fmt: skip


@transaction.atomic
def task_update(
    *,
    actor: User,
    task: Task,
    supporting_organizations: Iterable[Organization] | None = None,
    source_outcomes: Iterable[Outcome] | None = None,
    depends_on: Iterable[Task] | None = None,
    expected_version: int | None = None,
    **fields,
) -> Task:
    """Change a task's descriptive fields. Status, deadline and assignee have their own services."""
    refused = set(fields) - UPDATABLE_FIELDS
    if refused:
        raise ValidationError(message(NOT_UPDATABLE, fields=", ".join(sorted(refused))))
    task = _lock(task)
    policy.ensure(actor, policy.CHANGE, task)
    _check_version(task, expected_version)
    changed = [name for name, value in fields.items() if getattr(task, name) != value]
    for name in changed:
        setattr(task, name, fields[name])
    _check_dates(task, changed)
    if {"title", "title_en", "title_ko"} & set(changed) and not content_language.shown(
        task, "title"
    )[0]:
        raise ValidationError({"title": message(TITLE_REQUIRED)})
    # A ref, text or date stored before the input rules must not block other edits. A text
    # changed by its plain name (title) is checked in the version it wrote (title_ko).
    checked = {
        *changed,
        *content_language.all_columns(Task, set(changed) & {"title", "description"}),
    }
    with content_language.errors_named_as_given(set(changed) & {"title", "description"}):
        task.full_clean(exclude=[name for name in LEGACY_TOLERATED if name not in checked])
    if supporting_organizations is not None:
        supporting_organizations = list(supporting_organizations)
    if "lead_organization" in changed or supporting_organizations is not None:
        # The people holding the task must still work in its organizations (reassign first).
        task_people_check(
            plan_id=task.plan_id,
            lead_organization_id=task.lead_organization_id,
            supporting_organization_ids=[org.pk for org in supporting_organizations]
            if supporting_organizations is not None
            else task.supporting_organizations.values_list("pk", flat=True),
            assignee=task.assignee,
            manager=task.manager,
        )
    _touch(task, actor, changed)
    if supporting_organizations is not None:
        task.supporting_organizations.set(supporting_organizations)
    if source_outcomes is not None:
        task.source_outcomes.set(source_outcomes)
    if depends_on is not None:
        task.depends_on.set(_check_dependencies(task, depends_on))
    _announce("task.updated", task.pk, fields=changed)
    return task


@transaction.atomic
def task_transition(
    *,
    actor: User,
    task: Task | int,
    to_status: str,
    expected_from: str,
    note: str = "",
    evidence_url: str = "",
    expected_version: int | None = None,
    at: dt.datetime | None = None,
) -> Task:
    """Move a task along the workflow.

    `expected_from` is the status the caller saw: if the task has moved meanwhile the change
    is refused (TaskMoved) and nothing is written. Returns the updated task.
    """
    task = _lock(task)
    policy.ensure(actor, policy.VIEW, task)
    _check_version(task, expected_version)
    if task.status != expected_from:
        raise TaskMoved(expected=expected_from, actual=task.status)
    move = workflow_move(task.status, to_status)
    if move is None:
        raise TransitionNotAllowed(from_status=task.status, to_status=to_status)
    policy.ensure(actor, policy.move_action(move), task)
    note = note.strip()
    if move.needs_note and not note:
        raise ValidationError(
            {
                "note": message(
                    NOTE_REQUIRED,
                    from_status=task.status,
                    to_status=to_status,
                    from_status_label=status_label(task.status),
                    to_status_label=status_label(to_status),
                )
            }
        )
    _validate_url("evidence_url", evidence_url)
    if move.needs_evidence and task.plan.requires_evidence and not evidence_url:
        raise ValidationError({"evidence_url": message(EVIDENCE_REQUIRED)})

    now = at or timezone.now()
    from_status = task.status
    task.status = to_status
    fields = ["status"]
    if to_status in Task.COMPLETE_STATUSES:
        task.progress = 100
        fields.append("progress")
    if to_status == S.DONE:
        task.completed_at = now
        fields.append("completed_at")
    elif to_status == S.VERIFIED:
        task.verified_at = now
        fields.append("verified_at")
    elif task.completed_at is not None:
        # Returned for revision or reopened: it is no longer complete.
        task.completed_at = None
        fields.append("completed_at")
    _touch(task, actor, fields, reason=note)
    _record(
        task=task,
        actor=actor,
        kind=StatusUpdate.Kind.TRANSITION,
        at=now,
        status_from=from_status,
        status_to=to_status,
        progress=task.progress,
        note=note,
        evidence_url=evidence_url,
    )
    _announce("task.status_changed", task.pk, status_from=from_status, status_to=to_status)
    return task


_UNSET = object()


@transaction.atomic
def task_assign(
    *,
    actor: User,
    task: Task | int,
    assignee: User | None,
    manager: User | None = _UNSET,  # type: ignore[assignment]
    note: str = "",
    expected_version: int | None = None,
    at: dt.datetime | None = None,
) -> Task:
    """Set the task's assignee (and, when given, its manager).

    Coordinators of the plan assign anyone; a manager of the lead organization assigns members
    of that organization and does not change the task's manager.
    """
    task = _lock(task)
    policy.ensure(actor, policy.ASSIGN, task)
    _check_version(task, expected_version)
    if not policy.can(actor, policy.CHANGE, task):
        if manager is not _UNSET and (manager.pk if manager else None) != task.manager_id:
            raise NotAllowed(action="change the manager of", obj=task)
        if (
            assignee is not None
            and not Membership.objects.filter(
                user=assignee, organization_id=task.lead_organization_id
            ).exists()
        ):
            raise ValidationError(
                {
                    "assignee": message(
                        ASSIGNEE_OUTSIDE_ORGANIZATION, organization=task.lead_organization
                    )
                }
            )
    new_assignee = assignee if (assignee.pk if assignee else None) != task.assignee_id else None
    new_manager = None
    if manager is not _UNSET and (manager.pk if manager else None) != task.manager_id:
        new_manager = manager
    task_people_check(
        plan_id=task.plan_id,
        lead_organization_id=task.lead_organization_id,
        supporting_organization_ids=task.supporting_organizations.values_list("pk", flat=True),
        assignee=new_assignee,
        manager=new_manager,
    )
    old_assignee_id, old_manager = task.assignee_id, task.manager
    fields = []
    if (assignee.pk if assignee else None) != old_assignee_id:
        task.assignee = assignee
        fields.append("assignee")
    if manager is not _UNSET and (manager.pk if manager else None) != task.manager_id:
        task.manager = manager
        fields.append("manager")
    if not fields:
        raise ValidationError({"assignee": message(ASSIGNMENT_UNCHANGED)})
    reason = note.strip()
    if "manager" in fields:
        change = f"Manager: {old_manager or 'none'} -> {manager or 'none'}."
        note = f"{note.strip()}\n{change}".strip()
    _touch(task, actor, fields, reason=reason)
    _record(
        task=task,
        actor=actor,
        kind=StatusUpdate.Kind.ASSIGNMENT,
        at=at,
        assignee_from_id=old_assignee_id,
        assignee_to=task.assignee,
        note=note.strip(),
    )
    _announce("task.updated", task.pk, fields=fields)
    return task


@transaction.atomic
def task_change_deadline(
    *,
    actor: User,
    task: Task | int,
    due_date: dt.date,
    reason: str,
    expected_version: int | None = None,
    at: dt.datetime | None = None,
) -> Task:
    """Move an open task's due date, with the reason recorded in its history."""
    task = _lock(task)
    policy.ensure(actor, policy.CHANGE_DEADLINE, task)
    _check_version(task, expected_version)
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": message(REASON_REQUIRED)})
    if not task.is_open:
        raise TaskClosed(status=task.status, action="changing the deadline")
    _validate_date("due_date", due_date)
    if due_date == task.due_date:
        raise ValidationError({"due_date": message(DEADLINE_UNCHANGED, due_date=due_date)})
    if task.start_date and due_date < task.start_date:
        raise ValidationError(
            {"due_date": message(DEADLINE_BEFORE_START, start_date=task.start_date)}
        )
    old_due = task.due_date
    task.due_date = due_date
    task.deadline_at = Task.deadline_for(due_date, task.plan.time_zone)
    _touch(task, actor, ["due_date", "deadline_at"], reason=reason)
    _record(
        task=task,
        actor=actor,
        kind=StatusUpdate.Kind.DEADLINE_CHANGE,
        at=at,
        due_date_from=old_due,
        due_date_to=due_date,
        note=reason,
    )
    _announce("task.updated", task.pk, fields=["due_date"])
    return task


@transaction.atomic
def status_update_add(
    *,
    actor: User,
    task: Task | int,
    note: str = "",
    progress: int | None = None,
    evidence_url: str = "",
    expected_version: int | None = None,
    at: dt.datetime | None = None,
) -> StatusUpdate:
    """Report progress on a task: a note, a new progress percentage, evidence, or all three.

    Supporting organizations add notes and evidence; a progress figure needs the right to move
    the task (lead organization, coordinators). With `expected_version` (the version the caller
    read) the update is refused (VersionConflict) if the task has changed since, even a note.
    A new progress figure bumps the task's version (`update.task.version`); a note alone does not.
    """
    task = _lock(task)
    policy.ensure(actor, policy.ADD_UPDATE, task)
    if progress is not None:
        policy.ensure(actor, policy.TRANSITION, task)
    _check_version(task, expected_version)
    note = note.strip()
    if not note and progress is None and not evidence_url:
        raise ValidationError({"note": message(EMPTY_UPDATE)})
    _validate_url("evidence_url", evidence_url)
    if progress is not None:
        if isinstance(progress, bool) or not isinstance(progress, int) or not 0 <= progress <= 100:
            raise ValidationError({"progress": message(PROGRESS_RANGE)})
        if not task.is_open:
            raise TaskClosed(status=task.status, action="reporting progress")
        if progress != task.progress:
            task.progress = progress
            _touch(task, actor, ["progress"], reason=note)
    update = _record(
        task=task,
        actor=actor,
        kind=StatusUpdate.Kind.PROGRESS,
        at=at,
        progress=progress,
        note=note,
        evidence_url=evidence_url,
    )
    _announce("status_update.created", task.pk, status_update_id=update.pk)
    return update


# --- Write API: outcomes, deletes, participants, organizations (issue 12) -------------------

FORUM_HAS_OUTCOMES = gettext_noop("it has {count} outcome(s); delete them first.")
OUTCOME_HAS_TASKS = gettext_noop("{count} task(s) implement it; unlink them first.")
WORKSTREAM_IN_USE = gettext_noop(
    "it holds {tasks} task(s) and {children} sub-workstream(s); move or delete them first."
)
PARTICIPANT_HAS_TASKS = gettext_noop(
    "the organization leads or supports {count} task(s) of this plan."
)
PARTICIPANT_ALREADY = gettext_noop("This organization already participates in this plan.")
PARTICIPANT_LAST_COORDINATING = gettext_noop("A plan keeps at least one coordinating organization.")
PARTICIPANT_LOCKOUT = gettext_noop(
    "After this change you could no longer manage this plan: keep one of your own "
    "organizations coordinating."
)


@transaction.atomic
def outcome_update(
    *,
    actor: User,
    outcome: Outcome,
    parties: Iterable[Organization] | None = None,
    expected_etag: str | None = None,
    **fields,
) -> Outcome:
    """Change an outcome's fields (title_en / title_ko, kind, status, amount...) and, when
    given, its parties. `expected_etag`: the If-Match value (plans.etags); stale -> 412."""
    policy.ensure(actor, policy.CHANGE, outcome)
    outcome = Outcome.objects.select_for_update().get(pk=outcome.pk)
    etags.check(outcome, expected_etag)
    for name, value in fields.items():
        setattr(outcome, name, value)
    titled = {"title", "title_en", "title_ko"} & set(fields)
    if titled and not content_language.shown(outcome, "title")[0]:
        raise ValidationError({"title": message(TITLE_REQUIRED)})
    with content_language.errors_named_as_given(set(fields) & {"title"}):
        outcome.full_clean()
    outcome._history_user = actor
    outcome.save(update_fields=[*fields, "updated_at"])  # links count as a change too
    if parties is not None:
        outcome.parties.set(parties)
    return outcome


@transaction.atomic
def outcome_delete(*, actor: User, outcome: Outcome) -> None:
    """Delete an outcome no task implements (a referenced one: InUse, 409)."""
    policy.ensure(actor, policy.DELETE, outcome)
    outcome = Outcome.objects.select_for_update().get(pk=outcome.pk)
    count = outcome.tasks.count()
    if count:
        raise InUse(
            kind=str(Outcome._meta.verbose_name), reason=message(OUTCOME_HAS_TASKS, count=count)
        )
    outcome._history_user = actor
    outcome.delete()


@transaction.atomic
def forum_delete(*, actor: User, forum: Forum) -> None:
    """Delete a forum without outcomes (one with outcomes: InUse, 409)."""
    policy.ensure(actor, policy.DELETE, forum)
    forum = Forum.objects.select_for_update().get(pk=forum.pk)
    count = forum.outcomes.count()
    if count:
        raise InUse(
            kind=str(Forum._meta.verbose_name), reason=message(FORUM_HAS_OUTCOMES, count=count)
        )
    forum._history_user = actor
    forum.delete()


@transaction.atomic
def workstream_delete(*, actor: User, workstream: Workstream) -> None:
    """Delete a workstream with no task and no sub-workstream (else InUse, 409)."""
    policy.ensure(actor, policy.DELETE, workstream)
    workstream = Workstream.objects.select_for_update().get(pk=workstream.pk)
    tasks, children = workstream.tasks.count(), workstream.children.count()
    if tasks or children:
        raise InUse(
            kind=str(Workstream._meta.verbose_name),
            reason=message(WORKSTREAM_IN_USE, tasks=tasks, children=children),
        )
    workstream._history_user = actor
    workstream.delete()


def plan_touch(plan_id: int) -> None:
    """A plan shows its participants: a change to them is a change to the plan for a client
    syncing by `updated_after` (docs/decisions/0013-incremental-sync.md)."""
    Plan.objects.filter(pk=plan_id).update(updated_at=timezone.now())


def _plan_still_managed(actor: User, plan: Plan, field: str) -> None:
    """After a participant change: the plan keeps a coordinating organization, and the actor
    keeps the right to manage it (else the change is refused and rolled back)."""
    if not PlanParticipant.objects.filter(
        plan_id=plan.pk, role=PlanParticipant.Role.COORDINATING
    ).exists():
        raise ValidationError({field: message(PARTICIPANT_LAST_COORDINATING)})
    if not policy.can(actor, policy.CHANGE, plan):
        raise ValidationError({field: message(PARTICIPANT_LOCKOUT)})


@transaction.atomic
def participant_add(
    *, actor: User, plan: Plan, organization: Organization, role: str = PlanParticipant.Role.MEMBER
) -> PlanParticipant:
    """Add an organization to a plan as a member or a coordinating organization."""
    policy.ensure(actor, policy.CHANGE, plan)
    plan = Plan.objects.select_for_update().get(pk=plan.pk)
    if PlanParticipant.objects.filter(plan=plan, organization=organization).exists():
        raise ValidationError({"organization": message(PARTICIPANT_ALREADY)})
    participant = PlanParticipant(plan=plan, organization=organization, role=role)
    _save_new(participant, actor)
    plan_touch(plan.pk)
    return participant


@transaction.atomic
def participant_update(
    *,
    actor: User,
    participant: PlanParticipant,
    role: str | None = None,
    expected_etag: str | None = None,
) -> PlanParticipant:
    """Change a participant's role (member <-> coordinating); None keeps it."""
    policy.ensure(actor, policy.CHANGE, participant)
    participant = (
        PlanParticipant.objects.select_for_update().select_related("plan").get(pk=participant.pk)
    )
    etags.check(participant, expected_etag)
    if role is None or role == participant.role:
        return participant
    participant.role = role
    participant.full_clean()
    participant._history_user = actor
    participant.save(update_fields=["role", "updated_at"])
    plan_touch(participant.plan_id)
    _plan_still_managed(actor, participant.plan, "role")
    return participant


@transaction.atomic
def participant_remove(*, actor: User, participant: PlanParticipant) -> None:
    """Take an organization out of a plan: refused (409) while it leads or supports a task of
    the plan; refused (400) when the plan would lose its last coordinating organization or
    the actor their own right to manage it."""
    policy.ensure(actor, policy.DELETE, participant)
    participant = (
        PlanParticipant.objects.select_for_update().select_related("plan").get(pk=participant.pk)
    )
    plan, org_id = participant.plan, participant.organization_id
    supported = Task.supporting_organizations.through.objects.filter(
        organization_id=org_id, task__plan_id=plan.pk
    ).values("task_id")
    count = (
        Task.objects.filter(plan_id=plan.pk)
        .filter(models.Q(lead_organization_id=org_id) | models.Q(pk__in=supported))
        .count()
    )
    if count:
        raise InUse(
            kind=str(PlanParticipant._meta.verbose_name),
            reason=message(PARTICIPANT_HAS_TASKS, count=count),
        )
    participant._history_user = actor
    participant.delete()
    plan_touch(plan.pk)
    _plan_still_managed(actor, plan, "organization")


@transaction.atomic
def organization_create(*, actor: User, **fields) -> Organization:
    """Record an organization (coordinators). `name` / `acronym` are the request language's;
    or give `name_en` / `name_ko` and `acronym_en` / `acronym_ko`."""
    policy.ensure(actor, policy.ADD, Organization)
    organization = Organization(**fields)
    with content_language.errors_named_as_given(set(fields) & {"name", "acronym"}):
        organization.full_clean()
    organization._history_user = actor
    organization.save()
    return organization


@transaction.atomic
def organization_update(
    *, actor: User, organization: Organization, expected_etag: str | None = None, **fields
) -> Organization:
    policy.ensure(actor, policy.CHANGE, organization)
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    etags.check(organization, expected_etag)
    for name, value in fields.items():
        setattr(organization, name, value)
    with content_language.errors_named_as_given(set(fields) & {"name", "acronym"}):
        organization.full_clean()
    organization._history_user = actor
    organization.save(update_fields=[*fields, "updated_at"])
    return organization


# --- Plan versions (Joint Plan 1.0 -> 2.0; docs/decisions/0012) -----------------------------

CARRY_NOT_OPEN = gettext_noop(
    "{refs}: only open tasks of this plan can be carried over (planned, in progress, at risk "
    "or blocked)."
)
CARRIED_FROM = "Carried over from {plan} {ref} (was {status}, {progress}%)."
CARRIED_TO = "Carried over to {plan} as {ref}."

# What a carried-over task keeps of its predecessor.
CARRIED_FIELDS = (
    "ref", "title_en", "title_ko", "description_en", "description_ko", "lead_organization_id",
    "start_date", "due_date", "priority", "visibility",
)  # fmt: skip


@transaction.atomic
def plan_new_version(
    *,
    actor: User,
    plan: Plan,
    code: str,
    period_start: dt.date,
    period_end: dt.date,
    carry_over: Iterable[Task] = (),
    title: str | None = None,
    status: str = Plan.Status.ACTIVE,
    at: dt.datetime | None = None,
    **fields,
) -> Plan:
    """The next version of `plan` (its coordinators): a new plan with `plan` as predecessor,
    the same participants (and roles), time zone, evidence rule and workstreams, and a copy
    of each open task in `carry_over`, linked to it (`Task.predecessor`). Each copy starts
    planned with a first history line naming where it came from; each original is closed as
    cancelled with a note naming its successor (its own history stays). One transaction.

    `title` is the request language's, or give `title_en` / `title_ko` (likewise
    `description`); both default to the old plan's.
    """
    policy.ensure(actor, policy.CHANGE, plan)
    policy.ensure(actor, policy.ADD, Plan)
    plan = Plan.objects.select_for_update().get(pk=plan.pk)
    picked = sorted({task.pk if isinstance(task, Task) else int(task) for task in carry_over})
    tasks = list(
        Task.objects.select_for_update()
        .filter(pk__in=picked, plan_id=plan.pk)
        .order_by("due_date", "ref", "pk")
    )
    refused = [t.ref for t in tasks if not t.is_open]
    missing = set(picked) - {t.pk for t in tasks}
    if refused or missing:
        refs = ", ".join(refused + [f"#{pk}" for pk in sorted(missing)])
        raise ValidationError({"tasks": message(CARRY_NOT_OPEN, refs=refs)})
    now = at or timezone.now()

    language = content_language.active_language()
    if title is not None:
        fields[content_language.localized("title", language)] = title
    if "description" in fields:
        fields[content_language.localized("description", language)] = fields.pop("description")
    texts = {}
    for field in ("title", "description"):
        names = content_language.all_columns(Plan, [field])
        given = {name: fields.pop(name) for name in names if name in fields}
        source = given if given else {name: getattr(plan, name) for name in names}
        texts.update({name: content_language.empty_to_none(source.get(name)) for name in names})
    if not (texts["title_en"] or texts["title_ko"]):
        raise ValidationError({"title": message(TITLE_REQUIRED)})
    new = Plan(
        code=code, period_start=period_start, period_end=period_end, status=status,
        time_zone=plan.time_zone, requires_evidence=plan.requires_evidence, predecessor=plan,
        title=texts["title_en"] or texts["title_ko"],
        description=texts["description_en"] or texts["description_ko"] or "",
        **texts, **fields,
    )  # fmt: skip
    _save_new(new, actor)
    for participant in plan.participations.order_by("pk"):
        _save_new(
            PlanParticipant(plan=new, organization_id=participant.organization_id,
                            role=participant.role),
            actor,
        )  # fmt: skip

    # Workstreams: parents before children; the same codes, so tasks find theirs.
    copies: dict[int, Workstream] = {}
    old_workstreams = list(plan.workstreams.prefetch_related("lead_organizations").order_by("pk"))
    for old in old_workstreams:
        copy = Workstream(
            plan=new, code=old.code, title_en=old.title_en, title_ko=old.title_ko,
            description_en=old.description_en, description_ko=old.description_ko,
            order=old.order,
        )  # fmt: skip
        _save_new(copy, actor)
        copy.lead_organizations.set(old.lead_organizations.all())
        copies[old.pk] = copy
    for old in old_workstreams:
        if old.parent_id:
            copy = copies[old.pk]
            copy.parent = copies[old.parent_id]
            copy._history_user = actor
            copy.save(update_fields=["parent"])

    carried: dict[int, Task] = {}
    for old in tasks:
        supporting = list(old.supporting_organizations.values_list("pk", flat=True))
        assignee = old.assignee if old.assignee_id and policy.assignee_candidates(
            lead_organization_id=old.lead_organization_id, supporting_organization_ids=supporting
        ).filter(pk=old.assignee_id).exists() else None  # fmt: skip
        manager = old.manager if old.manager_id and policy.manager_candidates(
            plan_id=new.pk, lead_organization_id=old.lead_organization_id,
            supporting_organization_ids=supporting,
        ).filter(pk=old.manager_id).exists() else None  # fmt: skip
        task = Task(
            plan=new,
            workstream=copies.get(old.workstream_id),
            predecessor=old,
            assignee=assignee,
            manager=manager,
            created_by=actor,
            updated_by=actor,
            title=old.title_en or old.title_ko,
            description=old.description_en or old.description_ko or "",
            **{name: getattr(old, name) for name in CARRIED_FIELDS},
        )
        task.deadline_at = Task.deadline_for(task.due_date, new.time_zone)
        task.full_clean(exclude=list(LEGACY_TOLERATED))
        task._history_user = actor
        task._change_reason = CARRIED_FROM.format(
            plan=plan.code, ref=old.ref, status=old.status, progress=old.progress
        )
        task.save()
        task.supporting_organizations.set(supporting)
        task.source_outcomes.set(old.source_outcomes.all())
        _record(
            task=task, actor=actor, kind=StatusUpdate.Kind.CREATED, at=now,
            status_to=task.status, note=task._change_reason,
        )  # fmt: skip
        carried[old.pk] = task

        note = CARRIED_TO.format(plan=new.code, ref=task.ref)
        from_status = old.status
        old.status = S.CANCELLED
        _touch(old, actor, ["status"], reason=note)
        _record(
            task=old, actor=actor, kind=StatusUpdate.Kind.TRANSITION, at=now,
            status_from=from_status, status_to=S.CANCELLED, progress=old.progress, note=note,
        )  # fmt: skip
        _announce("task.status_changed", old.pk, status_from=from_status, status_to=S.CANCELLED)
        _announce("task.created", task.pk)

    # Milestones and dependencies among the carried tasks follow them.
    for old in tasks:
        task = carried[old.pk]
        if old.parent_id in carried:
            task.parent = carried[old.parent_id]
            task.save(update_fields=["parent"])
        depends = [
            carried[pk] for pk in old.depends_on.values_list("pk", flat=True) if pk in carried
        ]
        if depends:
            task.depends_on.set(depends)
    return new


def carry_over_candidates(plan: Plan):
    """The tasks of `plan` a new version may carry over: the open ones."""
    return plan.tasks.filter(status__in=Task.OPEN_STATUSES).order_by("due_date", "ref", "pk")


# --- Memberships (identity, managed under the plan policy) ----------------------------------


def _ensure_manages(actor: User, organization: Organization) -> None:
    if not policy.organizations_managed_by(actor).filter(pk=organization.pk).exists():
        raise NotAllowed(action="manage memberships of", obj=organization)


def _ensure_may_grant(actor: User, **grant) -> None:
    refusal = policy.membership_grant_refusal(actor, **grant)
    if refusal is not None:
        raise GrantNotAllowed(*refusal)


@transaction.atomic
def membership_create(
    *, actor: User, user: User, organization: Organization, role: str
) -> Membership:
    """Give `user` a role in `organization`; the role alone grants the matching access."""
    _ensure_manages(actor, organization)
    # The user's row is locked: two grants at once cannot both find "no other membership".
    User.objects.select_for_update().filter(pk=user.pk).first()
    _ensure_may_grant(actor, user=user, organization=organization, role=role)
    membership = Membership(user=user, organization=organization, role=role)
    _save_new(membership, actor)
    membership_sync_access(user=user)
    return membership


@transaction.atomic
def membership_update(*, actor: User, membership: Membership, **fields) -> Membership:
    policy.ensure(actor, policy.CHANGE, membership)
    users = {membership.user_id} | ({fields["user"].pk} if fields.get("user") else set())
    list(User.objects.select_for_update().filter(pk__in=sorted(users)).order_by("pk"))
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    old_user = membership.user
    before = Membership(
        pk=membership.pk, user=old_user, organization=membership.organization,
        role=membership.role,
    )  # fmt: skip
    for name, value in fields.items():
        setattr(membership, name, value)
    if "organization" in fields:
        _ensure_manages(actor, membership.organization)
    _ensure_may_grant(
        actor, user=membership.user, organization=membership.organization,
        role=membership.role, membership=before,
    )  # fmt: skip
    membership.full_clean()
    membership._history_user = actor
    membership.save(update_fields=list(fields) or None)
    membership_sync_access(user=membership.user)
    if old_user.pk != membership.user_id:
        membership_sync_access(user=old_user)
    return membership


@transaction.atomic
def membership_delete(*, actor: User, membership: Membership) -> None:
    policy.ensure(actor, policy.DELETE, membership)
    _ensure_may_grant(
        actor, user=membership.user, organization=membership.organization,
        role=membership.role, membership=membership, removal=True,
    )  # fmt: skip
    user = membership.user
    membership._history_user = actor
    membership.delete()
    membership_sync_access(user=user)
