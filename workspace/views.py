"""The workspace's pages: thin views that read through selectors, write through services
and render. What a person sees and may do is the policy's answer (plans/permissions.py)."""

import re
import string

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from plans import permissions as policy
from plans import selectors as plan_selectors
from plans import services
from plans.exceptions import (
    DomainError,
    NotAllowed,
    NotVisible,
    TaskClosed,
    TaskMoved,
    TransitionNotAllowed,
    VersionConflict,
)
from plans.models import Task
from tracker.services import user_update_preferences

from . import labels, selectors
from .forms import AssignForm, DeadlineForm, MoveForm, ReportForm

# --- Refusals in the viewer's language --------------------------------------------------

NOTHING_SAVED = gettext_lazy("Nothing was saved.")
STALE_VERSION = gettext_lazy(
    "Someone changed this task after you opened it: check its current state below and try again."
)
STALE_STATUS = gettext_lazy("The task has moved meanwhile: it is now %(status)s.")
MOVE_REFUSED = gettext_lazy("A task cannot move from %(from_status)s to %(to_status)s.")
TASK_NOT_OPEN = gettext_lazy("The task is %(status)s and no longer open.")
ACTION_REFUSED = gettext_lazy("You may not do this on this task.")
BAD_LANGUAGE = "Unknown language."

# The services' messages (module constants) and their words here; {names} become %(names)s.
SERVICE_MESSAGES = [
    (
        services.NOTE_REQUIRED,
        gettext_lazy("A note is required to move a task from %(from_status)s to %(to_status)s."),
    ),
    (
        services.EVIDENCE_REQUIRED,
        gettext_lazy("This plan requires an evidence link to mark a task done."),
    ),
    (services.REASON_REQUIRED, gettext_lazy("A reason is required to change a deadline.")),
    (services.DEADLINE_UNCHANGED, gettext_lazy("The task is already due on %(due_date)s.")),
    (
        services.DEADLINE_BEFORE_START,
        gettext_lazy("The due date cannot be before the start date (%(start_date)s)."),
    ),
    (
        services.EMPTY_UPDATE,
        gettext_lazy("A status update needs a note, a progress value or an evidence link."),
    ),
    (services.PROGRESS_RANGE, gettext_lazy("Progress must be a whole number from 0 to 100.")),
    (
        services.ASSIGNMENT_UNCHANGED,
        gettext_lazy("The task already has this assignee and manager."),
    ),
    (
        services.ASSIGNEE_OUTSIDE_ORGANIZATION,
        gettext_lazy(
            "A manager can only assign members of the lead organization (%(organization)s)."
        ),
    ),
]


def _pattern(template: str) -> re.Pattern:
    parts = []
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if field:
            parts.append(f"(?P<{field}>.*?)")
    return re.compile("".join(parts), re.DOTALL)


_SERVICE_PATTERNS = [(_pattern(template), words) for template, words in SERVICE_MESSAGES]


def service_message(message: str) -> str:
    """A service's refusal in the viewer's language (statuses as words, not codes)."""
    for pattern, words in _SERVICE_PATTERNS:
        match = pattern.fullmatch(message)
        if match:
            values = {
                name: labels.status(value) if name.endswith("_status") else value
                for name, value in match.groupdict().items()
            }
            return str(words) % values if values else str(words)
    return _(message)


def refusal_text(exc: Exception) -> str:
    if isinstance(exc, VersionConflict):
        text = STALE_VERSION
    elif isinstance(exc, TaskMoved):
        text = STALE_STATUS % {"status": labels.status(exc.actual)}
    elif isinstance(exc, TransitionNotAllowed):
        text = MOVE_REFUSED % {
            "from_status": labels.status(exc.from_status),
            "to_status": labels.status(exc.to_status),
        }
    elif isinstance(exc, TaskClosed):
        text = TASK_NOT_OPEN % {"status": labels.status(exc.status)}
    else:
        text = ACTION_REFUSED
    return f"{text} {NOTHING_SAVED}"


# --- Pages --------------------------------------------------------------------------------


@login_required
@require_GET
def home(request):
    user, now = request.user, timezone.now()
    context = {"now": now}
    if plan_selectors.coordinates_any_plan(user):
        context["overview"] = selectors.coordinator_overview(user=user, now=now)
    if selectors.is_manager(user):
        context["team"] = selectors.team_tasks(user=user, now=now)
    mine = selectors.my_tasks(user=user, now=now)
    awaiting = context["overview"]["awaiting"] if "overview" in context else []
    steps = selectors.next_steps(user=user, tasks=mine + awaiting)
    for task in mine + awaiting:
        task.next_step = steps.get(task.pk)
    context["mine"] = mine
    return render(request, "workspace/home.html", context)


def _task_or_404(request, pk: int) -> Task:
    task = selectors.task_get(user=request.user, pk=pk)
    if task is None:
        raise Http404
    return task


def _task_context(request, task: Task, *, failed=None, alert: str = "") -> dict:
    """The task page's context; `failed` = (form kind, key, bound form) to show again."""
    user = request.user
    abilities = selectors.task_abilities(user=user, task=task)
    moves = selectors.task_moves(user=user, task=task, abilities=abilities)
    failed_kind, failed_key, failed_form = failed or (None, None, None)

    def pick(kind, key, make):
        return failed_form if (kind, key) == (failed_kind, failed_key) else make()

    version = task.version
    move_forms = [
        {
            "to": to,
            "move": move,
            "form": pick(
                "move",
                to,
                lambda to=to: MoveForm(
                    initial={"version": version, "to_status": to, "expected_from": task.status},
                    auto_id=f"id_move_{to}_%s",
                ),
            ),
        }
        for to, move in moves
    ]
    context = {
        "task": task,
        "abilities": abilities,
        "move_forms": move_forms,
        "open_form": failed_kind
        and f"{failed_kind}-{failed_key or ''}".rstrip("-")
        or request.GET.get("open", ""),
        "alert": alert,
        "updates": list(task.updates.all()),
        **selectors.task_lineage(user=user, task=task),
    }
    if abilities[policy.ADD_UPDATE]:
        context["report_form"] = pick(
            "report", None, lambda: ReportForm(initial={"version": version}, auto_id="id_report_%s")
        )
        context["may_report_progress"] = abilities[policy.TRANSITION] and task.is_open
    if abilities[policy.ASSIGN]:
        choices = plan_selectors.task_assignee_choices(user=user, task=task)
        context["assign_form"] = pick(
            "assign",
            None,
            lambda: AssignForm(
                initial={"version": version, "assignee": task.assignee_id},
                choices=choices,
                auto_id="id_assign_%s",
            ),
        )
    if abilities[policy.CHANGE_DEADLINE] and task.is_open:
        context["deadline_form"] = pick(
            "deadline",
            None,
            lambda: DeadlineForm(
                initial={"version": version, "due_date": task.due_date}, auto_id="id_deadline_%s"
            ),
        )
    return context


def _render_task(request, context: dict, status: int = 200):
    template = "workspace/_task_main.html" if request.htmx else "workspace/task_detail.html"
    return render(request, template, context, status=status)


@login_required
@require_GET
def task_detail(request, pk: int):
    task = _task_or_404(request, pk)
    return _render_task(request, _task_context(request, task))


def _act(request, pk: int, *, kind: str, needs, make_form, write, done_message):
    """One write from the task page: load what the user may see (else 404), require the
    action (else 403), validate the form, call the service with the form's version; on a
    refusal show its message on the form (nothing was written)."""
    task = _task_or_404(request, pk)
    if not any(policy.can(request.user, action, task) for action in needs):
        raise PermissionDenied
    form = make_form(task)
    key = request.POST.get("to_status") if kind == "move" else None
    alert, status = "", 400
    if form.is_valid():
        try:
            write(task, form.cleaned_data)
        except NotVisible:
            raise Http404 from None
        except (VersionConflict, TaskMoved, TransitionNotAllowed, TaskClosed) as exc:
            alert, status, form = refusal_text(exc), 409, None
        except (NotAllowed, DomainError) as exc:
            form.add_error(None, refusal_text(exc))
            status = 403
        except ValidationError as exc:
            for field, errors in (
                exc.message_dict.items() if hasattr(exc, "error_dict") else ((None, exc.messages),)
            ):
                for message in errors:
                    target = field if field in form.fields else None
                    form.add_error(target, service_message(message))
        else:
            messages.success(request, done_message(form.cleaned_data))
            if request.htmx:
                fresh = _task_or_404(request, pk)
                return _render_task(request, _task_context(request, fresh))
            return redirect("workspace:task", pk=pk)
    fresh = _task_or_404(request, pk)
    failed = (kind, key, form) if form is not None else None
    return _render_task(request, _task_context(request, fresh, failed=failed, alert=alert), status)


@login_required
@require_POST
def task_move(request, pk: int):
    def write(task, data):
        services.task_transition(
            actor=request.user,
            task=task,
            to_status=data["to_status"],
            expected_from=data["expected_from"],
            note=data["note"],
            evidence_url=data["evidence_url"],
            expected_version=data["version"],
        )

    return _act(
        request,
        pk,
        kind="move",
        needs=(policy.TRANSITION, policy.VERIFY),
        make_form=lambda task: MoveForm(
            request.POST, auto_id=f"id_move_{request.POST.get('to_status', '')}_%s"
        ),
        write=write,
        done_message=lambda data: (
            _("Status changed to %(status)s.") % {"status": labels.status(data["to_status"])}
        ),
    )


@login_required
@require_POST
def task_report(request, pk: int):
    def write(task, data):
        services.status_update_add(
            actor=request.user,
            task=task,
            note=data["note"],
            progress=data["progress"],
            evidence_url=data["evidence_url"],
            expected_version=data["version"],
        )

    return _act(
        request,
        pk,
        kind="report",
        needs=(policy.ADD_UPDATE,),
        make_form=lambda task: ReportForm(request.POST, auto_id="id_report_%s"),
        write=write,
        done_message=lambda data: _("Progress report saved."),
    )


@login_required
@require_POST
def task_assign(request, pk: int):
    def write(task, data):
        services.task_assign(
            actor=request.user,
            task=task,
            assignee=data["assignee"],
            note=data["note"],
            expected_version=data["version"],
        )

    return _act(
        request,
        pk,
        kind="assign",
        needs=(policy.ASSIGN,),
        make_form=lambda task: AssignForm(
            request.POST,
            choices=plan_selectors.task_assignee_choices(user=request.user, task=task),
            auto_id="id_assign_%s",
        ),
        write=write,
        done_message=lambda data: _("Assignee saved."),
    )


@login_required
@require_POST
def task_deadline(request, pk: int):
    def write(task, data):
        services.task_change_deadline(
            actor=request.user,
            task=task,
            due_date=data["due_date"],
            reason=data["reason"],
            expected_version=data["version"],
        )

    return _act(
        request,
        pk,
        kind="deadline",
        needs=(policy.CHANGE_DEADLINE,),
        make_form=lambda task: DeadlineForm(request.POST, auto_id="id_deadline_%s"),
        write=write,
        done_message=lambda data: (
            _("Deadline moved to %(date)s.") % {"date": data["due_date"].isoformat()}
        ),
    )


@require_POST
def set_language(request):
    """Switch between Korean and English: saved on the user, or in a cookie before sign-in."""
    language = request.POST.get("language", "")
    if language not in labels.LANGUAGE_NAMES:
        return HttpResponseBadRequest(BAD_LANGUAGE)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("workspace:home")
    if request.user.is_authenticated:
        user_update_preferences(user=request.user, language=language)
    response = redirect(target)
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )
    return response
