"""Spreadsheet import of tasks and outcomes (CSV and XLSX), with a dry run.

    report = task_import(actor=user, data=b"...", filename="tasks.xlsx", dry_run=True)
    report.counts  -> {"create": 3, "change": 1, "unchanged": 496, "error": 0}
    report.errors  -> [ImportError_(row=7, column="due_date", header="Due date", message=...)]

Why our own reader and not django-import-export: its `Resource.import_data` saves each row
through the ORM (`instance.save()`, `save_m2m`), past `plans.services`, so the policy, the
task's history, the deadline in the plan's zone and the services' validation would not apply.
Here every write is a service call (task_create, task_update, task_change_deadline,
task_assign, task_transition, status_update_add, outcome_create, outcome_update); this
module only reads the file, resolves natural keys and compares.

- The header row may be in English or Korean: the task columns are the workspace export's
  (`workspace.exports.EXPORT_COLUMNS`, so an exported file reads back) plus a few of our own
  (description, start date, manager, supporting organizations, source outcomes, the title
  in each language). Read-only columns of the export (overdue, deadline) are ignored.
- Natural keys: a plan by its code, a task by plan and ref, a workstream by code or title,
  an organization by name or acronym (either language), a person by username, e-mail or
  full name, a forum by "name (YYYY-MM-DD)" or its name, an outcome by forum and title.
- An empty cell leaves the stored value as it is (an export hides some assignees).
- Every bad row is reported with its row number (as the spreadsheet shows it: the header is
  row 1), its column and a message; all of them, not the first only.
- All or nothing: the whole file runs in one transaction, each row in a savepoint so the
  rows after a bad one are still checked; any error, or a dry run, rolls everything back.
  A dry run therefore runs the very services a real import runs.
- Sight: a task the actor cannot see reads as "not found" (the same words as a task that
  does not exist, when the actor may not add tasks to the plan either): nothing leaks.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, Value
from django.db.models.functions import Concat, Trim
from django.utils import translation
from django.utils.translation import gettext_lazy, pgettext_lazy

from plans import permissions as policy
from plans import services
from plans.exceptions import DomainError, NotAllowed, NotVisible
from plans.models import Forum, Outcome, OutcomeKind, OutcomeStatus, Plan, Task, Workstream
from tracker import content_language
from tracker.models import Organization, User

from . import exports, labels

MAX_BYTES = 1_500_000  # base64 of it still fits Django's default 2.5 MB form-field limit
MAX_ROWS = 5000
LIST_SEPARATOR = ";"
XLSX_MAGIC = b"PK\x03\x04"

# Actions a row leads to.
CREATE, CHANGE, UNCHANGED, ERROR = "create", "change", "unchanged", "error"

# Messages (tests compare against these).
FILE_UNREADABLE = gettext_lazy("The file is neither a readable CSV nor an XLSX workbook.")
FILE_TOO_LARGE = gettext_lazy("The file is larger than %(limit)s MB.")
FILE_TOO_MANY_ROWS = gettext_lazy("The file has more than %(limit)s rows.")
FILE_EMPTY = gettext_lazy("The file has no header row.")
FILE_NO_ROWS = gettext_lazy("The file has a header row but no rows.")
UNKNOWN_COLUMN = gettext_lazy("Unknown column: %(header)s.")
DUPLICATE_COLUMN = gettext_lazy("The column %(header)s appears twice.")
MISSING_COLUMN = gettext_lazy("The file needs a column %(header)s.")
REQUIRED = gettext_lazy("A new row needs a value here.")
DUPLICATE_ROW = gettext_lazy("The same row key appears in row %(row)s.")
BAD_DATE = gettext_lazy("Enter a date as YYYY-MM-DD.")
BAD_PROGRESS = gettext_lazy("Enter a whole number from 0 to 100.")
BAD_AMOUNT = gettext_lazy("Enter an amount as a number, e.g. 1500000.")
BAD_BOOLEAN = gettext_lazy("Enter yes or no.")
BAD_CHOICE = gettext_lazy("Unknown value %(value)s: use one of %(choices)s.")
PLAN_NOT_FOUND = gettext_lazy("No plan with the code %(code)s that you can see.")
TASK_NOT_FOUND = gettext_lazy(
    "No task %(ref)s in plan %(plan)s that you can see, and you may not add tasks to this plan."
)
TASK_NOT_CHANGEABLE = gettext_lazy("You may not change this task.")
WORKSTREAM_NOT_FOUND = gettext_lazy("No workstream %(value)s in plan %(plan)s.")
WORKSTREAM_AMBIGUOUS = gettext_lazy("Several workstreams are called %(value)s: write the code.")
ORGANIZATION_NOT_FOUND = gettext_lazy("No organization named %(value)s.")
ORGANIZATION_AMBIGUOUS = gettext_lazy(
    "Several organizations are called %(value)s: write the full name."
)
PERSON_NOT_FOUND = gettext_lazy("No person %(value)s that you can see (username or e-mail).")
PERSON_AMBIGUOUS = gettext_lazy("Several people are called %(value)s: write the username.")
OUTCOME_NOT_FOUND = gettext_lazy("No outcome titled %(value)s.")
OUTCOME_AMBIGUOUS = gettext_lazy(
    "Several outcomes are titled %(value)s: write 'forum (YYYY-MM-DD): title'."
)
FORUM_NOT_FOUND = gettext_lazy("No forum %(value)s.")
FORUM_AMBIGUOUS = gettext_lazy(
    "Several forums are called %(value)s: add the date, e.g. '%(value)s (2024-06-01)'."
)
OUTCOMES_NOT_ALLOWED = gettext_lazy("You may not add or change outcomes.")
IMPORT_NOTE = gettext_lazy("Imported from the spreadsheet %(file)s.")

YES = {"yes", "y", "true", "1", "예", "네", "o"}
NO = {"no", "n", "false", "0", "아니오", "아니요", "x"}
FORUM_WITH_DATE = re.compile(r"^(?P<name>.+?)\s*\((?P<date>\d{4}-\d{2}-\d{2})\)$")


class ImportFileError(Exception):
    """The file as a whole cannot be read (not a row's fault)."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = str(message)


@dataclass(frozen=True)
class Column:
    key: str
    header: object  # lazy label, read in either language
    # kind of value: text, date, int, org, orgs, person, list, choice, bool, decimal
    kind: str = "text"
    read_only: bool = False  # written by the export, ignored here


@dataclass
class RowError:
    row: int
    column: str  # the column key ("" for the row as a whole)
    header: str  # the column as the file heads it
    message: str

    def as_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "header": self.header,
                "message": self.message}  # fmt: skip


@dataclass
class RowResult:
    row: int
    key: str
    action: str
    changes: list[dict] = field(default_factory=list)  # {"column", "header", "old", "new"}

    def as_dict(self) -> dict:
        return {"row": self.row, "key": self.key, "action": self.action, "changes": self.changes}


@dataclass
class ImportReport:
    kind: str  # "tasks" or "outcomes"
    dry_run: bool
    rows: list[RowResult] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    committed: bool = False

    @property
    def counts(self) -> dict:
        counter = Counter(row.action for row in self.rows)
        return {name: counter.get(name, 0) for name in (CREATE, CHANGE, UNCHANGED, ERROR)}

    @property
    def changed(self) -> int:
        return self.counts[CREATE] + self.counts[CHANGE]

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "dry_run": self.dry_run,
            "committed": self.committed,
            "counts": self.counts,
            "rows": [row.as_dict() for row in self.rows],
            "errors": [error.as_dict() for error in self.errors],
        }


# --- Columns ---------------------------------------------------------------------------------

_EXPORT_KINDS = {
    "plan": "text", "ref": "text", "title": "text", "workstream": "text", "status": "choice",
    "overdue": "text", "due_date": "date", "deadline": "text", "deadline_local": "text",
    "priority": "choice", "assignee": "person", "lead_organization": "org", "progress": "int",
}  # fmt: skip
_READ_ONLY = {"overdue", "deadline", "deadline_local"}

TASK_COLUMNS = (
    *(
        Column(c.key, c.header, _EXPORT_KINDS[c.key], c.key in _READ_ONLY)
        for c in exports.EXPORT_COLUMNS
    ),
    Column("title_en", gettext_lazy("Title (English)")),
    Column("title_ko", gettext_lazy("Title (Korean)")),
    Column("description", pgettext_lazy("import column", "Description")),
    Column("start_date", pgettext_lazy("import column", "Start date"), "date"),
    Column("manager", pgettext_lazy("import column", "Manager"), "person"),
    Column(
        "supporting_organizations",
        pgettext_lazy("import column", "Supporting organizations"),
        "orgs",
    ),
    Column("source_outcomes", pgettext_lazy("import column", "Source outcomes"), "list"),
)

OUTCOME_COLUMNS = (
    Column("forum", pgettext_lazy("import column", "Forum")),
    Column("title", pgettext_lazy("import column", "Title")),
    Column("title_en", gettext_lazy("Title (English)")),
    Column("title_ko", gettext_lazy("Title (Korean)")),
    Column("kind", pgettext_lazy("import column", "Kind"), "choice"),
    Column("status", pgettext_lazy("import column", "Status"), "choice"),
    Column("clause_ref", pgettext_lazy("import column", "Clause"), "text"),
    Column("parties", pgettext_lazy("import column", "Parties"), "orgs"),
    Column("signed_on", pgettext_lazy("import column", "Signed on"), "date"),
    Column("amount", pgettext_lazy("import column", "Amount"), "decimal"),
    Column("currency", pgettext_lazy("import column", "Currency"), "text"),
    Column("binding", pgettext_lazy("import column", "Binding"), "bool"),
    Column("text", pgettext_lazy("import column", "Verbatim text"), "text"),
)


def _headers_known(columns) -> dict[str, str]:
    """Every way a header may be written (English, Korean, the key) -> the column key."""
    known = {}
    for language in (code for code, _name in settings.LANGUAGES):
        with translation.override(language):
            known.update({str(column.header).casefold(): column.key for column in columns})
    known.update({column.key.casefold(): column.key for column in columns})
    return known


def column_headers(columns) -> list[str]:
    """The headers in the viewer's language (the template's first row)."""
    return [str(column.header) for column in columns if not column.read_only]


def _choices(mapping: dict, values) -> dict[str, str]:
    """Labels in both languages and the codes themselves -> code."""
    known = {}
    for language in (code for code, _name in settings.LANGUAGES):
        with translation.override(language):
            known.update({str(label).casefold(): code for code, label in mapping.items()})
    known.update({code.casefold(): code for code in values})
    return known


# --- Reading the file ------------------------------------------------------------------------


def _unguard(value: str) -> str:
    """The export writes '=... behind an apostrophe (no formula); read the text back."""
    if len(value) > 1 and value[0] == "'" and value[1] in exports.FORMULA_STARTS:
        return value[1:]
    return value


def _read_xlsx(data: bytes) -> list[list]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ImportFileError(FILE_UNREADABLE) from exc
    try:
        sheet = workbook.worksheets[0]
        rows = []
        for values in sheet.iter_rows(values_only=True):
            rows.append(list(values))
            if len(rows) > MAX_ROWS + 1:
                raise ImportFileError(FILE_TOO_MANY_ROWS % {"limit": MAX_ROWS})
        return rows
    finally:
        workbook.close()


def _read_csv(data: bytes) -> list[list]:
    for encoding in ("utf-8-sig", "cp949"):  # Excel in Korean saves CSV as CP949
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportFileError(FILE_UNREADABLE)
    if "\x00" in text:
        raise ImportFileError(FILE_UNREADABLE)
    first_line = text.split("\n", 1)[0]
    try:
        dialect = csv.Sniffer().sniff(first_line, delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    rows = []
    try:
        for values in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            rows.append([_unguard(value) for value in values])
            if len(rows) > MAX_ROWS + 1:
                raise ImportFileError(FILE_TOO_MANY_ROWS % {"limit": MAX_ROWS})
    except csv.Error as exc:
        raise ImportFileError(FILE_UNREADABLE) from exc
    return rows


def read_rows(data: bytes, filename: str = "") -> list[list]:
    """The file's rows (the header first), from XLSX (by its content) or CSV."""
    if len(data) > MAX_BYTES:
        raise ImportFileError(FILE_TOO_LARGE % {"limit": MAX_BYTES / 1_000_000})
    if data.startswith(XLSX_MAGIC):
        return _read_xlsx(data)
    if filename.lower().endswith((".xlsx", ".xlsm")):
        raise ImportFileError(FILE_UNREADABLE)
    return _read_csv(data)


def _is_blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


class _Table:
    """The header mapped to column keys; rows as {key: raw value} with their row number."""

    def __init__(self, rows: list[list], columns, errors: list[RowError]):
        self.columns = {column.key: column for column in columns}
        known = _headers_known(columns)
        if not rows or all(_is_blank(value) for value in rows[0]):
            raise ImportFileError(FILE_EMPTY)
        header = rows[0]
        self.headers: dict[str, str] = {}  # key -> header as written
        self.positions: list[tuple[int, str]] = []
        for position, raw in enumerate(header):
            text = _text(raw).lstrip(exports.BOM).strip()
            if not text:
                continue
            key = known.get(text.casefold())
            if key is None:
                errors.append(RowError(1, "", text, str(UNKNOWN_COLUMN % {"header": text})))
            elif key in self.headers:
                errors.append(RowError(1, key, text, str(DUPLICATE_COLUMN % {"header": text})))
            else:
                self.headers[key] = text
                if not self.columns[key].read_only:
                    self.positions.append((position, key))
        self.rows: list[tuple[int, dict]] = []
        for number, values in enumerate(rows[1:], start=2):
            if all(_is_blank(value) for value in values):
                continue
            cells = {}
            for position, key in self.positions:
                value = values[position] if position < len(values) else None
                cells[key] = None if _is_blank(value) else value
            self.rows.append((number, cells))

    def header(self, key: str) -> str:
        if key in self.headers:
            return self.headers[key]
        column = self.columns.get(key)
        return str(column.header) if column else key

    def require(self, keys, errors):
        for key in keys:
            if key not in self.headers:
                header = str(self.columns[key].header)
                errors.append(RowError(1, key, header, str(MISSING_COLUMN % {"header": header})))

    def values(self, key: str) -> set[str]:
        return {_text(cells[key]) for _n, cells in self.rows if cells.get(key) is not None}

    def list_values(self, key: str) -> set[str]:
        found = set()
        for text in self.values(key):
            found.update(part.strip() for part in text.split(LIST_SEPARATOR) if part.strip())
        return found


# --- Resolving natural keys ------------------------------------------------------------------


class _Row:
    """One row being read: typed values and the errors met, per column."""

    def __init__(self, number: int, cells: dict, table: _Table, report: ImportReport):
        self.number, self.cells, self.table, self.report = number, cells, table, report
        self.failed = False

    def error(self, key: str, message) -> None:
        self.failed = True
        self.report.errors.append(
            RowError(self.number, key, self.table.header(key) if key else "", str(message))
        )

    def given(self, key: str) -> bool:
        return self.cells.get(key) is not None

    def text(self, key: str) -> str | None:
        return _text(self.cells[key]) if self.given(key) else None

    def date(self, key: str) -> dt.date | None:
        value = self.cells.get(key)
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            text = _text(value)
            if len(text) != 10:
                raise ValueError(text)
            return dt.date.fromisoformat(text)
        except ValueError:
            self.error(key, BAD_DATE)
            return None

    def integer(self, key: str, low=0, high=100) -> int | None:
        value = self.cells.get(key)
        if value is None:
            return None
        try:
            number = Decimal(_text(value).rstrip("%").strip())
            if number != number.to_integral_value() or not low <= number <= high:
                raise ValueError
            return int(number)
        except (InvalidOperation, ValueError):
            self.error(key, BAD_PROGRESS)
            return None

    def decimal(self, key: str) -> Decimal | None:
        value = self.cells.get(key)
        if value is None:
            return None
        try:
            number = Decimal(_text(value).replace(",", ""))
            if not number.is_finite():
                raise InvalidOperation
            return number
        except InvalidOperation:
            self.error(key, BAD_AMOUNT)
            return None

    def boolean(self, key: str) -> bool | None:
        value = self.cells.get(key)
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        word = _text(value).casefold()
        if word in YES:
            return True
        if word in NO:
            return False
        self.error(key, BAD_BOOLEAN)
        return None

    def choice(self, key: str, known: dict[str, str], mapping: dict) -> str | None:
        text = self.text(key)
        if text is None:
            return None
        code = known.get(text.casefold())
        if code is None:
            choices = ", ".join(str(label) for label in mapping.values())
            self.error(key, BAD_CHOICE % {"value": text, "choices": choices})
        return code

    def lookup(self, key: str, index: dict, text: str, missing, ambiguous):
        found = index.get(text.casefold())
        if not found:
            self.error(key, missing % {"value": text})
            return None
        if len(found) > 1:
            self.error(key, ambiguous % {"value": text})
            return None
        return next(iter(found))

    def many(self, key: str, index: dict, missing, ambiguous) -> list | None:
        text = self.text(key)
        if text is None:
            return None
        found = []
        for part in (p.strip() for p in text.split(LIST_SEPARATOR)):
            if part:
                obj = self.lookup(key, index, part, missing, ambiguous)
                if obj is not None and obj not in found:
                    found.append(obj)
        return found


def _index(objects, *names) -> dict[str, set]:
    """casefolded name -> objects with that value in any of `names`."""
    index: dict[str, set] = {}
    for obj in objects:
        for name in names:
            value = getattr(obj, name, None)
            if value:
                index.setdefault(str(value).strip().casefold(), set()).add(obj)
    return index


def _organizations(names: set[str]) -> dict[str, set]:
    if not names:
        return {}
    columns = ("name", "name_en", "name_ko", "acronym_en", "acronym_ko")
    query = Q()
    for column in columns:
        query |= Q(**{f"{column}__in": names})
    found = list(Organization.objects.filter(query))
    # An exact name wins over an acronym shared by others.
    index = _index(found, "acronym_en", "acronym_ko")
    index.update(_index(found, "name", "name_en", "name_ko"))
    return index


def _people(actor, names: set[str]) -> dict[str, set]:
    if not names:
        return {}
    people = (
        policy.for_user(actor, policy.VIEW, User)
        .annotate(import_full_name=Trim(Concat("first_name", Value(" "), "last_name")))
        .filter(Q(username__in=names) | Q(email__in=names) | Q(import_full_name__in=names))
    )
    found = list(people)
    index = _index(found, "import_full_name")
    index.update(_index(found, "email"))
    index.update(_index(found, "username"))
    return index


def _service_errors(row: _Row, exc: Exception, field_columns: dict[str, str], fallback: str):
    """A service's refusal on the column it names (or `fallback`)."""
    from .views import refusal_text, service_message

    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            for name, errors in exc.message_dict.items():
                key = field_columns.get(name, name if name in row.table.columns else fallback)
                for text in errors:
                    row.error(key, service_message(str(text)))
        else:
            for text in exc.messages:
                row.error(fallback, service_message(str(text)))
    elif isinstance(exc, NotVisible | NotAllowed):
        row.error(fallback, TASK_NOT_CHANGEABLE if row.report.kind == "tasks" else exc.message)
    elif isinstance(exc, DomainError):
        row.error(fallback, refusal_text(exc))
    else:
        raise exc


def _change(key, header, old, new) -> dict:
    return {"column": key, "header": header, "old": _shown(old), "new": _shown(new)}


def _shown(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple | set):
        return "; ".join(sorted(_shown(item) for item in value))
    if isinstance(value, User):
        return value.get_full_name() or value.username
    if isinstance(value, Organization):
        return content_language.shown(value, "name")[0] or value.name
    if isinstance(value, Workstream | Outcome):
        return content_language.shown(value, "title")[0]
    return str(value)


def _run(report: ImportReport, dry_run: bool, rows_work) -> ImportReport:
    """All or nothing: one transaction, a savepoint per row; roll back on a dry run or any
    error."""
    with transaction.atomic():
        rows_work()
        report.committed = not dry_run and not report.errors
        if not report.committed:
            transaction.set_rollback(True)
    return report


def _savepoint(row: _Row, work, field_columns: dict[str, str], fallback: str):
    try:
        with transaction.atomic():
            return work()
    except (ValidationError, DomainError) as exc:
        _service_errors(row, exc, field_columns, fallback)
        return None


# --- Tasks -----------------------------------------------------------------------------------

STATUS_CHOICES = _choices(labels.STATUS, Task.Status.values)
PRIORITY_CHOICES = _choices(labels.PRIORITY, Task.Priority.values)
TASK_FIELD_COLUMNS = {
    "title_en": "title", "title_ko": "title", "description_en": "description",
    "description_ko": "description", "deadline_at": "due_date", "note": "status",
    "evidence_url": "status", "reason": "due_date", "plan": "plan",
    "supporting_organizations": "supporting_organizations", "depends_on": "ref",
}  # fmt: skip


def task_import(*, actor, data: bytes, filename: str = "", dry_run: bool = True) -> ImportReport:
    """Read tasks from a CSV or XLSX file and create or change them through the services."""
    report = ImportReport(kind="tasks", dry_run=dry_run)
    table = _Table(read_rows(data, filename), TASK_COLUMNS, report.errors)
    table.require(("plan", "ref"), report.errors)
    if report.errors:
        return report
    if not table.rows:
        raise ImportFileError(FILE_NO_ROWS)
    # Everything the rows name, in a fixed number of queries whatever the file's length.
    plans = {
        plan.code: plan
        for plan in policy.for_user(actor, policy.VIEW, Plan).filter(code__in=table.values("plan"))
    }
    workstreams: dict[int, dict[str, set]] = {}
    for workstream in Workstream.objects.filter(plan__in=list(plans.values())):
        index = workstreams.setdefault(workstream.plan_id, {})
        for name in ("code", "title_en", "title_ko"):
            value = getattr(workstream, name)
            if value:
                index.setdefault(value.strip().casefold(), set()).add(workstream)
    organizations = _organizations(
        table.values("lead_organization") | table.list_values("supporting_organizations")
    )
    people = _people(actor, table.values("assignee") | table.values("manager"))
    outcome_titles = table.list_values("source_outcomes")
    outcomes = _index(
        Outcome.objects.filter(Q(title_en__in=outcome_titles) | Q(title_ko__in=outcome_titles))
        if outcome_titles
        else [],
        "title_en",
        "title_ko",
    )
    existing = {
        (task.plan_id, task.ref): task
        for task in policy.for_user(actor, policy.VIEW, Task)
        .filter(plan__in=list(plans.values()), ref__in=table.values("ref"))
        .select_related("plan", "workstream", "lead_organization", "assignee", "manager")
        .prefetch_related("supporting_organizations", "source_outcomes")
    }
    may_add = {plan.pk: policy.can(actor, policy.CHANGE, plan) for plan in plans.values()}
    note = str(IMPORT_NOTE % {"file": filename or "-"})
    seen: dict[tuple, int] = {}

    def work():
        for number, cells in table.rows:
            row = _Row(number, cells, table, report)
            result = _task_row(
                row, actor=actor, plans=plans, workstreams=workstreams,
                organizations=organizations, people=people, outcomes=outcomes,
                existing=existing, may_add=may_add, seen=seen, note=note,
            )  # fmt: skip
            report.rows.append(result)

    return _run(report, dry_run, work)


def _task_row(row: _Row, *, actor, plans, workstreams, organizations, people, outcomes,
              existing, may_add, seen, note) -> RowResult:  # fmt: skip
    code, ref = row.text("plan"), row.text("ref")
    result = RowResult(row.number, f"{code or '?'} / {ref or '?'}", ERROR)
    for key, value in (("plan", code), ("ref", ref)):
        if value is None:
            row.error(key, REQUIRED)
    plan = plans.get(code) if code else None
    if code and plan is None:
        row.error("plan", PLAN_NOT_FOUND % {"code": code})
    if plan and ref:
        first = seen.setdefault((plan.pk, ref), row.number)
        if first != row.number:
            row.error("ref", DUPLICATE_ROW % {"row": first})
    # Typed values (errors are collected, the row goes on to report every column).
    wanted: dict = {}
    for key in ("title", "title_en", "title_ko", "description"):
        if row.given(key):
            wanted[key] = row.text(key)
    for key in ("due_date", "start_date"):
        if row.given(key):
            wanted[key] = row.date(key)
    if row.given("status"):
        wanted["status"] = row.choice("status", STATUS_CHOICES, labels.STATUS)
    if row.given("priority"):
        wanted["priority"] = row.choice("priority", PRIORITY_CHOICES, labels.PRIORITY)
    if row.given("progress"):
        wanted["progress"] = row.integer("progress")
    for key in ("assignee", "manager"):
        if row.given(key):
            wanted[key] = row.lookup(key, people, row.text(key), PERSON_NOT_FOUND, PERSON_AMBIGUOUS)
    if row.given("lead_organization"):
        wanted["lead_organization"] = row.lookup(
            "lead_organization", organizations, row.text("lead_organization"),
            ORGANIZATION_NOT_FOUND, ORGANIZATION_AMBIGUOUS,
        )  # fmt: skip
    if row.given("supporting_organizations"):
        wanted["supporting_organizations"] = row.many(
            "supporting_organizations", organizations, ORGANIZATION_NOT_FOUND,
            ORGANIZATION_AMBIGUOUS,
        )  # fmt: skip
    if row.given("source_outcomes"):
        wanted["source_outcomes"] = row.many(
            "source_outcomes", outcomes, OUTCOME_NOT_FOUND, OUTCOME_AMBIGUOUS
        )
    if row.given("workstream") and plan is not None:
        text = row.text("workstream")
        wanted["workstream"] = row.lookup(
            "workstream", workstreams.get(plan.pk, {}), text,
            WORKSTREAM_NOT_FOUND % {"value": "%(value)s", "plan": plan.code},
            WORKSTREAM_AMBIGUOUS,
        )  # fmt: skip
    task = existing.get((plan.pk, ref)) if plan and ref else None
    if plan and ref and task is None and not may_add.get(plan.pk):
        row.error("ref", TASK_NOT_FOUND % {"ref": ref, "plan": plan.code})
    if task is not None and not row.failed:
        # Who may change what is the services' call (policy.ensure): a firm may move its
        # task or report progress by import, but not rename it.
        result.changes = _task_changes(task, wanted, row.table)
    if task is None and plan and ref and may_add.get(plan.pk):
        # A new task: report every missing cell (a bad one is reported already).
        for key in ("due_date", "lead_organization"):
            if not row.given(key):
                row.error(key, REQUIRED)
        if not any(row.given(key) for key in ("title", "title_en", "title_ko")):
            row.error("title", REQUIRED)
    if row.failed:
        return result
    if task is None:
        created = _savepoint(
            row, lambda: _task_create(actor, plan, ref, wanted, note), TASK_FIELD_COLUMNS, "ref"
        )
        if created is not None:
            result.action = CREATE
            result.changes = []
        return result
    if not result.changes:
        result.action = UNCHANGED
        return result
    done = _savepoint(
        row, lambda: _task_apply(actor, task, wanted, result.changes, note),
        TASK_FIELD_COLUMNS, "ref",
    )  # fmt: skip
    if done is not None:
        result.action = CHANGE
    return result


DESCRIPTIVE = ("title", "title_en", "title_ko", "description", "workstream",
               "lead_organization", "start_date", "priority")  # fmt: skip


def _current(task: Task, key: str):
    if key in ("title", "description"):
        return content_language.shown(task, key)[0]
    if key in ("title_en", "title_ko"):
        return getattr(task, key) or ""
    if key in ("supporting_organizations", "source_outcomes"):
        return list(getattr(task, key).all())
    return getattr(task, key)


def _task_changes(task: Task, wanted: dict, table: _Table) -> list[dict]:
    changes = []
    for key, new in wanted.items():
        if new is None:
            continue
        old = _current(task, key)
        if key in ("supporting_organizations", "source_outcomes"):
            if {o.pk for o in old} == {o.pk for o in new}:
                continue
        elif key in ("assignee", "manager", "workstream", "lead_organization"):
            if (old.pk if old else None) == new.pk:
                continue
        elif old == new:
            continue
        changes.append(_change(key, table.header(key), old, new))
    return changes


def _task_create(actor, plan: Plan, ref: str, wanted: dict, note: str) -> Task:
    fields = {
        key: wanted[key]
        for key in (
            "title_en",
            "title_ko",
            "description",
            "workstream",
            "start_date",
            "priority",
            "assignee",
            "manager",
        )  # fmt: skip
        if wanted.get(key) is not None
    }
    task = services.task_create(
        actor=actor,
        plan=plan,
        ref=ref,
        title=wanted.get("title") or None,
        lead_organization=wanted["lead_organization"],
        due_date=wanted["due_date"],
        supporting_organizations=wanted.get("supporting_organizations") or (),
        source_outcomes=wanted.get("source_outcomes") or (),
        note=note,
        **fields,
    )
    _task_moves(actor, task, wanted, note)
    return task


def _task_apply(actor, task: Task, wanted: dict, changes: list[dict], note: str) -> Task:
    changed = {change["column"] for change in changes}
    fields = {key: wanted[key] for key in DESCRIPTIVE if key in changed}
    m2m = {
        key: wanted[key]
        for key in ("supporting_organizations", "source_outcomes")
        if key in changed
    }
    if fields or m2m:
        task = services.task_update(actor=actor, task=task, **fields, **m2m)
    if "due_date" in changed:
        task = services.task_change_deadline(
            actor=actor, task=task, due_date=wanted["due_date"], reason=note
        )
    people = {key: wanted[key] for key in ("assignee", "manager") if key in changed}
    if people:
        assignee = people.get("assignee", task.assignee)
        task = services.task_assign(actor=actor, task=task, assignee=assignee, note=note,
                                    **({"manager": people["manager"]} if "manager" in people
                                       else {}))  # fmt: skip
    return _task_moves(actor, task, wanted, note)


def _task_moves(actor, task: Task, wanted: dict, note: str) -> Task:
    """A new status (one move of the workflow) and progress, as the workflow records them."""
    status = wanted.get("status")
    if status and status != task.status:
        task = services.task_transition(
            actor=actor, task=task, to_status=status, expected_from=task.status, note=note
        )
    progress = wanted.get("progress")
    if progress is not None and progress != task.progress:
        task = services.status_update_add(actor=actor, task=task, progress=progress, note=note).task
    return task


# --- Outcomes --------------------------------------------------------------------------------

KIND_CHOICES = _choices(labels.OUTCOME_KIND, OutcomeKind.values)
OUTCOME_STATUS_CHOICES = _choices(labels.OUTCOME_STATUS, OutcomeStatus.values)
OUTCOME_FIELD_COLUMNS = {"title_en": "title", "title_ko": "title", "forum": "forum"}
OUTCOME_SCALARS = ("kind", "status", "clause_ref", "signed_on", "amount", "currency",
                   "binding", "text", "title", "title_en", "title_ko")  # fmt: skip


def _forum_key(forum: Forum) -> str:
    return f"{forum.name} ({forum.held_on:%Y-%m-%d})"


def outcome_import(
    *, actor, data: bytes, filename: str = "", dry_run: bool = True, forum: Forum | None = None
):
    """Read outcomes of forums from a CSV or XLSX file; create or change them. With `forum`,
    a file without a forum column holds that forum's outcomes."""
    report = ImportReport(kind="outcomes", dry_run=dry_run)
    table = _Table(read_rows(data, filename), OUTCOME_COLUMNS, report.errors)
    if forum is not None and "forum" not in table.headers:
        for _number, cells in table.rows:
            cells["forum"] = _forum_key(forum)
    else:
        table.require(("forum",), report.errors)
    if "title" not in table.headers and not {"title_en", "title_ko"} & set(table.headers):
        table.require(("title",), report.errors)
    if report.errors:
        return report
    if not table.rows:
        raise ImportFileError(FILE_NO_ROWS)
    names = set()
    for text in table.values("forum"):
        match = FORUM_WITH_DATE.match(text)
        names.add(match["name"] if match else text)
    forums = list(
        Forum.objects.filter(Q(name__in=names) | Q(name_en__in=names) | Q(name_ko__in=names))
    )
    forum_index: dict[str, set] = {}
    for forum in forums:
        for name in {forum.name, forum.name_en, forum.name_ko} - {None, ""}:
            forum_index.setdefault(name.casefold(), set()).add(forum)
            when = f"{name} ({forum.held_on:%Y-%m-%d})".casefold()
            forum_index.setdefault(when, set()).add(forum)
    existing: dict[tuple[int, str], Outcome] = {}
    for outcome in Outcome.objects.filter(forum__in=forums).prefetch_related("parties"):
        for title in {outcome.title_en, outcome.title_ko} - {None, ""}:
            existing.setdefault((outcome.forum_id, title.strip().casefold()), outcome)
    organizations = _organizations(table.list_values("parties"))
    may_write = policy.can(actor, policy.ADD, Outcome)
    seen: dict[tuple, int] = {}

    def work():
        for number, cells in table.rows:
            row = _Row(number, cells, table, report)
            report.rows.append(
                _outcome_row(row, actor, forum_index, existing, organizations, may_write, seen)
            )

    return _run(report, dry_run, work)


def _outcome_row(row: _Row, actor, forum_index, existing, organizations, may_write, seen):
    forum_text = row.text("forum")
    title_key = next((k for k in ("title", "title_en", "title_ko") if row.given(k)), None)
    title = row.text(title_key) if title_key else None
    result = RowResult(row.number, f"{forum_text or '?'} / {title or '?'}", ERROR)
    if forum_text is None:
        row.error("forum", REQUIRED)
    if title is None:
        row.error("title", REQUIRED)
    forum = None
    if forum_text:
        forum = row.lookup("forum", forum_index, forum_text, FORUM_NOT_FOUND, FORUM_AMBIGUOUS)
    wanted: dict = {}
    for key in ("title", "title_en", "title_ko", "clause_ref", "text"):
        if row.given(key):
            wanted[key] = row.text(key)
    if row.given("currency"):
        wanted["currency"] = row.text("currency").upper()
    if row.given("kind"):
        wanted["kind"] = row.choice("kind", KIND_CHOICES, labels.OUTCOME_KIND)
    if row.given("status"):
        wanted["status"] = row.choice("status", OUTCOME_STATUS_CHOICES, labels.OUTCOME_STATUS)
    if row.given("signed_on"):
        wanted["signed_on"] = row.date("signed_on")
    if row.given("amount"):
        wanted["amount"] = row.decimal("amount")
    if row.given("binding"):
        wanted["binding"] = row.boolean("binding")
    if row.given("parties"):
        wanted["parties"] = row.many(
            "parties", organizations, ORGANIZATION_NOT_FOUND, ORGANIZATION_AMBIGUOUS
        )
    outcome = None
    if forum is not None and title:
        result.key = f"{_forum_key(forum)} / {title}"
        key = (forum.pk, title.casefold())
        first = seen.setdefault(key, row.number)
        if first != row.number:
            row.error(title_key, DUPLICATE_ROW % {"row": first})
        outcome = existing.get(key)
    if outcome is None and not row.failed and wanted.get("kind") is None:
        row.error("kind", REQUIRED)
    if row.failed:
        return result
    changes = []
    if outcome is not None:
        for key, new in wanted.items():
            if new is None:
                continue
            old = _outcome_current(outcome, key)
            if key == "parties":
                if {o.pk for o in old} == {o.pk for o in new}:
                    continue
            elif old == new:
                continue
            changes.append(_change(key, row.table.header(key), old, new))
        if not changes:
            result.action = UNCHANGED
            return result
    if not may_write:
        row.error("", OUTCOMES_NOT_ALLOWED)
        return result
    if outcome is None:
        fields = {k: v for k, v in wanted.items() if k in OUTCOME_SCALARS and v is not None}
        fields.pop("kind", None)
        done = _savepoint(
            row,
            lambda: services.outcome_create(
                actor=actor,
                forum=forum,
                kind=wanted["kind"],
                parties=wanted.get("parties") or (),
                **fields,
            ),  # fmt: skip
            OUTCOME_FIELD_COLUMNS,
            "",
        )
        if done is not None:
            result.action = CREATE
        return result
    changed = {change["column"] for change in changes}
    fields = {k: wanted[k] for k in changed if k != "parties"}
    done = _savepoint(
        row,
        lambda: services.outcome_update(
            actor=actor,
            outcome=outcome,
            parties=wanted["parties"] if "parties" in changed else None,
            **fields,
        ),  # fmt: skip
        OUTCOME_FIELD_COLUMNS,
        "",
    )
    if done is not None:
        result.action = CHANGE
        result.changes = changes
    return result


def _outcome_current(outcome: Outcome, key: str):
    if key == "title":
        return content_language.shown(outcome, "title")[0]
    if key in ("title_en", "title_ko"):
        return getattr(outcome, key) or ""
    if key == "parties":
        return list(outcome.parties.all())
    return getattr(outcome, key)


# --- A template to fill in -------------------------------------------------------------------


def template_csv(columns) -> bytes:
    """A header row in the viewer's language, for people starting from nothing."""
    out = io.StringIO()
    csv.writer(out).writerow(column_headers(columns))
    return (exports.BOM + out.getvalue()).encode()
