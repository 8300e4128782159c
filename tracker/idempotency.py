"""Idempotent POSTs with the `Idempotency-Key` header (IETF draft
httpapi-idempotency-key-header; docs/integration/idempotency.md says it for integrators).

Every POST under /api/ may carry `Idempotency-Key: <up to 255 printable ASCII characters>`
(a UUID is the usual choice; the draft's quoted form `"..."` is taken too). Then:

- Keys belong to the caller: to the API token, or to the user for a browser session. The same
  key from another token is another key.
- A repeat with the same key, method, path, query and body (JSON compared as parsed, so key
  order and spacing do not matter; multipart by its fields and files) within
  IDEMPOTENCY_KEY_HOURS (24) of the first gets the first answer again: status, body, ETag,
  Location, Content-Type and Content-Language, plus `Idempotent-Replayed: true`. Nothing is
  written again and the view does not run.
- The same key with another request: 422 naming the header. Meanwhile, while the first is
  still running: 409 with `Retry-After: 1`, whatever the body (the draft's answers).
- Only successful (2xx) answers are kept. A request answered 4xx or 5xx is rolled back whole
  (even what its view had committed on its own) and frees its key, so a retry with the same
  key runs again: a failed request wrote nothing, so running it again cannot write twice.
- Requests without a caller (anonymous, a refused token, the password login) ignore the key.

How it stays exactly-once (PostgreSQL): the key row is inserted first in a transaction of its
own (unique `key_hash`, ON CONFLICT DO NOTHING), then the view runs inside one transaction
that holds the row locked (`FOR UPDATE NOWAIT`) and stores the answer in it before it commits:
the write and "this key is done" commit together or not at all. A duplicate that finds the row
locked answers 409 at once; one that finds it unlocked and unfinished (the first died, or
failed) takes it over. On SQLite (development) the transaction is IMMEDIATE, so duplicates
wait for the first to commit and then get its answer.

Stored: an HMAC (API_TOKEN_PEPPER) of caller and key, a SHA-256 of the request, and the answer
with its body encrypted (Fernet) under a key derived from the client's key, so a copy of the
database reveals neither keys nor answers (some answers carry a secret shown once: a new API
token, a webhook secret). Beat's `tracker.expire_idempotency_keys` deletes expired rows.
"""

import base64
import datetime as dt
import hashlib
import hmac
import json

import orjson
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.db import OperationalError, transaction
from django.http import HttpResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.urls import Resolver404, resolve
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from .models import ApiToken, IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_MAX_LENGTH = 255
# Headers of the first answer that a replay repeats.
KEPT_HEADERS = ("Content-Type", "ETag", "Location", "Content-Language")
PROBLEM_CONTENT_TYPE = "application/problem+json"

INVALID_KEY = _("Idempotency-Key must be 1 to 255 printable ASCII characters, e.g. a UUID.")
KEY_REUSED = _(
    "This Idempotency-Key was already used for a different request (method, path or body). "
    "Send a new key with a new request."
)
IN_PROGRESS = _(
    "A request with this Idempotency-Key is still in progress. Retry when it has finished."
)
TITLE_BAD_REQUEST = _("Bad request")
TITLE_CONFLICT = _("Conflict")
TITLE_UNPROCESSABLE = _("Unprocessable content")

# PostgreSQL's lock_not_available: the row is locked by the request that runs the key.
LOCK_NOT_AVAILABLE = "55P03"


class _Busy(Exception):
    """The key's row is locked: its first request is still running."""


def parse_key(raw: str) -> str | None:
    """The key of a header value (a bare token or the draft's sf-string, `"..."`), or None."""
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not 1 <= len(value) <= KEY_MAX_LENGTH or not all(" " <= c <= "~" for c in value):
        return None
    return value


def _owner(user, token) -> str:
    return f"t{token.pk}" if token is not None else f"u{user.pk}"


def key_hash(*, user, token, key: str) -> str:
    """The stored form of (caller, key): HMAC-SHA256 keyed with API_TOKEN_PEPPER."""
    message = f"idempotency-key\n{_owner(user, token)}\n{key}".encode()
    return hmac.new(settings.API_TOKEN_PEPPER.encode(), message, hashlib.sha256).hexdigest()


def _cipher(*, user, token, key: str) -> Fernet:
    """Encrypts a stored answer: derived from the client's key, which is never stored."""
    message = f"idempotency-response\n{_owner(user, token)}\n{key}".encode()
    secret = hmac.new(settings.API_TOKEN_PEPPER.encode(), message, hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(secret))


def fingerprint(request) -> str:
    """SHA-256 of what makes two requests the same: method, path, query and body. A JSON body
    counts as parsed (spacing and key order do not matter); multipart by its fields and files
    (the boundary differs on every send)."""
    digest = hashlib.sha256()
    digest.update(
        f"{request.method}\n{request.path}\n{request.META.get('QUERY_STRING', '')}\n".encode()
    )
    content_type = request.content_type or ""
    body = request.body
    if content_type == "multipart/form-data":
        fields = sorted((name, request.POST.getlist(name)) for name in request.POST)
        files = []
        for name in sorted(request.FILES):
            for upload in request.FILES.getlist(name):
                content = upload.read()
                upload.seek(0)
                files.append([name, upload.name, hashlib.sha256(content).hexdigest()])
        digest.update(json.dumps([fields, files]).encode())
        return digest.hexdigest()
    try:
        digest.update(b"json\n" + orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS))
    except orjson.JSONDecodeError:
        digest.update(b"raw\n" + body)
    return digest.hexdigest()


def _problem(status: int, title, detail, headers=None) -> HttpResponse:
    body = {
        "type": "about:blank",
        "title": str(title),
        "status": status,
        "detail": str(detail),
        "errors": [{"field": HEADER, "message": str(detail)}],
    }
    response = HttpResponse(orjson.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _caller(request):
    """(user, token or None) as the view at this path would authenticate the request, or
    None: no DRF view, anonymous, refused credentials (the view answers those itself)."""
    from rest_framework.exceptions import APIException
    from rest_framework.request import Request

    try:
        view = resolve(request.path_info).func
    except Resolver404:
        return None
    view_class = getattr(view, "cls", None)
    authenticators = getattr(view_class, "authentication_classes", None)
    if not authenticators:
        return None
    drf_request = Request(request, authenticators=[auth() for auth in authenticators])
    try:
        user, auth = drf_request.user, drf_request.auth
    except APIException:
        return None
    if not user or not user.is_authenticated:
        return None
    return user, auth if isinstance(auth, ApiToken) else None


def _lock(hashed: str) -> IdempotencyKey | None:
    try:
        return IdempotencyKey.objects.select_for_update(nowait=True).filter(key_hash=hashed).first()
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise _Busy from exc
        raise


def _throttled(request, *, user, token) -> HttpResponse | None:
    """A replay is an API answer like any other: it counts against the caller's rate limits
    (and so carries their RateLimit headers, tracker.middleware); over a limit, the 429 the
    view itself would give. The view's own throttles, as DRF's dispatch would run them."""
    from rest_framework.exceptions import Throttled

    match = resolve(request.path_info)
    view = match.func.cls(**match.func.initkwargs)
    actions = getattr(match.func, "actions", None)
    if actions:
        view.action_map = actions
        view.action = actions.get(request.method.lower())
    view.args, view.kwargs, view.format_kwarg = match.args, match.kwargs, None
    view.headers = view.default_response_headers
    drf_request = view.initialize_request(request, *match.args, **match.kwargs)
    drf_request._user, drf_request._auth = user, token  # as _caller found them: no second lookup
    view.request = drf_request
    try:
        view.check_throttles(drf_request)
    except Throttled as exc:
        response = view.finalize_response(drf_request, view.handle_exception(exc))
        return response.render()
    return None


def _replay(row: IdempotencyKey, cipher: Fernet) -> HttpResponse:
    response = HttpResponse(cipher.decrypt(bytes(row.response_body)), status=row.response_status)
    for name, value in row.response_headers.items():
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    return response


def _store(row: IdempotencyKey, response, cipher: Fernet, *, fp: str, user, token) -> None:
    headers = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
    headers.setdefault("Content-Language", translation.get_language() or settings.LANGUAGE_CODE)
    now = timezone.now()
    row.fingerprint, row.user, row.token = fp, user, token
    row.created_at, row.expires_at = now, now + dt.timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
    row.response_status = response.status_code
    row.response_headers = headers
    row.response_body = cipher.encrypt(response.content)
    row.save()


def _free(pk: int) -> None:
    """Forget a key whose request failed, unless another request has taken it meanwhile."""
    with transaction.atomic():
        free = IdempotencyKey.objects.select_for_update(skip_locked=True).filter(
            pk=pk, response_status__isnull=True
        )
        IdempotencyKey.objects.filter(pk__in=list(free.values_list("pk", flat=True))).delete()


_GONE = object()


def _run(request, get_response, *, user, token, hashed: str, fp: str, cipher: Fernet):
    """Run the view under the key's row lock, or answer from the row; _GONE when the row
    vanished between its insert and the lock (expired and deleted, or freed)."""
    failed_pk = None
    try:
        with transaction.atomic():
            row = _lock(hashed)
            if row is None:
                return _GONE
            now = timezone.now()
            if row.response_status is not None and row.expires_at > now:
                if row.fingerprint != fp:
                    return _problem(422, TITLE_UNPROCESSABLE, KEY_REUSED)
                refused = _throttled(request, user=user, token=token)
                if refused is not None:
                    return refused
                try:
                    return _replay(row, cipher)
                except InvalidToken:  # cannot happen with a matching key hash; run again
                    pass
            # Free: just inserted, or its first request died, failed or expired: ours now. The
            # row is written only with the answer, just before the commit: a duplicate's INSERT
            # ... ON CONFLICT would wait on a row this transaction had updated.
            response = get_response(request)
            if 200 <= response.status_code < 300 and not response.streaming:
                _store(row, response, cipher, fp=fp, user=user, token=token)
                return response
            # A failed request writes nothing and does not keep its key.
            transaction.set_rollback(True)
            failed_pk = row.pk
            return response
    except _Busy:
        return _problem(409, TITLE_CONFLICT, IN_PROGRESS, {"Retry-After": "1"})
    finally:
        if failed_pk is not None:
            _free(failed_pk)


def idempotent_response(request, get_response) -> HttpResponse:
    """Answer a POST that carries an Idempotency-Key (see the module docstring)."""
    key = parse_key(request.headers[HEADER])
    if key is None:
        return _problem(400, TITLE_BAD_REQUEST, INVALID_KEY)
    caller = _caller(request)
    if caller is None:
        return get_response(request)
    user, token = caller
    try:
        fp = fingerprint(request)
    # Too big, too many fields, malformed multipart, a broken connection.
    except (SuspiciousOperation, UnreadablePostError, MultiPartParserError):
        return get_response(request)  # the view refuses it the same way
    hashed = key_hash(user=user, token=token, key=key)
    cipher = _cipher(user=user, token=token, key=key)
    ttl = dt.timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
    for _attempt in range(3):
        now = timezone.now()
        # INSERT ... ON CONFLICT DO NOTHING, committed at once: the row exists from here on.
        IdempotencyKey.objects.bulk_create(
            [IdempotencyKey(key_hash=hashed, fingerprint=fp, user=user, token=token,
                            created_at=now, expires_at=now + ttl)],
            ignore_conflicts=True,
        )  # fmt: skip
        response = _run(
            request, get_response, user=user, token=token, hashed=hashed, fp=fp, cipher=cipher
        )
        if response is not _GONE:
            return response
    return _problem(409, TITLE_CONFLICT, IN_PROGRESS, {"Retry-After": "1"})


def idempotency_keys_expire(*, now: dt.datetime | None = None, batch: int = 5000) -> int:
    """Delete the keys whose time is up (beat: tracker.expire_idempotency_keys), in batches
    so one run never holds many row locks; rows in use are skipped. The number deleted."""
    now = now or timezone.now()
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                IdempotencyKey.objects.select_for_update(skip_locked=True)
                .filter(expires_at__lte=now)
                .values_list("pk", flat=True)[:batch]
            )
            if ids:
                IdempotencyKey.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
        if len(ids) < batch:
            return deleted


class IdempotencyMiddleware:
    """POSTs under /api/ that carry an Idempotency-Key; everything else passes untouched.
    Last in MIDDLEWARE, so the answer it keeps is the view's own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            request.method == "POST"
            and request.path.startswith("/api/")
            and (HEADER in request.headers)
        ):
            return idempotent_response(request, self.get_response)
        return self.get_response(request)


def add_idempotency_key_header(result, generator, request, public):
    """drf-spectacular postprocessing hook: every authenticated POST documents the optional
    Idempotency-Key header and the 409 / 422 answers it adds."""
    parameter = {
        "in": "header",
        "name": HEADER,
        "required": False,
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": KEY_MAX_LENGTH,
            "pattern": "^[ -~]+$",
            "example": "8e03978e-40d5-43e8-bc93-6894a57f9324",
        },
        "description": (
            "Makes a retry safe: a repeat with the same key and the same request within "
            f"{settings.IDEMPOTENCY_KEY_HOURS} hours returns the first (successful) answer "
            "without writing again (with `Idempotent-Replayed: true`). Keys belong to the "
            "token (or the user, for a session). See docs/integration/idempotency.md."
        ),
    }
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in result.get("paths", {}).values():
        operation = operations.get("post")
        if operation is None or operation.get("security") == []:
            continue  # no caller, no key (the password login)
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("in") == "header" and p.get("name") == HEADER for p in parameters):
            parameters.append(parameter)
        responses = operation.setdefault("responses", {})
        responses.setdefault("409", {"description": "Conflict.", "content": problem})
        responses["409"]["description"] = (
            responses["409"]["description"].rstrip(".")
            + "; or a request with this Idempotency-Key is still in progress."
        )
        responses.setdefault(
            "422",
            {
                "description": "The Idempotency-Key was already used for a different request.",
                "content": problem,
            },
        )
    return result
