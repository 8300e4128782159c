"""Domain errors of the plans. The API answers each with its `http_status` (409 for the workflow,
404 / 403 / 412 for sight, permission and stale versions); the admin shows a message."""

from tracker.exceptions import ProblemError

TRANSITION_NOT_ALLOWED = "A task cannot move from '{from_status}' to '{to_status}'."
TASK_MOVED = (
    "The task has moved meanwhile: expected it to be '{expected}' but it is '{actual}'. "
    "Reload it and try again."
)
TASK_CLOSED = "The task is '{status}', no longer open: {action} is not possible."


class DomainError(ProblemError):
    """A rule of the workflow refused the change; nothing was written."""

    http_status = 409
    title = "Conflict"


class TransitionNotAllowed(DomainError):
    def __init__(self, from_status: str, to_status: str):
        super().__init__(
            TRANSITION_NOT_ALLOWED.format(from_status=from_status, to_status=to_status)
        )
        self.from_status = from_status
        self.to_status = to_status


class TaskMoved(DomainError):
    def __init__(self, expected: str, actual: str):
        super().__init__(TASK_MOVED.format(expected=expected, actual=actual))
        self.expected = expected
        self.actual = actual


class TaskClosed(DomainError):
    def __init__(self, status: str, action: str):
        super().__init__(TASK_CLOSED.format(status=status, action=action))
        self.status = status


NOT_VISIBLE = "Not found."
NOT_ALLOWED = "You may not {action} this {kind}."


class NotVisible(DomainError):
    """The object is outside the user's sight: answered as 404, never as 403."""

    http_status = 404
    title = "Not found"

    def __init__(self, obj=None):
        super().__init__(NOT_VISIBLE)
        self.obj = obj


class NotAllowed(DomainError):
    """The user sees the object but may not do this to it: answered as 403."""

    http_status = 403
    title = "Forbidden"

    def __init__(self, action: str, obj=None):
        model = obj if isinstance(obj, type) else type(obj)
        kind = model._meta.verbose_name if hasattr(model, "_meta") else "object"
        super().__init__(NOT_ALLOWED.format(action=action.replace("_", " "), kind=kind))
        self.action = action
        self.obj = obj


class GrantNotAllowed(DomainError):
    """A membership the actor manages but may not grant this way (a coordinator role in an
    organization they do not coordinate, a member of another organization): 403."""

    http_status = 403
    title = "Forbidden"

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


VERSION_CONFLICT = (
    "The task has changed since you read it (you sent version {expected}, it is now at "
    "{actual}). Fetch it again and retry."
)


class VersionConflict(DomainError):
    """An If-Match / expected version no longer matches: answered as 412."""

    http_status = 412
    title = "Precondition failed"

    def __init__(self, expected: int, actual: int):
        super().__init__(VERSION_CONFLICT.format(expected=expected, actual=actual))
        self.expected = expected
        self.actual = actual
