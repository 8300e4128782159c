"""The import pages: `/tasks/import/` and `/outcomes/import/`.

Upload a CSV or XLSX file -> a dry run shows, row by row, what would be created, changed or
left unchanged and every problem (row, column, message) -> confirm. The confirmation posts
the same file back (base64 in a hidden field: no server-side state between the two steps)
and runs the import again, for real, in one transaction; if anything changed meanwhile and
a row now fails, nothing is written and the new problems are shown.
"""

import base64
import binascii

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from plans import permissions as policy
from plans.models import Forum

from . import imports

KINDS = {
    "tasks": (imports.task_import, imports.TASK_COLUMNS),
    "outcomes": (imports.outcome_import, imports.OUTCOME_COLUMNS),
}
NO_FILE = gettext_lazy("Choose a CSV or XLSX file to import.")
FILE_CHANGED = gettext_lazy("The file to confirm could not be read: upload it again.")


def _column_help(columns) -> list[dict]:
    return [
        {"header": str(column.header), "key": column.key}
        for column in columns
        if not column.read_only
    ]


def _page(request, kind: str, *, report=None, error: str = "", data=b"", filename="", status=200):
    _run, columns = KINDS[kind]
    forum = None
    if kind == "outcomes" and request.GET.get("forum", "").isdigit():
        forum = Forum.objects.filter(pk=request.GET["forum"]).first()
    context = {
        "kind": kind,
        "columns": _column_help(columns),
        "report": report,
        "error": error,
        "encoded": base64.b64encode(data).decode() if report and not report.errors else "",
        "filename": filename,
        "forum": forum,
        "back_url": reverse("workspace:forum", args=[forum.pk])
        if forum
        else reverse("workspace:forums" if kind == "outcomes" else "workspace:tasks"),
        "template_url": reverse(f"workspace:{kind}-import") + "?template=csv",
        "may_write_outcomes": policy.can(request.user, policy.ADD, imports.Outcome),
    }
    return render(request, "workspace/import.html", context, status=status)


def _uploaded(request) -> tuple[bytes, str] | None:
    """The file of the first step, or the base64 copy the confirmation posts back."""
    upload = request.FILES.get("file")
    if upload is not None:
        if upload.size > imports.MAX_BYTES:
            raise imports.ImportFileError(
                imports.FILE_TOO_LARGE % {"limit": imports.MAX_BYTES / 1_000_000}
            )
        return upload.read(), upload.name
    encoded = request.POST.get("encoded", "")
    if encoded:
        try:
            return base64.b64decode(encoded, validate=True), request.POST.get("filename", "")
        except (binascii.Error, ValueError):
            raise imports.ImportFileError(FILE_CHANGED) from None
    return None


@login_required
@require_http_methods(["GET", "POST"])
def import_page(request, kind: str):
    if kind not in KINDS:
        raise Http404
    run, columns = KINDS[kind]
    if request.method == "GET":
        if request.GET.get("template") == "csv":
            response = HttpResponse(imports.template_csv(columns), content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="{kind}-import.csv"'
            return response
        return _page(request, kind)
    confirm = request.POST.get("step") == "confirm"
    try:
        uploaded = _uploaded(request)
        if uploaded is None:
            return _page(request, kind, error=str(NO_FILE), status=400)
        data, filename = uploaded
        extra = {}
        if kind == "outcomes" and request.GET.get("forum", "").isdigit():
            extra["forum"] = Forum.objects.filter(pk=request.GET["forum"]).first()
        report = run(actor=request.user, data=data, filename=filename, dry_run=not confirm, **extra)
    except imports.ImportFileError as exc:
        return _page(request, kind, error=exc.message, status=400)
    if report.committed:
        counts = report.counts
        messages.success(
            request,
            _("Imported %(file)s: %(created)s created, %(changed)s changed, %(unchanged)s "
              "unchanged.") % {"file": filename, "created": counts["create"],
                               "changed": counts["change"], "unchanged": counts["unchanged"]},
        )  # fmt: skip
        target = reverse("workspace:tasks") if kind == "tasks" else reverse("workspace:forums")
        if extra.get("forum"):
            target = reverse("workspace:forum", args=[extra["forum"].pk])
        return redirect(target)
    status = 400 if report.errors else 200
    return _page(request, kind, report=report, data=data, filename=filename, status=status)
