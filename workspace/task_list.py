"""The workspace's task list: the API's filters, sortable columns and cursor pages.

Filtering is the API's: the query string goes as it is to `plans.selectors.task_list`, which
scopes by the one policy and then applies `plans.filtersets.TaskFilterSet`, so `/tasks/?...`
lists exactly what `GET /api/v1/tasks/?...` does, and a bad value is a message naming the
parameter. This module adds only what a page needs on top: the sort order of its columns,
keyset cursors over that order, the filter form's choices (each from the policy's scopes)
and the columns' values (an assignee is named only to those the policy lets see them, as in
the API).

Cursors are keyset positions (the last row's sort value and id), signed, so a page never
shifts when rows are added and a hand-made cursor is refused with a message, not a 500.
The default order is the API's (`due_date`, `id`).
"""

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

from django.core import signing
from django.core.exceptions import ValidationError
from django.db.models import (
    Case,
    CharField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Concat, NullIf, Trim
from django.http import QueryDict
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from plans import permissions as policy
from plans import selectors as plan_selectors
from plans.filtersets import TaskFilterSet
from plans.models import Plan, Task, Workstream
from tracker.models import Organization, User

PAGE_SIZE = 50
SORT_PARAM = "sort"
CURSOR_PARAM = "cursor"
DEFAULT_SORT = "due"
# Every parameter the API's FilterSet reads; the page keeps them all across its links.
FILTER_PARAMS = tuple(TaskFilterSet.base_filters)
ROW_RELATIONS = ("plan", "workstream", "lead_organization", "assignee")
CURSOR_SALT = "workspace.task_list.cursor"
# A cursor carries the last row's sort value: a 300-character Korean title fits with room.
MAX_CURSOR_LENGTH = 4000

BAD_SORT = _("Choose one of the table's columns to sort by.")
BAD_CURSOR = _("This page link is not valid (any more): start again from the first page.")

# Labels of the query parameters, for the form and for the messages naming a bad one.
PARAM_LABELS = {
    "q": pgettext_lazy("task list", "Search"),
    "status": _("Status"),
    "priority": _("Priority"),
    "overdue": _("Overdue"),
    "plan": _("Plan"),
    "workstream": _("Workstream"),
    "organization": pgettext_lazy("task list", "Organization (lead or supporting)"),
    "lead_organization": _("Lead organization"),
    "assignee": _("Assignee"),
    "manager": pgettext_lazy("task list", "Manager"),
    "source_outcome": pgettext_lazy("task list", "Source outcome"),
    "forum": pgettext_lazy("task list", "Forum"),
    "due_after": pgettext_lazy("task list", "Due from"),
    "due_before": pgettext_lazy("task list", "Due until"),
    "updated_after": pgettext_lazy("task list", "Changed after"),
    SORT_PARAM: pgettext_lazy("task list", "Sort"),
    CURSOR_PARAM: pgettext_lazy("task list", "Page"),
}


def _rank(field: str, values) -> Case:
    return Case(
        *[When(**{field: value}, then=Value(rank)) for rank, value in enumerate(values)],
        output_field=IntegerField(),
    )


# Statuses in workflow order; priorities by rank (critical last, first when descending),
# as the API's `ordering=priority`.
STATUS_RANK = _rank("status", Task.Status.values)
PRIORITY_RANK = _rank("priority", Task.Priority.values)


def _assignee_name() -> Case:
    """The name shown for the assignee ('' when none or not shown), to sort by."""
    full = Trim(Concat("assignee__first_name", Value(" "), "assignee__last_name"))
    return Case(
        When(assignee_shown=True, then=Coalesce(NullIf(full, Value("")), "assignee__username")),
        default=Value(""),
        output_field=CharField(),
    )


def _organization_name():
    """The lead organization's name as shown in the viewer's language."""
    if translation.get_language() == "ko":
        return Coalesce(
            NullIf("lead_organization__name_ko", Value("")),
            "lead_organization__name",
            output_field=CharField(),
        )
    return F("lead_organization__name")


@dataclass(frozen=True)
class Column:
    key: str
    label: object
    sort_key: object  # a callable returning the expression the column sorts by
    to_python: object = None  # turns a cursor's stored value back into the column's type
    numeric: bool = False


COLUMNS = (
    Column("ref", pgettext_lazy("task list", "Ref"), lambda: F("ref")),
    Column("title", pgettext_lazy("task list", "Title"), lambda: F("title")),
    Column("status", _("Status"), lambda: STATUS_RANK),
    Column("due", _("Due"), lambda: F("due_date"), to_python=dt.date.fromisoformat),
    Column("priority", _("Priority"), lambda: PRIORITY_RANK),
    Column("assignee", _("Assignee"), _assignee_name),
    Column("organization", _("Lead organization"), _organization_name),
    Column("progress", _("Progress"), lambda: F("progress"), numeric=True),
)
SORTS = {column.key: column for column in COLUMNS}


class TaskListError(Exception):
    """Bad input: `errors` maps each parameter to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)
        self.errors = errors


def parse_sort(params: QueryDict) -> tuple[str, bool]:
    """(column key, descending) from `?sort=due` or `?sort=-due`."""
    raw = params.get(SORT_PARAM, "").strip() or DEFAULT_SORT
    descending = raw.startswith("-")
    key = raw[1:] if descending else raw
    if key not in SORTS:
        raise TaskListError({SORT_PARAM: [str(BAD_SORT)]})
    return key, descending


def filtered(*, user: User, params: QueryDict) -> QuerySet:
    """The tasks `user` may see, narrowed by the API's filters in `params`: exactly the
    selector the API's rules come from. Raises TaskListError naming each bad filter."""
    filters = QueryDict(mutable=True)
    for name in FILTER_PARAMS:
        if name in params:
            filters.setlist(name, params.getlist(name))
    try:
        return plan_selectors.task_list(user=user, filters=filters)
    except ValidationError as exc:
        raise TaskListError(exc.message_dict) from None


def rows(*, user: User, params: QueryDict, now: dt.datetime | None = None) -> QuerySet:
    """The filtered tasks with what a row shows, sorted by the chosen column (then id)."""
    errors = {}
    try:
        key, descending = parse_sort(params)
    except TaskListError as exc:
        errors.update(exc.errors)
    try:
        queryset = filtered(user=user, params=params)
    except TaskListError as exc:
        errors = {**exc.errors, **errors}
    if errors:
        raise TaskListError(errors)
    shown = policy.for_user(user, policy.VIEW, User).filter(pk=OuterRef("assignee_id"))
    queryset = (
        queryset.with_overdue(now or timezone.now())
        .select_related(*ROW_RELATIONS)
        .annotate(assignee_shown=Exists(shown))
        .annotate(sort_key=SORTS[key].sort_key())
    )
    prefix = "-" if descending else ""
    return queryset.order_by(f"{prefix}sort_key", f"{prefix}id")


# --- Cursor pages ---------------------------------------------------------------------------


def _encode(sort: str, value, pk: int, before: bool) -> str:
    if isinstance(value, dt.date):
        value = value.isoformat()
    payload = {"s": sort, "v": value, "i": pk, "b": before}
    return signing.dumps(payload, salt=CURSOR_SALT, compress=True)


def _decode(cursor: str, sort: str, descending: bool):
    """(value, id, before) of a cursor written for this sort; TaskListError otherwise."""
    invalid = TaskListError({CURSOR_PARAM: [str(BAD_CURSOR)]})
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise invalid
    try:
        data = signing.loads(cursor, salt=CURSOR_SALT)
    except signing.BadSignature:
        raise invalid from None
    sort_term = f"-{sort}" if descending else sort
    if not isinstance(data, dict) or data.get("s") != sort_term:
        raise invalid  # written for another order: its position means nothing here
    value, pk, before = data.get("v"), data.get("i"), data.get("b")
    convert = SORTS[sort].to_python
    try:
        value = convert(value) if convert else value
    except (TypeError, ValueError):
        raise invalid from None
    if not isinstance(pk, int) or not isinstance(before, bool):
        raise invalid
    return value, pk, before


@dataclass
class Page:
    tasks: list
    next_cursor: str | None
    previous_cursor: str | None


def page(queryset: QuerySet, params: QueryDict, size: int | None = None) -> Page:
    """One page of `rows()` after (or before) the cursor in `params`: one query."""
    size = size or PAGE_SIZE
    sort, descending = parse_sort(params)
    sort_term = f"-{sort}" if descending else sort
    cursor = params.get(CURSOR_PARAM, "")
    before = False
    if cursor:
        value, pk, before = _decode(cursor, sort, descending)
        # Rows after the position in the list's own direction, or before it going back.
        forward = before == descending
        op = "gt" if forward else "lt"
        queryset = queryset.filter(
            Q(**{f"sort_key__{op}": value}) | Q(sort_key=value, **{f"id__{op}": pk})
        )
        if before:
            queryset = queryset.reverse()
    tasks = list(queryset[: size + 1])
    more = len(tasks) > size
    tasks = tasks[:size]
    if before:
        tasks.reverse()
    has_next = (more and not before) or (bool(cursor) and before)
    has_previous = (more and before) or (bool(cursor) and not before)
    first, last = (tasks[0], tasks[-1]) if tasks else (None, None)
    return Page(
        tasks=tasks,
        next_cursor=_encode(sort_term, last.sort_key, last.pk, False)
        if has_next and last
        else None,
        previous_cursor=_encode(sort_term, first.sort_key, first.pk, True)
        if has_previous and first
        else None,
    )


# --- Links ----------------------------------------------------------------------------------


def kept_params(params: QueryDict) -> list[tuple[str, str]]:
    """The filters of `params` (every FilterSet parameter given, non-empty), in order."""
    return [
        (name, value) for name in FILTER_PARAMS for value in params.getlist(name) if value != ""
    ]


def query(params: QueryDict, **changes) -> str:
    """`?filters&sort=...&cursor=...` from `params` with `changes` (None drops one)."""
    pairs = kept_params(params)
    values = {SORT_PARAM: params.get(SORT_PARAM, ""), CURSOR_PARAM: None}
    values.update(changes)
    pairs += [(name, value) for name, value in values.items() if value]
    return "?" + urlencode(pairs) if pairs else "?"


def sort_links(params: QueryDict) -> list[dict]:
    """Each column's header: its label, link and aria-sort state."""
    try:
        current, descending = parse_sort(params)
    except TaskListError:
        current, descending = DEFAULT_SORT, False
    headers = []
    for column in COLUMNS:
        active = column.key == current
        next_descending = active and not descending
        headers.append(
            {
                "key": column.key,
                "label": column.label,
                "numeric": column.numeric,
                "aria_sort": ("descending" if descending else "ascending") if active else "",
                "next": "descending" if next_descending else "ascending",
                "query": query(
                    params, **{SORT_PARAM: f"-{column.key}" if next_descending else column.key}
                ),
            }
        )
    return headers


# --- The filter form's choices: only what the viewer may see ------------------------------


def _person(user: User) -> str:
    return user.get_full_name() or user.username


def _org_label(organization: Organization) -> str:
    if translation.get_language() == "ko" and organization.name_ko:
        return organization.name_ko
    return organization.name


def filter_choices(*, user: User) -> dict[str, list[tuple[str, str]]]:
    """Choices of the filter form, each from the policy's scopes (four queries): the plans
    and workstreams the viewer sees, the organizations leading or supporting a task they
    see, and the assignees of those tasks whom the policy lets them see."""
    visible = policy.for_user(user, policy.VIEW, Task)
    plans = policy.for_user(user, policy.VIEW, Plan).order_by("code")
    workstreams = (
        policy.for_user(user, policy.VIEW, Workstream)
        .select_related("plan")
        .order_by("plan__code", "order", "code")
    )
    supporting = Task.supporting_organizations.through.objects.filter(
        task_id__in=visible.values("pk")
    ).values("organization_id")
    organizations = Organization.objects.filter(
        Q(pk__in=visible.values("lead_organization_id")) | Q(pk__in=supporting)
    )
    people = policy.for_user(user, policy.VIEW, User).filter(
        pk__in=visible.filter(assignee__isnull=False).values("assignee_id")
    )
    return {
        "plan": [(str(plan.pk), f"{plan.code} · {plan.title}") for plan in plans],
        "workstream": [
            (str(ws.pk), f"{ws.plan.code} · {ws.code} · {ws.title}") for ws in workstreams
        ],
        "organization": sorted(
            ((str(org.pk), _org_label(org)) for org in organizations),
            key=lambda choice: choice[1].casefold(),
        ),
        "assignee": sorted(
            ((str(person.pk), _person(person)) for person in people),
            key=lambda choice: choice[1].casefold(),
        ),
    }
