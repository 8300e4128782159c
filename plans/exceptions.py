"""Domain errors of the plans. The API answers each with its `http_status` (409 for the workflow,
404 / 403 / 412 for sight, permission and stale versions); the admin shows a message.

Messages are English module constants (`gettext_noop`), shown in the reader's language
(`tracker.i18n.message`): statuses as codes in English, as words in Korean.
"""

from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from tracker.exceptions import ProblemError
from tracker.i18n import message

TRANSITION_NOT_ALLOWED = gettext_noop("A task cannot move from '{from_status}' to '{to_status}'.")
TASK_MOVED = gettext_noop(
    "The task has moved meanwhile: expected it to be '{expected}' but it is '{actual}'. "
    "Reload it and try again."
)
TASK_CLOSED = gettext_noop("The task is '{status}', no longer open: {action} is not possible.")


def status_label(code: str):
    """A task status as a word in the reader's language (the code itself if unknown)."""
    from .models import TaskStatus

    try:
        return TaskStatus(code).label
    except ValueError:
        return code


class DomainError(ProblemError):
    """A rule of the workflow refused the change; nothing was written."""

    http_status = 409
    title = _("Conflict")


class TransitionNotAllowed(DomainError):
    def __init__(self, from_status: str, to_status: str):
        super().__init__(
            message(
                TRANSITION_NOT_ALLOWED,
                from_status=from_status,
                to_status=to_status,
                from_status_label=status_label(from_status),
                to_status_label=status_label(to_status),
            )
        )
        self.from_status = from_status
        self.to_status = to_status


class TaskMoved(DomainError):
    def __init__(self, expected: str, actual: str):
        super().__init__(
            message(
                TASK_MOVED,
                expected=expected,
                actual=actual,
                expected_label=status_label(expected),
                actual_label=status_label(actual),
            )
        )
        self.expected = expected
        self.actual = actual


class TaskClosed(DomainError):
    def __init__(self, status: str, action: str):
        super().__init__(
            message(TASK_CLOSED, status=status, action=action, status_label=status_label(status))
        )
        self.status = status


NOT_VISIBLE = gettext_noop("Not found.")
NOT_ALLOWED = gettext_noop("You may not {action} this {kind}.")


class NotVisible(DomainError):
    """The object is outside the user's sight: answered as 404, never as 403."""

    http_status = 404
    title = _("Not found")

    def __init__(self, obj=None):
        super().__init__(message(NOT_VISIBLE))
        self.obj = obj


class NotAllowed(DomainError):
    """The user sees the object but may not do this to it: answered as 403."""

    http_status = 403
    title = _("Forbidden")

    def __init__(self, action: str, obj=None):
        model = obj if isinstance(obj, type) else type(obj)
        kind = model._meta.verbose_name if hasattr(model, "_meta") else "object"
        super().__init__(message(NOT_ALLOWED, action=action.replace("_", " "), kind=kind))
        self.action = action
        self.obj = obj


class GrantNotAllowed(DomainError):
    """A membership the actor manages but may not grant this way (a coordinator role in an
    organization they do not coordinate, a member of another organization): 403."""

    http_status = 403
    title = _("Forbidden")

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


VERSION_CONFLICT = gettext_noop(
    "The task has changed since you read it (you sent version {expected}, it is now at "
    "{actual}). Fetch it again and retry."
)


class VersionConflict(DomainError):
    """An If-Match / expected version no longer matches: answered as 412."""

    http_status = 412
    title = _("Precondition failed")

    def __init__(self, expected: int, actual: int):
        super().__init__(message(VERSION_CONFLICT, expected=expected, actual=actual))
        self.expected = expected
        self.actual = actual


RECORD_CHANGED = gettext_noop(
    "This {kind} has changed since you read it (you sent ETag {expected}, it is now {actual}). "
    "Fetch it again and retry."
)
IN_USE = gettext_noop("This {kind} cannot be deleted: {reason}")


class RecordChanged(DomainError):
    """If-Match on a forum, outcome, plan, workstream, participant or organization no longer
    matches its ETag (plans.etags): answered as 412."""

    http_status = 412
    title = _("Precondition failed")

    def __init__(self, kind: str, expected: str, actual: str):
        super().__init__(message(RECORD_CHANGED, kind=kind, expected=expected, actual=actual))
        self.expected = expected
        self.actual = actual


class InUse(DomainError):
    """A delete refused because other records still point at the row: 409."""

    def __init__(self, kind: str, reason: str):
        super().__init__(message(IN_USE, kind=kind, reason=reason))
        self.reason = reason
