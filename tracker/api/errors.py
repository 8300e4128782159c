"""One error format for the whole API: RFC 9457 problem details with field errors.

    {"type": "about:blank", "title": "Bad request", "status": 400,
     "detail": "The request has invalid fields.",
     "errors": [{"field": "due_date", "message": "The due date cannot be before ..."}]}

Served as application/problem+json. Every refusal a service raises (tracker.exceptions
.ProblemError) carries its own status; Django's ValidationError is a 400 with field errors.
"""

import logging

import redis.exceptions
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from tracker.exceptions import ProblemError

PROBLEM_CONTENT_TYPE = "application/problem+json"
INVALID_FIELDS = _("The request has invalid fields.")
TITLES = {
    400: _("Bad request"),
    401: _("Unauthorized"),
    403: _("Forbidden"),
    404: _("Not found"),
    405: _("Method not allowed"),
    406: _("Not acceptable"),
    409: _("Conflict"),
    412: _("Precondition failed"),
    415: _("Unsupported media type"),
    429: _("Too many requests"),
    503: _("Service unavailable"),
}
ERROR_TITLE = _("Error")
SERVICE_UNAVAILABLE = _(
    "A service the tracker depends on (its database or Redis) does not answer. Try again shortly."
)
# PostgreSQL or Redis unreachable, restarting or cut off (the connect, socket and statement
# timeouts of docs/deploy.md turn a silent partition into one of these within seconds): a 503
# with Retry-After, not a 500. The request's transaction is rolled back (DRF's set_rollback).
OUTAGE_ERRORS = (
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
OUTAGE_RETRY_AFTER_SECONDS = 10

logger = logging.getLogger(__name__)
SERVER_ERROR_TITLE = _("Server error")


class FieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="Dotted path of the field; `non_field_errors` if none.")
    message = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details (documentation only)."""

    type = serializers.CharField(default="about:blank")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField(required=False)
    instance = serializers.CharField(required=False)
    errors = FieldErrorSerializer(many=True, required=False)


def _flatten(detail, path: str = "") -> list[dict]:
    """DRF's nested error detail as a flat list of {field, message}."""
    if isinstance(detail, dict):
        items = []
        for key, value in detail.items():
            name = "non_field_errors" if key in ("non_field_errors", "__all__") else str(key)
            items += _flatten(value, f"{path}.{name}" if path else name)
        return items
    if isinstance(detail, list):
        items = []
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                items += _flatten(value, f"{path}.{index}" if path else str(index))
            else:
                items.append({"field": path or "non_field_errors", "message": str(value)})
        return items
    return [{"field": path or "non_field_errors", "message": str(detail)}]


def problem_response(
    status: int, detail: str | None = None, errors=None, headers=None, instance: str | None = None
) -> Response:
    # Titles and details are lazy: rendered here, in the language of the request (the user's
    # own, see tracker.api.authentication; else Accept-Language).
    body = {"type": "about:blank", "title": str(TITLES.get(status, ERROR_TITLE)), "status": status}
    if detail:
        body["detail"] = str(detail)
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def problem_json(request, status: int, detail: str):
    """A problem document outside DRF (URL not found, server error)."""
    import json

    from django.http import HttpResponse

    title = str(TITLES.get(status, SERVER_ERROR_TITLE))
    body = {"type": "about:blank", "title": title, "status": status, "detail": str(detail),
            "instance": request.get_full_path()}  # fmt: skip
    return HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)


def exception_handler(exc, context):
    request = context.get("request")
    instance = request.get_full_path() if request is not None else None
    if isinstance(exc, ProblemError):
        return problem_response(exc.http_status, exc.message, instance=instance)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            detail = exc.message_dict
        else:
            detail = {"non_field_errors": exc.messages}
        return problem_response(400, INVALID_FIELDS, _flatten(detail), instance=instance)
    if isinstance(exc, OUTAGE_ERRORS):
        logger.error("%s: a backing service did not answer: %r", instance, exc)
        set_rollback()
        headers = {"Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)}
        return problem_response(503, SERVICE_UNAVAILABLE, headers=headers, instance=instance)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django answer 500 and log it
    headers = {
        k: v for k, v in response.items() if k in ("WWW-Authenticate", "Retry-After", "Allow")
    }
    if isinstance(exc, exceptions.ValidationError):
        return problem_response(400, INVALID_FIELDS, _flatten(exc.detail), headers, instance)
    detail = exc.detail if isinstance(exc, exceptions.APIException) else None
    return problem_response(
        response.status_code, str(detail) if detail else None, headers=headers, instance=instance
    )
