"""Writes of the tracker app."""

import datetime as dt

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy

from . import signals, tokens
from .models import ApiToken, Membership, User, WorkerHeartbeat


def heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    """Stamp the heartbeat row of `hostname`; safe for concurrent workers."""
    with transaction.atomic():
        now = timezone.now()
        beat, created = WorkerHeartbeat.objects.select_for_update().get_or_create(
            hostname=hostname, defaults={"last_seen_at": now, "beats": 1}
        )
        if not created:
            WorkerHeartbeat.objects.filter(pk=beat.pk).update(
                last_seen_at=now, beats=F("beats") + 1
            )
            beat.refresh_from_db()
    return beat


SYSTEM_USERNAME = "system"


def system_user() -> User:
    """The account automated work acts as (Celery tasks, management commands).

    It cannot sign in (inactive, unusable password) and the policy lets it do everything; the
    history records its changes under its name.
    """
    user = User.objects.filter(is_system=True).first()
    if user is None:
        user, _ = User.objects.get_or_create(
            username=SYSTEM_USERNAME,
            defaults={"is_system": True, "is_active": False, "first_name": "System"},
        )
        if not user.is_system:
            raise RuntimeError(f"the username {SYSTEM_USERNAME!r} is taken by a person")
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


# One group per membership role; a user's groups follow their memberships.
ROLE_GROUPS = {
    Membership.Role.COORDINATOR: "Coordinators",
    Membership.Role.MANAGER: "Managers",
    Membership.Role.CONTRIBUTOR: "Contributors",
    Membership.Role.VIEWER: "Viewers",
}


def membership_sync_access(*, user: User) -> None:
    """Give a user the role groups of their memberships and admin access when they have any;
    take away everything they reach the system with when they have none left.

    The permission policy decides what they see and do; the groups name their roles (for
    Django's tools and reports), so no per-user checkbox is ever needed.
    """
    roles = set(Membership.objects.filter(user=user).values_list("role", flat=True))
    wanted = Group.objects.filter(name__in=[ROLE_GROUPS[role] for role in roles])
    role_groups = Group.objects.filter(name__in=ROLE_GROUPS.values())
    user.groups.remove(*role_groups.exclude(pk__in=wanted))
    user.groups.add(*wanted)
    if roles and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    elif not roles and not user.is_superuser and not user.is_system:
        user_revoke_access(user=user)


def user_revoke_access(*, user: User) -> None:
    """A person who belongs to no organization any more: no admin access (staff flag), every
    session ended (a new session epoch: Django drops sessions whose hash no longer matches on
    their next request, whatever the session backend), every API token revoked, and whatever
    other apps hold for them revoked too (`signals.access_revoked`: the calendar feed).

    Rejoining an organization gives back admin access; tokens and feeds are made anew."""
    now = timezone.now()
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(is_staff=False, session_epoch=F("session_epoch") + 1)
        user.refresh_from_db(fields=["is_staff", "session_epoch"])
        ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=now)
        signals.access_revoked.send(sender=User, user=user)


TOKEN_OWNER_ONLY = gettext_lazy(
    "Only the user or a superuser can create or revoke that user's tokens."
)
TOKEN_EXPIRY_PAST = gettext_lazy("The expiry must be in the future.")


def _token_manager(actor: User, owner: User) -> None:
    if not (actor.is_active and (actor.pk == owner.pk or actor.is_superuser)):
        raise PermissionDenied(TOKEN_OWNER_ONLY)


@transaction.atomic
def api_token_create(
    *, actor: User, user: User, name: str, scope: str = ApiToken.Scope.READ, expires_at=None
) -> tuple[ApiToken, str]:
    """Create a token for `user`; returns it with the full token text, shown only this once."""
    _token_manager(actor, user)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": TOKEN_EXPIRY_PAST})
    prefix, secret, full = tokens.new_token()
    token = ApiToken(
        user=user,
        name=name,
        scope=scope,
        expires_at=expires_at,
        prefix=prefix,
        key_hash=tokens.hash_secret(secret),
    )
    token.full_clean()
    token.save()
    return token, full


@transaction.atomic
def api_token_revoke(*, actor: User, token: ApiToken) -> ApiToken:
    _token_manager(actor, token.user)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


# Last-used stamps are written at most this often per token, not on every request.
LAST_USED_RESOLUTION_SECONDS = 60

# Columns other apps add to the token's one query: name -> a function of the SQL naming the
# user's id, returning a RawSQL (its `sql` and `params` are used); its value is set on the
# token's user under the same name. `plans` adds the reader's organization and plan ids, so
# its scopes need no query of their own.
TOKEN_USER_EXTRAS: dict = {}


_TOKEN_SQL: dict = {}


def _token_statement(connection) -> tuple:
    """The token lookup's SQL (token, its user, the extras), written once per process and
    database: the statement never changes but the prefix, and building it through the ORM
    on every request cost as much CPU as running it. With each column's converters."""
    key = (connection.alias, tuple(TOKEN_USER_EXTRAS))
    statement = _TOKEN_SQL.get(key)
    if statement is None:
        quote = connection.ops.quote_name
        token_table, user_table = ApiToken._meta.db_table, User._meta.db_table
        token_fields, user_fields = ApiToken._meta.concrete_fields, User._meta.concrete_fields
        columns, params, converters = [], [], []
        for table, fields in ((token_table, token_fields), (user_table, user_fields)):
            for field in fields:
                column = field.get_col(table)
                found = connection.ops.get_db_converters(column) + field.get_db_converters(
                    connection
                )
                if found:
                    converters.append((len(columns), found, column))
                columns.append(f"{quote(table)}.{quote(field.column)}")
        for extra in TOKEN_USER_EXTRAS.values():
            expression = extra(f"{quote(token_table)}.{quote('user_id')}")
            found = expression.output_field.get_db_converters(connection)
            if found:
                converters.append((len(columns), found, expression))
            columns.append(expression.sql)
            params += list(expression.params)
        sql = (
            f"SELECT {', '.join(columns)} FROM {quote(token_table)} "
            f"INNER JOIN {quote(user_table)} ON ({quote(token_table)}.{quote('user_id')} = "
            f"{quote(user_table)}.{quote('id')}) WHERE {quote(token_table)}.{quote('prefix')} = %s"
        )
        statement = _TOKEN_SQL[key] = (
            sql,
            params,
            converters,
            [field.attname for field in token_fields],
            [field.attname for field in user_fields],
        )
    return statement


def _token_with_user(prefix: str) -> ApiToken | None:
    """The token of `prefix` with its user (and the TOKEN_USER_EXTRAS set on the user), as
    `ApiToken.objects.select_related("user")` would load them: one query."""
    from django.db import connections, router

    alias = router.db_for_read(ApiToken)
    connection = connections[alias]
    sql, params, converters, token_names, user_names = _token_statement(connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    row = list(row)
    for index, functions, expression in converters:
        for convert in functions:
            row[index] = convert(row[index], expression, connection)
    n, m = len(token_names), len(token_names) + len(user_names)
    token = ApiToken.from_db(alias, token_names, row[:n])
    user = User.from_db(alias, user_names, row[n:m])
    for name, value in zip(TOKEN_USER_EXTRAS, row[m:], strict=True):
        setattr(user, name, value)
    ApiToken._meta.get_field("user").set_cached_value(token, user)
    return token


def api_token_authenticate(raw: str) -> ApiToken | None:
    """The usable token `raw` names, or None. Stamps its last use (coarsely)."""
    parsed = tokens.parse(raw)
    if parsed is None:
        return None
    prefix, secret = parsed
    token = _token_with_user(prefix)
    now = timezone.now()
    if token is None or not tokens.matches(secret, token.key_hash) or not token.is_usable(now):
        return None
    if not token.user.is_active:
        return None
    stale = now - dt.timedelta(seconds=LAST_USED_RESOLUTION_SECONDS)
    if token.last_used_at is None or token.last_used_at < stale:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


PREFERENCE_FIELDS = frozenset({"first_name", "last_name", "time_zone", "language"})


@transaction.atomic
def user_update_preferences(*, user: User, **fields) -> User:
    """A user changes their own name, time zone or language."""
    refused = set(fields) - PREFERENCE_FIELDS
    if refused:
        raise ValidationError({name: "This field cannot be changed here." for name in refused})
    for name, value in fields.items():
        setattr(user, name, value)
    user.full_clean()
    user.save(update_fields=list(fields) or None)
    return user
