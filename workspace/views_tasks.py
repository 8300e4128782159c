"""The task list page (`/tasks/`) and its exports (`/tasks/export/csv/`, `.../xlsx/`).

Thin views over `workspace.task_list` (the API's selector and FilterSet, sort and cursor
pages) and `workspace.exports`. Bad input is a 400 page whose error summary names the
parameter; never a 500. With htmx (django-htmx's `request.htmx`), filtering, sorting and
paging swap only the list region; without JavaScript the same links and form load pages.
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from django.views.decorators.http import require_GET

from tracker.validators import DATE_OUT_OF_RANGE, MAX_YEAR, MIN_YEAR

from . import exports
from . import task_list as tl
from .labels import STATUS
from .templatetags.workspace import person

# The filters the form shows; the FilterSet's other parameters (from links such as
# `?forum=3`) are kept as hidden fields and listed under the form.
FORM_PARAMS = (
    "q",
    "status",
    "overdue",
    "plan",
    "workstream",
    "organization",
    "assignee",
    "due_after",
    "due_before",
)
DATE_RANGE_WORDS = gettext_lazy("Enter a date from the year %(first)s to %(last)s.")
EXPORT_FORMATS = ("csv", "xlsx")


def _message(text: str) -> str:
    """A FilterSet message in the viewer's language (Django's own are translated already)."""
    if text == DATE_OUT_OF_RANGE:
        return DATE_RANGE_WORDS % {"first": MIN_YEAR, "last": MAX_YEAR}
    return text


def _error_list(errors: dict[str, list[str]]) -> list[dict]:
    return [
        {
            "param": param,
            "label": tl.PARAM_LABELS.get(param, param),
            "anchor": f"f-{param}" if param in FORM_PARAMS else "",
            "messages": [_message(text) for text in messages],
        }
        for param, messages in errors.items()
    ]


def _form(request, choices: dict, errors: dict) -> dict:
    """What the filter form shows: each field's value(s), choices and errors."""
    params = request.GET
    overdue = [
        ("", pgettext("task list", "Any")),
        ("true", pgettext("task list", "Overdue only")),
        ("false", pgettext("task list", "Not overdue")),
    ]
    values = {name: params.get(name, "") for name in FORM_PARAMS}
    for name, options in choices.items():
        # An id from a link (or "3,4", as the API takes) that no option shows: shown as it is.
        if values[name] and values[name] not in {value for value, _label in options}:
            choices[name] = [(values[name], values[name]), *options]
    chosen = params.getlist("status")
    return {
        "values": values,
        "statuses": [(code, label, code in chosen) for code, label in STATUS.items()],
        "overdue_choices": overdue,
        "choices": choices,
        "errors": {param: [_message(t) for t in messages] for param, messages in errors.items()},
        "hidden": [
            (name, value) for name, value in tl.kept_params(params) if name not in FORM_PARAMS
        ],
        "other_filters": [
            (tl.PARAM_LABELS.get(name, name), value)
            for name, value in tl.kept_params(params)
            if name not in FORM_PARAMS
        ],
        "sort": params.get(tl.SORT_PARAM, ""),
        "labels": tl.PARAM_LABELS,
    }


def _context(request) -> tuple[dict, int]:
    params, user = request.GET, request.user
    errors: dict = {}
    page = None
    count = 0
    try:
        queryset = tl.rows(user=user, params=params)
        page = tl.page(queryset, params)
        count = queryset.count()
    except tl.TaskListError as exc:
        errors = exc.errors
    base = reverse("workspace:tasks")
    context = {
        "form": _form(request, tl.filter_choices(user=user), errors),
        "error_list": _error_list(errors),
        "headers": tl.sort_links(params),
        "page": page,
        "count": count,
        "base_url": base,
        "next_url": page and page.next_cursor and base + tl.query(params, cursor=page.next_cursor),
        "previous_url": page
        and page.previous_cursor
        and base + tl.query(params, cursor=page.previous_cursor),
        "exports": [
            (fmt, reverse("workspace:tasks-export", args=[fmt]) + tl.query(params))
            for fmt in EXPORT_FORMATS
        ],
        "filtered": bool(tl.kept_params(params)),
    }
    return context, 400 if errors else 200


def _render(request, context: dict, status: int):
    partial = request.htmx and not request.htmx.history_restore_request
    template = "workspace/_task_list.html" if partial else "workspace/task_list.html"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@require_GET
def task_list(request):
    context, status = _context(request)
    return _render(request, context, status)


@login_required
@require_GET
def task_export(request, fmt: str):
    """Every row of the filtered list (not only the page shown), as CSV or XLSX."""
    if fmt not in EXPORT_FORMATS:
        raise Http404
    try:
        queryset = tl.rows(user=request.user, params=request.GET)
    except tl.TaskListError:
        context, status = _context(request)
        return _render(request, context, status)
    if fmt == "csv":
        return exports.csv_response(queryset)
    now = timezone.localtime()
    zone = timezone.get_current_timezone()
    about = [
        (_("Exported at"), f"{now:%Y-%m-%d %H:%M} {now.tzname()}"),
        (_("Exported by"), person(request.user)),
        (_("Time zone"), getattr(zone, "key", str(zone))),
        (pgettext("task list", "Filters"), tl.query(request.GET).lstrip("?") or _("none")),
    ]
    return exports.xlsx_response(queryset, about=about)
