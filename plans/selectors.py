"""Reads of the plan domain that need scoping: the policy first, then the filters."""

import json
from dataclasses import dataclass

from django.core.exceptions import EmptyResultSet
from django.db import connection, models
from django.db.models import (
    Case,
    Count,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)

from tracker.models import Membership, User

from . import permissions as policy
from .models import Forum, Outcome, Plan, PlanParticipant, Task
from .services import WORKFLOW, Move


def coordinates_any_plan(user: User) -> bool:
    """Superusers and coordinators of a coordinating participant see whole plans."""
    if policy.is_unrestricted(user):
        return True
    if not policy.is_signed_in(user):
        return False
    return PlanParticipant.objects.filter(
        role=PlanParticipant.Role.COORDINATING,
        organization__memberships__user=user,
        organization__memberships__role=Membership.Role.COORDINATOR,
    ).exists()


def task_mine(*, user: User, queryset: QuerySet | None = None) -> QuerySet:
    """ "My tasks": open tasks the user is assigned to or manages, or that their organizations
    lead or support."""
    queryset = policy.for_user(user, policy.VIEW, queryset if queryset is not None else Task)
    orgs = Membership.objects.filter(user=user).values("organization_id")
    supported = Task.supporting_organizations.through.objects.filter(
        organization_id__in=orgs
    ).values("task_id")
    return queryset.open().filter(
        Q(assignee=user) | Q(manager=user) | Q(lead_organization_id__in=orgs) | Q(pk__in=supported)
    )


def task_allowed_moves(*, user: User, task: Task) -> list[tuple[str, Move]]:
    """The workflow moves `user` may make on `task` from its current status."""
    moves = [(to, move) for (frm, to), move in WORKFLOW.items() if frm == task.status]
    allowed = {
        action: policy.can(user, action, task)
        for action in {policy.move_action(move) for _to, move in moves}
    }
    return [(to, move) for to, move in moves if allowed[policy.move_action(move)]]


def task_list(*, user: User, filters: dict | None = None, queryset: QuerySet | None = None):
    """Tasks `user` may see, narrowed by TaskFilterSet `filters` (a QueryDict or dict).

    Raises django.core.exceptions.ValidationError naming each invalid filter.
    """
    from django.core.exceptions import ValidationError

    from .filtersets import TaskFilterSet

    scope = policy.task_view_scope(user).q  # literal ids: one query, none inside the page's
    scoped = (queryset if queryset is not None else Task.objects.all()).filter(scope)
    filterset = TaskFilterSet(filters or {}, queryset=scoped)
    if not filterset.is_valid():
        raise ValidationError(
            {
                field: [error["message"] for error in errors]
                for field, errors in filterset.errors.get_json_data().items()
            }
        )
    return filterset.qs


class IdListField(models.Field):
    """A list of ids in one column (PostgreSQL sends an array, SQLite JSON text)."""

    def get_internal_type(self):
        return "TextField"

    def from_db_value(self, value, expression, connection):
        if type(value) is list:  # PostgreSQL's array, already a new list
            return value
        if value is None:
            return []
        if isinstance(value, str):
            return json.loads(value)
        return list(value)


def _id_array(select: str) -> str:
    """SQL of the ids `select` (one column, `listed`) lists, as one value: an array on
    PostgreSQL, JSON on SQLite, in ascending order."""
    if connection.vendor == "postgresql":
        return f"ARRAY({select} ORDER BY 1)"
    return f"(SELECT json_group_array(listed) FROM ({select} ORDER BY 1))"


# What a task list row holds (`task_rows`): the columns the API shows, and the keys its cursor
# may sort by.
TASK_ROW_FIELDS = (
    "id", "plan_id", "plan__code", "plan__time_zone", "workstream_id", "ref", "title_en",
    "title_ko", "description_en", "description_ko", "lead_organization_id", "support_ids",
    "outcome_ids", "shown_assignee_id", "shown_manager_id", "shown_parent_id",
    "depends_on_ids", "start_date", "due_date", "deadline_at", "status", "priority",
    "priority_rank", "progress", "visibility", "is_overdue", "completed_at", "verified_at",
    "version", "created_at", "updated_at",
)  # fmt: skip


def task_rows(queryset: QuerySet, *, scope: "policy.TaskScope") -> QuerySet:
    """The tasks of `queryset` (already inside the reader's VIEW `scope`) as dicts of
    `TASK_ROW_FIELDS`, with what `task_attach_relations` adds (supporting organizations,
    source outcomes, visible dependencies, the parent and people the reader may see) computed
    in the SAME query: one round trip for a page, no model instances.

    The related parts are plain SQL (valid on PostgreSQL and SQLite) with the scope's literal
    ids: they cost nothing to compile. People: the assignee and manager of a task the reader
    may view are people the reader may see (decision 0010), save the system account."""
    task = f'"{Task._meta.db_table}"'
    support = Task.supporting_organizations.through._meta.db_table
    outcomes = Task.source_outcomes.through._meta.db_table
    depends = Task.depends_on.through._meta.db_table
    users = User._meta.db_table
    number = models.IntegerField()
    depends_sql = (
        f'SELECT d."to_task_id" AS listed FROM "{depends}" d WHERE d."from_task_id" = {task}."id"'
    )
    depends_params = []
    if scope.unrestricted:
        parent = policy.LiteralSQL(f'{task}."parent_id"', [], output_field=number)
        assignee = policy.LiteralSQL(f'{task}."assignee_id"', [], output_field=number)
        manager = policy.LiteralSQL(f'{task}."manager_id"', [], output_field=number)
    else:
        seen_sql, seen_params = scope.sql("v")
        depends_sql += (
            f' AND EXISTS (SELECT 1 FROM {task} v WHERE v."id" = d."to_task_id" AND {seen_sql})'
        )
        depends_params = seen_params
        parent = policy.LiteralSQL(
            f'CASE WHEN EXISTS (SELECT 1 FROM {task} v WHERE v."id" = {task}."parent_id" '
            f'AND {seen_sql}) THEN {task}."parent_id" END',
            seen_params,
            output_field=number,
        )

        def person(column):
            return policy.LiteralSQL(
                f'CASE WHEN EXISTS (SELECT 1 FROM "{users}" u WHERE u."id" = {task}."{column}" '
                f'AND u."is_system") THEN NULL ELSE {task}."{column}" END',
                [],
                output_field=number,
            )

        assignee, manager = person("assignee_id"), person("manager_id")
    listed = IdListField()
    queryset = queryset.rewrite(False) if hasattr(queryset, "rewrite") else queryset
    return queryset.annotate(
        support_ids=policy.LiteralSQL(
            _id_array(
                f'SELECT s."organization_id" AS listed FROM "{support}" s '
                f'WHERE s."task_id" = {task}."id"'
            ),
            [],
            output_field=listed,
        ),
        outcome_ids=policy.LiteralSQL(
            _id_array(
                f'SELECT o."outcome_id" AS listed FROM "{outcomes}" o '
                f'WHERE o."task_id" = {task}."id"'
            ),
            [],
            output_field=listed,
        ),
        depends_on_ids=policy.LiteralSQL(
            _id_array(depends_sql), depends_params, output_field=listed
        ),
        shown_parent_id=parent,
        shown_assignee_id=assignee,
        shown_manager_id=manager,
    ).values(*TASK_ROW_FIELDS)


@dataclass(frozen=True)
class SeenBy:
    """Who a payload is for: a person (`user`) or an organization (`organization_id`, a
    webhook's receiver). Related ids a payload names are kept only if this reader may see
    them: tasks by the policy's VIEW scope, people by its User VIEW scope."""

    user: User | None = None
    organization_id: int | None = None

    def tasks(self) -> QuerySet:
        if self.organization_id is not None:
            return Task.objects.filter(policy.organization_task_q(self.organization_id))
        return policy.for_user(self.user, policy.VIEW, Task)

    def users(self) -> QuerySet:
        if self.organization_id is not None:
            return User.objects.filter(policy.organization_user_q(self.organization_id))
        return policy.for_user(self.user, policy.VIEW, User)

    @property
    def unrestricted(self) -> bool:
        return self.organization_id is None and policy.is_unrestricted(self.user)


def seen_by(reader) -> SeenBy:
    return reader if isinstance(reader, SeenBy) else SeenBy(user=reader)


def _scope_sql(queryset: QuerySet) -> tuple[str, list] | None:
    """The scope as `SELECT id ...` SQL to embed, or None when it is empty."""
    try:
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:
        return None
    return sql, list(params)


def _seen_part(table: str, tag: int, ids: set, scope: QuerySet, unrestricted: bool):
    """SQL of the ids among `ids` the scope holds, tagged `tag`; None when none can be."""
    ids = sorted(pk for pk in ids if pk is not None)
    if not ids:
        return None
    marks = ", ".join(["%s"] * len(ids))
    sql, params = f"SELECT 0, {tag}, id FROM {table} WHERE id IN ({marks})", ids
    if unrestricted:
        return sql, params
    scoped = _scope_sql(scope)
    if scoped is None:
        return None
    return f"{sql} AND id IN ({scoped[0]})", params + scoped[1]


def task_attach_relations(tasks: list[Task], *, reader) -> list[Task]:
    """Give each task the ids of its supporting organizations, source outcomes and
    dependencies (`support_ids`, `outcome_ids`, `depends_on_ids`) and the related ids the
    payload names (`shown_parent_id`, `shown_assignee_id`, `shown_manager_id`), in ONE query
    for the page.

    `reader` (a user, or a `SeenBy`) decides what is named: a dependency or parent task the
    reader may not open, or a person outside the reader's scope, is left out (absent from
    `depends_on_ids`, None), never an error. Organizations and outcomes are public records.

    Written as plain SQL (valid on PostgreSQL and SQLite) with the policy's scopes embedded:
    it runs on every task list.
    """
    reader = seen_by(reader)
    for task in tasks:
        task.support_ids, task.outcome_ids, task.depends_on_ids = [], [], []
        task.shown_parent_id = task.shown_assignee_id = task.shown_manager_id = None
    if not tasks:
        return tasks
    by_id = {task.pk: task for task in tasks}
    ids = list(by_id)
    marks = ", ".join(["%s"] * len(ids))
    support = Task.supporting_organizations.through._meta.db_table
    outcomes = Task.source_outcomes.through._meta.db_table
    depends = Task.depends_on.through._meta.db_table
    parts = [
        (f"SELECT task_id, 1, organization_id FROM {support} WHERE task_id IN ({marks})", ids),
        (f"SELECT task_id, 2, outcome_id FROM {outcomes} WHERE task_id IN ({marks})", ids),
    ]
    depends_sql = (
        f"SELECT from_task_id, 3, to_task_id FROM {depends} WHERE from_task_id IN ({marks})"
    )
    visible_tasks = None if reader.unrestricted else _scope_sql(reader.tasks())
    if reader.unrestricted:
        parts.append((depends_sql, ids))
    elif visible_tasks is not None:
        parts.append(
            (f"{depends_sql} AND to_task_id IN ({visible_tasks[0]})", ids + visible_tasks[1])
        )
    seen = [
        _seen_part(Task._meta.db_table, 4, {t.parent_id for t in tasks}, reader.tasks(),
                   reader.unrestricted),
        _seen_part(User._meta.db_table, 5, {t.assignee_id for t in tasks}
                   | {t.manager_id for t in tasks}, reader.users(), reader.unrestricted),
    ]  # fmt: skip
    parts += [part for part in seen if part is not None]
    sql = " UNION ALL ".join(part[0] for part in parts) + " ORDER BY 1, 2, 3"
    params = [param for part in parts for param in part[1]]
    attribute = {1: "support_ids", 2: "outcome_ids", 3: "depends_on_ids"}
    seen_tasks, seen_users = set(), set()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for task_id, kind, other_id in cursor.fetchall():
            if kind == 4:
                seen_tasks.add(other_id)
            elif kind == 5:
                seen_users.add(other_id)
            else:
                getattr(by_id[task_id], attribute[kind]).append(other_id)
    for task in tasks:
        task.shown_parent_id = task.parent_id if task.parent_id in seen_tasks else None
        task.shown_assignee_id = task.assignee_id if task.assignee_id in seen_users else None
        task.shown_manager_id = task.manager_id if task.manager_id in seen_users else None
    return tasks


def task_assignee_choices(*, user: User, task: Task) -> QuerySet:
    """People `user` may make the assignee of `task`: the policy's assignee candidates (working
    members of its lead or a supporting organization, never viewers), narrowed to the lead
    organization for those who may assign but not change the task (its managers). Empty when
    `user` may not assign the task at all."""
    if not policy.can(user, policy.ASSIGN, task):
        return User.objects.none()
    if policy.can(user, policy.CHANGE, task):
        supporting = list(task.supporting_organizations.values_list("pk", flat=True))
    else:
        supporting = []
    candidates = policy.assignee_candidates(
        lead_organization_id=task.lead_organization_id, supporting_organization_ids=supporting
    )
    return candidates.filter(is_active=True, is_system=False).order_by(
        "first_name", "last_name", "username"
    )


def task_assignee_choices_for(*, user: User, tasks) -> QuerySet:
    """People `user` may make the assignee of every one of `tasks` (an admin action on several
    tasks at once): the intersection of `task_assignee_choices`. Empty without tasks."""
    tasks = list(tasks)
    if not tasks:
        return User.objects.none()
    choices = task_assignee_choices(user=user, task=tasks[0])
    for task in tasks[1:]:
        choices = choices.filter(pk__in=task_assignee_choices(user=user, task=task).values("pk"))
    return choices


def status_updates_attach_people(updates, *, reader) -> list:
    """Give each status update the person ids its payload names (`shown_author_id`,
    `shown_assignee_from_id`, `shown_assignee_to_id`): only people inside the reader's scope,
    None otherwise. ONE query for the page."""
    reader = seen_by(reader)
    updates = list(updates)
    fields = ("author_id", "assignee_from_id", "assignee_to_id")
    wanted = {getattr(update, name) for update in updates for name in fields} - {None}
    if not wanted:
        seen = set()
    elif reader.unrestricted:
        seen = wanted
    else:
        seen = set(reader.users().filter(pk__in=wanted).values_list("pk", flat=True))
    for update in updates:
        for name in fields:
            value = getattr(update, name)
            setattr(update, f"shown_{name}", value if value in seen else None)
    return updates


# --- Outcome scorecard -----------------------------------------------------------------------

SCORECARD_CATEGORIES = ("fulfilled", "in_implementation", "not_started", "no_task")


def implementing_tasks(*, user: User) -> QuerySet:
    """The tasks that count for an outcome read by `user`: those the user may see, not
    cancelled."""
    return policy.for_user(user, policy.VIEW, Task).exclude(status=Task.Status.CANCELLED)


def outcome_category(implementing: QuerySet) -> Case:
    """An annotation on Outcome rows: its scorecard category ("fulfilled",
    "in_implementation", "not_started", "no_task") from its tasks among `implementing`
    (see `outcome_scorecard`)."""
    mine = implementing.filter(source_outcomes=OuterRef("pk"))
    return Case(
        When(~Exists(mine), then=Value("no_task")),
        When(~Exists(mine.exclude(status__in=Task.COMPLETE_STATUSES)), then=Value("fulfilled")),
        When(~Exists(mine.exclude(status=Task.Status.PLANNED)), then=Value("not_started")),
        default=Value("in_implementation"),
        output_field=models.CharField(),
    )


def outcome_scorecard(*, user: User, plan: Plan | None = None, forum: Forum | None = None):
    """Per forum, how many of its outcomes are fulfilled, in implementation, not started, or
    have no task yet: a list of dicts {"forum", "fulfilled", "in_implementation",
    "not_started", "no_task", "total"}, forums in their usual order (latest first), only
    forums with at least one outcome counted. TWO queries whatever the number of rows.

    Outcomes counted are those the policy lets `user` see (public records: every signed-in
    user). An outcome's category comes from its implementing tasks that `user` may see and
    that are not cancelled (so a figure never reveals a task the reader may not open):
    - fulfilled: every such task is done or verified (done counts: the work is finished,
      verification is the coordinator's check of it, shown on the task itself);
    - in implementation: at least one has started (any status but planned), not all done;
    - not started: every such task is still planned;
    - no task yet: there is none.

    `forum=` keeps that forum's outcomes. `plan=` keeps what that plan took up:
    - outcomes that are sources of the plan's (visible, non-cancelled) tasks, categorized
      from the plan's tasks alone (another plan's work on the same outcome does not count);
    - plus "no task yet": outcomes with no visible non-cancelled task in ANY plan whose forum
      is tied to the plan, i.e. the forum has an outcome that is a source of a visible task of
      the plan (any status). An outcome only other plans implement is left out.
    """
    outcomes = policy.for_user(user, policy.VIEW, Outcome)
    if forum is not None:
        outcomes = outcomes.filter(forum_id=forum.pk)
    tasks = implementing_tasks(user=user)
    implementing = tasks if plan is None else tasks.filter(plan_id=plan.pk)
    if plan is not None:
        plan_tasks = policy.for_user(user, policy.VIEW, Task).filter(plan_id=plan.pk)
        tied_forums = Outcome.objects.filter(tasks__in=plan_tasks.values("pk")).values("forum_id")
        outcomes = outcomes.filter(
            Exists(implementing.filter(source_outcomes=OuterRef("pk")))
            | (~Exists(tasks.filter(source_outcomes=OuterRef("pk"))) & Q(forum_id__in=tied_forums))
        )
    rows = (
        outcomes.annotate(scorecard_category=outcome_category(implementing))
        .order_by()
        .values("forum_id", "scorecard_category")
        .annotate(n=Count("pk"))
    )
    counts: dict[int, dict] = {}
    for row in rows:
        entry = counts.setdefault(row["forum_id"], dict.fromkeys(SCORECARD_CATEGORIES, 0))
        entry[row["scorecard_category"]] += row["n"]
    if not counts:
        return []
    result = []
    for each in Forum.objects.filter(pk__in=counts):
        entry = counts[each.pk]
        result.append({"forum": each, **entry, "total": sum(entry.values())})
    return result


# --- Forums and outcomes as their pages show them ---------------------------------------------


def forum_list(*, user: User) -> QuerySet:
    """Forums `user` may see, latest first (one query)."""
    return policy.for_user(user, policy.VIEW, Forum).order_by("-held_on", "name", "pk")


def forum_get(*, user: User, pk: int) -> Forum | None:
    """One forum `user` may see, with its hosts; None when the policy hides it or there is
    none (two queries)."""
    return forum_list(user=user).filter(pk=pk).prefetch_related("hosts").first()


def outcome_list(*, user: User, now=None) -> QuerySet:
    """Outcomes `user` may see, each with its forum and parties and what its implementing
    tasks add up to, counting only tasks the user may see (cancelled ones never count):
    `task_count`, `done_count`, `overdue_count`, `progress_rollup` (Outcome.with_progress),
    `scorecard_category` (see `outcome_scorecard`) and `last_due_date` with
    `last_due_zone`: the latest due date of those tasks and the time zone it ends in (its
    plan's), the outcome's deadline. Two queries (rows, then parties), whatever the rows."""
    visible = policy.for_user(user, policy.VIEW, Task)
    implementing = implementing_tasks(user=user)
    last = implementing.filter(source_outcomes=OuterRef("pk")).order_by("-deadline_at", "-pk")
    return (
        policy.for_user(user, policy.VIEW, Outcome)
        .with_progress(now=now, tasks=visible)
        .annotate(
            scorecard_category=outcome_category(implementing),
            last_due_date=Subquery(last.values("due_date")[:1]),
            last_due_zone=Subquery(last.values("plan__time_zone")[:1]),
        )
        .select_related("forum")
        .prefetch_related("parties")
        .order_by("forum__held_on", "title", "pk")
    )


def outcome_get(*, user: User, pk: int, now=None) -> Outcome | None:
    """One outcome `user` may see, annotated as in `outcome_list`; None when hidden."""
    return outcome_list(user=user, now=now).filter(pk=pk).first()


def outcome_task_list(*, user: User, outcome: Outcome, now=None) -> QuerySet:
    """The tasks implementing `outcome` that `user` may see: open and done ones by deadline,
    cancelled ones last (shown, never counted), with what a row shows (one query)."""
    return (
        policy.for_user(user, policy.VIEW, Task)
        .filter(source_outcomes=outcome.pk)
        .with_overdue(now)
        .select_related("plan", "workstream", "lead_organization", "assignee")
        .annotate(
            cancelled_last=Case(
                When(status=Task.Status.CANCELLED, then=Value(1)),
                default=Value(0),
                output_field=models.IntegerField(),
            )
        )
        .order_by("cancelled_last", "deadline_at", "plan__code", "ref", "pk")
    )
