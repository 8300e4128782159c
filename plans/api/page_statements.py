"""The task list's first page as a statement compiled once, then only run (issue 11).

An integration polls the first page of the same list again and again. Building that page's
queryset (the scope, the named filters, the ordering, the related-id annotations, `.values()`)
and compiling it cost about as much CPU as everything else in the request. What it builds is
a function of the request's parameters, the reader (id and scope, with its literal ids as
read by this request's token query), the language and time zone, and the instant the overdue
flag is computed against. So the first time a page is built through the ordinary path
(filter backends, `task_rows`, the cursor paginator), its SQL, its parameters and the
converters of its columns are kept, keyed by all of that except the instant, whose
parameter slots are remembered and filled with this request's `now` when the statement is
run again. The rows are converted exactly as `.values()` converts them, and the paginator
runs its own code over them (`Cursor.paginate_queryset` with a `CachedPage` in place of the
queryset).

It is kept only when it is safe to:
- PostgreSQL only (SQLite's adapters turn the instant into text: its slot could not be found);
- first pages only (no `cursor` parameter): the page integrations poll;
- the page query is the ONLY statement run while the page was built and fetched (a filter
  whose validation reads the database, an organization id for instance, is never skipped);
- the SQL and parameters compiled again from the same queryset equal what was run, every
  instant among the parameters is this request's `now` (found by identity), and there is one.

The data is read afresh by every request: nothing but the statement is kept. The cache lives
on the database connection object (one per thread), bounded (`MAX_ENTRIES`, least recently
used out first). `API_TASK_PAGE_STATEMENTS=0` turns it off.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass

from django.conf import settings
from django.db import connections
from django.utils import timezone, translation

MAX_ENTRIES = 128
CURSOR_PARAMETER = "cursor"


@dataclass(frozen=True)
class Entry:
    sql: str
    params: tuple
    now_slots: tuple[int, ...]
    converters: tuple  # ((position, (functions, expression)), ...) as the compiler lists them
    names: tuple[str, ...]
    col_count: int
    ordering: tuple[str, ...]
    paginator_ordering: object  # as the paginator computed it (its type too)
    limit: int

    def rows(self, connection, now: dt.datetime) -> list[dict]:
        params = list(self.params)
        for slot in self.now_slots:
            params[slot] = now
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            fetched = cursor.fetchall()
        names, col_count = self.names, self.col_count
        if not self.converters:
            return [dict(zip(names, row[:col_count], strict=True)) for row in fetched]
        result = []
        for fetched_row in fetched:  # SQLCompiler.apply_converters, with the same arguments
            row = list(fetched_row[:col_count])
            for position, (functions, expression) in self.converters:
                value = row[position]
                for convert in functions:
                    value = convert(value, expression, connection)
                row[position] = value
            result.append(dict(zip(names, row, strict=True)))
        return result


class CachedPage:
    """What the cursor paginator needs of a queryset for a first page, served by an Entry."""

    def __init__(self, entry: Entry, connection, now: dt.datetime):
        self.entry, self.connection, self.now = entry, connection, now
        self.kept_ordering = copy.copy(entry.paginator_ordering)

    def order_by(self, *fields):
        if tuple(fields) != self.entry.ordering:
            raise AssertionError("a kept page statement asked for another ordering")
        return self

    def __getitem__(self, window):
        if window != slice(0, self.entry.limit):
            raise AssertionError("a kept page statement asked for another window")
        return self

    def __iter__(self):
        return iter(self.entry.rows(self.connection, self.now))


def enabled(request, alias: str) -> bool:
    return (
        settings.API_TASK_PAGE_STATEMENTS
        and connections[alias].vendor == "postgresql"
        and CURSOR_PARAMETER not in request.query_params
    )


def key(request, scope, alias: str) -> tuple:
    scope_sql, scope_params = scope.sql("t")
    return (
        alias,
        request.user.pk,
        scope.unrestricted,
        scope_sql,
        tuple(scope_params),
        translation.get_language(),
        timezone.get_current_timezone_name(),
        tuple(sorted((name, tuple(values)) for name, values in request.query_params.lists())),
    )


def _cache(connection) -> OrderedDict:
    cache = getattr(connection, "_task_page_statements", None)
    if cache is None:
        cache = connection._task_page_statements = OrderedDict()
    return cache


def get(connection, cache_key) -> Entry | None:
    cache = _cache(connection)
    entry = cache.get(cache_key)
    if entry is not None:
        cache.move_to_end(cache_key)
    return entry


class Recorder:
    """An execute wrapper noting every statement run (its SQL and parameters)."""

    def __init__(self):
        self.statements = []

    def __call__(self, execute, sql, params, many, context):
        self.statements.append((sql, params, many))
        return execute(sql, params, many, context)


def keep(connection, cache_key, rows_queryset, paginator, recorder: Recorder, now) -> None:
    """Keep the statement of the page just served, if it is safe to (see the module doc)."""
    if len(recorder.statements) != 1:
        return
    run_sql, run_params, many = recorder.statements[0]
    if many or paginator.cursor is not None:
        return
    ordering = tuple(paginator.ordering)
    limit = paginator.page_size + 1
    final = rows_queryset.order_by(*ordering)[0:limit]
    compiler = final.query.get_compiler(final.db)
    sql, params = compiler.as_sql()
    params = tuple(params)
    if sql != run_sql or params != tuple(run_params or ()):
        return
    now_slots = tuple(n for n, value in enumerate(params) if value is now)
    # Any other instant may be a clock reading of its own (a filter's "now"): not kept.
    others = [v for v in params if isinstance(v, dt.datetime) and v is not now]
    if not now_slots or others:
        return
    query = final.query
    if query.selected:  # as ValuesIterable names the columns
        names = tuple(query.selected)
    else:
        names = (*query.extra_select, *query.values_select, *query.annotation_select)
    fields = [column[0] for column in compiler.select[0 : compiler.col_count]]
    if compiler.has_composite_fields(fields):
        return
    entry = Entry(
        sql=sql,
        params=params,
        now_slots=now_slots,
        converters=tuple(compiler.get_converters(fields).items()),
        names=tuple(names),
        col_count=compiler.col_count,
        ordering=ordering,
        paginator_ordering=copy.copy(paginator.ordering),
        limit=limit,
    )
    if len(entry.names) != entry.col_count:
        return
    cache = _cache(connection)
    cache[cache_key] = entry
    cache.move_to_end(cache_key)
    while len(cache) > MAX_ENTRIES:
        cache.popitem(last=False)
