"""The policy's answers remembered for the length of one admin request.

An admin page asks the policy the same questions many times (the menu asks every model's
permissions, the change list and its actions ask `can(user, "transition", Task)` and the like,
inlines ask about their parent object...). `PolicyMemoMiddleware` opens a memo for each admin
request; while it is open, `plans.permissions.can` (and the few helpers wrapped at the end of
that module) answer a question they were already asked in this request from the memo.

Safety:
- the memo lives in a context variable set for one request and reset when it ends: nothing is
  shared between requests, threads or users; answers are keyed by the user's id as well, so a
  question about another person (a notification recipient) is never answered with the
  viewer's rights;
- the memo only holds answers read from the database as it is: the first statement of the
  request that is not a SELECT (an INSERT, UPDATE, DELETE, or a rollback to a savepoint) closes
  the memo for the rest of the request, so whatever a write changes is asked afresh;
- outside an admin request (services, the API, the workspace, tests calling the policy
  directly) nothing is remembered: the policy runs as written.

While the memo is open the viewer's memberships (organization and role) are read once, and
the policy's building blocks `_orgs` (the user's organizations, by role) and
`_coordinated_plans` are literal id lists instead of subqueries: the scopes compile faster,
run faster, and a scope resting on an empty list needs no SQL at all.

`prefetch(user, questions)` answers many model-level questions (`can(user, action, Model)`)
in ONE query (one EXISTS per question) and stores them in the open memo: the admin's menu asks
them all at once.

Building that query (every model's scope as Q objects, then SQL) cost more than running it:
the SQL text of the menu's query and of a change page's row question is kept per process
(`compiled_sql`), keyed by everything it is built from: the user (id, active, superuser,
system), the user's memberships and coordinated plans (read in the request, as above), the
questions and the language. The answers are never kept: each request runs the SQL afresh. A
build that reads anything else from the database is not kept (checked: no statement may run
while it is built), so a future scope that depends on other data stays correct, only slower.
"""

from __future__ import annotations

import contextvars
import functools
import operator
import threading
from collections import OrderedDict

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import BooleanField, Exists, ExpressionWrapper, Q, Value
from django.utils import translation

_memo: contextvars.ContextVar[dict | None] = contextvars.ContextVar("policy_memo", default=None)

# Statements that do not change data (SAVEPOINT / RELEASE SAVEPOINT come with atomic blocks).
_READS = ("SELECT", "SAVEPOINT", "RELEASE")


def _user_key(user):
    if user is None or not getattr(user, "is_authenticated", False) or user.pk is None:
        return None
    return (user.pk, user.is_active, user.is_superuser, getattr(user, "is_system", False))


def _obj_key(obj):
    if isinstance(obj, (type, tuple)):
        return ("model", obj)
    if obj is None or getattr(obj, "pk", None) is None:
        return None
    return (type(obj), obj.pk)


def active() -> bool:
    return _memo.get() is not None


def forget() -> None:
    """Close the memo for the rest of the request (after a write)."""
    memo = _memo.get()
    if memo is not None:
        memo.clear()
        memo["closed"] = True


def memoized(fn, name: str, with_obj: bool = False, alike=()):
    """`fn(user, *args)` remembered per user (and arguments) while a memo is open. `alike`:
    groups of models `fn` answers by one and the same rule (asked once for the group)."""
    groups = {model: group for group in alike for model in group}

    @functools.wraps(fn)
    def wrapper(user, *args):
        memo = _memo.get()
        user_key = _user_key(user)
        if memo is None or memo.get("closed") or user_key is None:
            return fn(user, *args)
        if with_obj:
            *head, obj = args
            obj_key = _obj_key(groups.get(obj, obj) if isinstance(obj, type) else obj)
            if obj_key is None:
                return fn(user, *args)
            key = (name, user_key, *head, obj_key)
        else:
            key = (name, user_key, *args)
        try:
            return memo[key]
        except KeyError:
            pass
        answer = fn(user, *args)
        if not memo.get("closed"):
            memo[key] = answer
        return answer

    wrapper.unmemoized = fn
    return wrapper


def _open(user):
    """(memo, user key) while a memo is open for a signed-in user, else (None, None)."""
    memo = _memo.get()
    user_key = _user_key(user)
    if memo is None or memo.get("closed") or user_key is None:
        return None, None
    return memo, user_key


def _remember(memo, key, compute):
    try:
        return memo[key]
    except KeyError:
        pass
    answer = compute()
    if not memo.get("closed"):
        memo[key] = answer
    return answer


def remember(user, name: str, compute):
    """`compute()` once a request for `user` while a memo is open (else every time): for an
    admin's own read-only questions about the viewer (e.g. "has my preferences row yet?")."""
    memo, user_key = _open(user)
    if memo is None:
        return compute()
    return _remember(memo, (name, user_key), compute)


def answered(user, action: str, model, pk) -> bool | None:
    """The memo's answer to `can(user, action, <model row pk>)` if this request asked it."""
    memo, user_key = _open(user)
    if memo is None:
        return None
    return memo.get(("can", user_key, action, (model, pk)))


def scoped(user, action: str, model):
    """`for_user(user, action, model)`, built once a request while a memo is open (a page's
    forms and inlines ask for the same choice querysets several times). Each use clones it
    (a form field's queryset does), so no rows are shared; a write closes the memo as above."""
    from . import permissions as policy

    return remember(
        user, ("for_user", action, model), lambda: policy.for_user(user, action, model)
    ).all()


def scope(user, action: str, model):
    """`scope_q(user, action, model)`, built once a request while a memo is open."""
    from . import permissions as policy

    return remember(user, ("scope_q", action, model), lambda: policy.scope_q(user, action, model))


def memberships(user) -> list[tuple[int, str]] | None:
    """The user's (organization id, role) pairs, read once a request; None without a memo."""
    from tracker.models import Membership

    memo, user_key = _open(user)
    if memo is None:
        return None
    return _remember(
        memo,
        ("memberships", user_key),
        lambda: list(
            Membership.objects.filter(user_id=user.pk)
            .order_by("organization_id")
            .values_list("organization_id", "role")
        ),
    )


def literal_orgs(fn):
    """`_orgs(user, roles=None)` as a literal id list while a memo is open."""

    @functools.wraps(fn)
    def _orgs(user, roles=None):
        pairs = memberships(user)
        if pairs is None:
            return fn(user, roles)
        return sorted({org for org, role in pairs if roles is None or role in roles})

    _orgs.unmemoized = fn
    return _orgs


def literal_coordinated_plans(fn, orgs, role_coordinator, coordinating, participant_model):
    """`_coordinated_plans(user)` as a literal id list while a memo is open."""

    @functools.wraps(fn)
    def _coordinated_plans(user):
        memo, user_key = _open(user)
        if memo is None:
            return fn(user)

        def compute():
            coordinated = orgs(user, [role_coordinator])
            if not coordinated:
                return []
            return sorted(
                set(
                    participant_model.objects.filter(
                        role=coordinating, organization_id__in=coordinated
                    ).values_list("plan_id", flat=True)
                )
            )

        return _remember(memo, ("coordinated_plans", user_key), compute)

    _coordinated_plans.unmemoized = fn
    return _coordinated_plans


def holds_role(fn, roles):
    """`fn(user)` = "has a membership with one of `roles`", from the memo's memberships."""

    @functools.wraps(fn)
    def wrapper(user):
        pairs = memberships(user)
        if pairs is None:
            return fn(user)
        return any(role in roles for _org, role in pairs)

    wrapper.unmemoized = fn
    return wrapper


# --- Compiled SQL kept per process (see the module's doc) --------------------------------------

COMPILED_MAX = 1024  # entries (a few kB of SQL each): one menu and a few row questions a user
_compiled: OrderedDict = OrderedDict()
_compiled_lock = threading.Lock()
# Stands for the row's id while a row question is built; replaced by the real id in the params.
# (Negative, so no row has it; inside the 32-bit range, which Django 5 checks integer lookups
# against.)
_ROW = -2_071_234_567


class _CountStatements:
    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def compiled_sql(user, name, build) -> tuple[str, tuple]:
    """The SQL and params of the queryset `build()` returns, built once per process for the
    same `name`, user and inputs of the policy's scopes (memberships, coordinated plans), and
    language. Not kept when building ran a statement. SQL None: the query can have no row
    (Django found so while compiling, e.g. a scope on an empty id list)."""
    from . import permissions as policy

    memo, user_key = _open(user)
    if memo is None:
        return _compile(build())
    # The scopes' inputs, read (at most once a request) before building, and part of the key.
    inputs = (tuple(memberships(user)), tuple(policy._coordinated_plans(user)))
    key = (name, user_key, inputs, translation.get_language(), connection.alias)
    with _compiled_lock:
        hit = _compiled.get(key)
        if hit is not None:
            _compiled.move_to_end(key)
            return hit
    counter = _CountStatements()
    with connection.execute_wrapper(counter):
        compiled = _compile(build())
    if counter.count == 0 and not memo.get("closed"):
        with _compiled_lock:
            _compiled[key] = compiled
            while len(_compiled) > COMPILED_MAX:
                _compiled.popitem(last=False)
    return compiled


def _compile(queryset) -> tuple[str | None, tuple]:
    try:
        sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    except EmptyResultSet:
        return None, ()
    return sql, tuple(params)


def _fetch_one(sql, params) -> dict | None:
    if sql is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        if row is None:
            return None
        return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


def prefetch(user, questions) -> None:
    """Answer `can(user, action, Model)` for every (action, Model) in `questions` in one query
    and remember the answers (no-op without an open memo, or for questions already answered,
    or for adding, which the policy answers by its own rules)."""
    from . import permissions as policy

    memo = _memo.get()
    user_key = _user_key(user)
    if memo is None or memo.get("closed") or user_key is None:
        return
    wanted = {}
    for action, model in questions:
        key = ("can", user_key, action, ("model", model))
        if action == policy.ADD or key in memo or model not in policy.SCOPES:
            continue
        wanted[f"q{len(wanted)}"] = (key, action, model)
    if not wanted:
        return
    if not (policy.is_unrestricted(user) or policy.is_signed_in(user)):
        answers = dict.fromkeys(wanted, False)
    else:
        sql, params = compiled_sql(
            user,
            (
                "prefetch",
                tuple((action, model._meta.label) for _, action, model in wanted.values()),
            ),
            lambda: policy.User.objects.filter(pk=user.pk).values(
                **{
                    name: _any_row(user, action, model)
                    for name, (_key, action, model) in wanted.items()
                }
            ),
        )
        row = _fetch_one(sql, params)
        if row is None:
            return
        answers = row
    if memo.get("closed"):
        return
    for name, (key, _action, _model) in wanted.items():
        memo[key] = bool(answers[name])


def prefetch_row(user, model, pk, actions) -> dict | None:
    """Answer `can(user, action, row)` for the row `model` `pk` and every action in `actions`
    in one query (one EXISTS per action, each the policy's scope narrowed to the row) and
    remember them; the answers as {action: bool}, None without an open memo."""
    from . import permissions as policy

    memo, user_key = _open(user)
    if memo is None:
        return None
    keys = {action: ("can", user_key, action, (model, pk)) for action in actions}
    if all(key in memo for key in keys.values()):
        return {action: memo[key] for action, key in keys.items()}
    if not (policy.is_unrestricted(user) or policy.is_signed_in(user)):
        answers = dict.fromkeys(actions, False)
    else:

        def build(pk):
            rows = model._default_manager.filter(pk=pk)
            return rows.values(
                **{
                    f"q{n}": Exists(
                        rows.filter(policy.scope_q(user, action, model)).order_by().values("pk")
                    )
                    for n, action in enumerate(actions)
                }
            )

        if type(pk) is int:
            # Built for a stand-in id, kept, and run with the row's id in its place.
            sql, params = compiled_sql(
                user, ("row", model._meta.label, tuple(actions)), lambda: build(_ROW)
            )
            if _ROW in params:
                params = tuple(pk if param == _ROW else param for param in params)
            else:  # the id did not reach the params as given: build for this row
                sql, params = _compile(build(pk))
        else:
            sql, params = _compile(build(pk))
        row = _fetch_one(sql, params)
        answers = {action: bool(row and row[f"q{n}"]) for n, action in enumerate(actions)}
    if not memo.get("closed"):
        for action, key in keys.items():
            memo[key] = answers[action]
    return answers


def _any_row(user, action, model):
    """Whether `for_user(user, action, model)` has a row, as one SQL expression. A scope that
    is an OR of conditions is asked as an OR of EXISTS, one per condition, which the database
    stops at the first true one (the user's own account answers "may see some people" without
    looking at the people named on every task in sight)."""
    from . import permissions as policy

    scope = policy.scope_q(user, action, model)
    if not scope.negated and scope.children == [("pk__in", [])]:
        return Value(False, output_field=BooleanField())  # nobody: no SQL needed
    if scope.connector == Q.OR and not scope.negated and len(scope.children) > 1:
        parts = [child if isinstance(child, Q) else Q(child) for child in scope.children]
    else:
        parts = [scope]
    rows = model._default_manager.all()
    condition = functools.reduce(
        operator.or_, (Q(Exists(rows.filter(part).order_by().values("pk"))) for part in parts)
    )
    return ExpressionWrapper(condition, output_field=BooleanField())


def _forget_on_write(execute, sql, params, many, context):
    if not sql.lstrip()[:9].upper().startswith(_READS):
        forget()
    return execute(sql, params, many, context)


class PolicyMemoMiddleware:
    """Opens the policy memo for the length of each admin request (see the module's doc)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self._prefix = None

    def _admin_prefix(self) -> str:
        if self._prefix is None:
            from django.urls import reverse

            self._prefix = reverse("admin:index")
        return self._prefix

    def __call__(self, request):
        if not request.path.startswith(self._admin_prefix()):
            return self.get_response(request)
        token = _memo.set({})
        try:
            with connection.execute_wrapper(_forget_on_write):
                return self.get_response(request)
        finally:
            _memo.reset(token)
