"""Exports of the task list as CSV and XLSX: exactly the filtered list, every page of it.

The rows are `workspace.task_list.rows()` (the policy's scope, then the API's filters, in
the list's sort order), read with `iterator(chunk_size=...)`: one query whatever the size
(a server-side cursor on PostgreSQL), and never the whole list in memory. CSV is streamed as
it is written; XLSX goes through openpyxl's write-only mode into a spooled temporary file.

The columns are those of the page, headed and worded in the viewer's language: status and
priority as labels, organizations by their name in that language, the due date as a date,
the deadline with its own zone ("2026-12-31, ends 24:00 KST") and its instant in the
viewer's zone. `EXPORT_COLUMNS` holds each column's stable `key`; `column_keys(headers)`
maps a file's header row (in either language) back to those keys, so an import can read
an export back.

A text cell that Excel would read as a formula (starting with =, +, -, @) is written as
text: in XLSX as a string cell, in CSV behind a leading apostrophe (OWASP's advice).
"""

import csv
import datetime as dt
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from . import labels
from .templatetags.workspace import deadline, org_name, person

CHUNK_SIZE = 2000
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Excel reads UTF-8 CSV (Korean names) correctly only after a byte order mark.
BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SPOOL_BYTES = 8 * 1024 * 1024


def _deadline_local(task) -> str:
    """The deadline's instant in the viewer's zone: 2026-12-31 10:00 EST; the end of a day
    reads as 24:00 of that day, as the deadline itself (2026-12-31 24:00 KST)."""
    local = timezone.localtime(task.deadline_at)
    zone = local.tzname() or ""
    if local.time() == dt.time(0, 0):
        return f"{(local - dt.timedelta(days=1)):%Y-%m-%d} 24:00 {zone}".strip()
    return f"{local:%Y-%m-%d %H:%M} {zone}".strip()


def _assignee(task) -> str:
    if task.assignee_id is None or not task.assignee_shown:
        return ""
    return person(task.assignee)


@dataclass(frozen=True)
class ExportColumn:
    key: str
    header: object
    value: object  # task -> cell value (str, int or date)
    text: bool = True  # free text: guarded against formulas


EXPORT_COLUMNS = (
    ExportColumn("plan", gettext_lazy("Plan"), lambda t: t.plan.code),
    ExportColumn("ref", pgettext_lazy("task list", "Ref"), lambda t: t.ref),
    ExportColumn("title", pgettext_lazy("task list", "Title"), lambda t: t.title),
    ExportColumn(
        "workstream",
        gettext_lazy("Workstream"),
        lambda t: t.workstream.title if t.workstream else "",
    ),
    ExportColumn("status", gettext_lazy("Status"), lambda t: str(labels.status(t.status))),
    ExportColumn(
        "overdue",
        gettext_lazy("Overdue"),
        lambda t: str(pgettext_lazy("overdue", "Yes")) if t.is_overdue else "",
    ),
    ExportColumn("due_date", pgettext_lazy("task list", "Due date"), lambda t: t.due_date, False),
    ExportColumn("deadline", pgettext_lazy("task list", "Deadline"), deadline),
    ExportColumn(
        "deadline_local", pgettext_lazy("task list", "Deadline in your time zone"), _deadline_local
    ),
    ExportColumn(
        "priority",
        gettext_lazy("Priority"),
        lambda t: str(labels.PRIORITY.get(t.priority, t.priority)),
    ),
    ExportColumn("assignee", gettext_lazy("Assignee"), _assignee),
    ExportColumn(
        "lead_organization",
        gettext_lazy("Lead organization"),
        lambda t: org_name(t.lead_organization),
    ),
    ExportColumn("progress", gettext_lazy("Progress (%)"), lambda t: t.progress, False),
)


def column_keys(headers: list[str]) -> list[str | None]:
    """The column key of each header of an exported file, read in English or Korean."""
    known = {}
    for language in (code for code, _name in settings.LANGUAGES):
        with translation.override(language):
            known.update({str(column.header): column.key for column in EXPORT_COLUMNS})
    return [known.get((header or "").lstrip(BOM).strip()) for header in headers]


def _guard(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def _cells(task) -> list:
    return [column.value(task) for column in EXPORT_COLUMNS]


def _tasks(queryset) -> Iterator:
    return queryset.iterator(chunk_size=CHUNK_SIZE)


def filename(extension: str) -> str:
    return f"tasks-{timezone.localdate():%Y-%m-%d}.{extension}"


class _Echo:
    """csv.writer writes into this and gets the line back, to be streamed."""

    def write(self, value):
        return value


def _csv_lines(queryset, language: str, zone) -> Iterator[bytes]:
    # Streaming runs after the view returned: keep the viewer's language and zone.
    with translation.override(language), timezone.override(zone):
        writer = csv.writer(_Echo())
        yield (BOM + writer.writerow([str(c.header) for c in EXPORT_COLUMNS])).encode()
        for task in _tasks(queryset):
            cells = []
            for column, value in zip(EXPORT_COLUMNS, _cells(task), strict=True):
                if isinstance(value, dt.date):
                    value = value.isoformat()
                elif column.text and isinstance(value, str):
                    value = _guard(value)
                cells.append(value)
            yield writer.writerow(cells).encode()


def csv_response(queryset) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        _csv_lines(queryset, translation.get_language(), timezone.get_current_timezone()),
        content_type=CSV_TYPE,
    )
    response["Content-Disposition"] = f'attachment; filename="{filename("csv")}"'
    return response


def xlsx_response(queryset, *, about: list[tuple[str, str]] = ()) -> FileResponse:
    """The list as one worksheet (and `about`, label/value pairs, on a second one)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=_("Tasks")[:31])
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)

    def cell(value, *, header=False, text=True, on=sheet):
        cell = WriteOnlyCell(on, value=value)
        if isinstance(value, str) and text:
            cell.data_type = "s"  # never a formula
        if isinstance(value, dt.date):
            cell.number_format = "yyyy-mm-dd"
        if header:
            cell.font = bold
        return cell

    sheet.append([cell(str(column.header), header=True) for column in EXPORT_COLUMNS])
    for task in _tasks(queryset):
        sheet.append(
            [
                cell(value, text=column.text)
                for column, value in zip(EXPORT_COLUMNS, _cells(task), strict=True)
            ]
        )
    if about:
        info = workbook.create_sheet(title=_("About this export")[:31])
        for label, value in about:
            info.append([cell(label, header=True, on=info), cell(value, on=info)])
    # FileResponse closes it once sent.
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    workbook.save(spool)
    spool.seek(0)
    return FileResponse(
        spool, as_attachment=True, filename=filename("xlsx"), content_type=XLSX_TYPE
    )
