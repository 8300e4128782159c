"""Spreadsheet import over the API: `POST /api/v1/tasks/import/` and `/api/v1/outcomes/import/`.

JSON only, like the rest of the API (tracker/api/parsers.py): `{"filename", "content_base64"}`,
the file base64-encoded (one content type per request body, so generated clients get one
request model; the workspace pages keep their upload forms). `?dry_run=true`
reports what would happen and writes nothing. The work is `workspace.imports` (every write a
service call, all or nothing): a file with bad rows answers 400 with one problem entry per
bad cell (`rows.<row>.<column>`), and nothing is written.
"""

import base64
import binascii

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from plans.models import Forum
from tracker.api.errors import problem_response
from workspace import imports

BAD_BASE64 = _("content_base64 is not valid base64.")
BAD_ROWS = _("Some rows of the file are not right: nothing was written.")
BAD_DRY_RUN = _("dry_run is true or false.")
BAD_FORUM = _("No forum with this id.")


class ImportJSONSerializer(serializers.Serializer):
    filename = serializers.CharField(
        required=False, help_text="e.g. tasks.xlsx (the content decides the format)."
    )
    content_base64 = serializers.CharField(
        max_length=4 * -(-imports.MAX_BYTES // 3),  # the base64 of imports.MAX_BYTES
        help_text="The CSV (UTF-8 or CP949) or XLSX file, base64-encoded (standard alphabet, "
        "padded); at most 1.5 MB once decoded.",
    )


class ImportChangeSerializer(serializers.Serializer):
    column = serializers.CharField()
    header = serializers.CharField()
    old = serializers.CharField()
    new = serializers.CharField()


class ImportRowSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="As the spreadsheet numbers it: the header is row 1.")
    key = serializers.CharField(help_text="The row's natural key, e.g. `KUS-T / A-01`.")
    action = serializers.ChoiceField(choices=["create", "change", "unchanged", "error"])
    changes = ImportChangeSerializer(many=True)


class ImportErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField()
    column = serializers.CharField(help_text="The column key; empty for the row as a whole.")
    header = serializers.CharField()
    message = serializers.CharField()


class ImportCountsSerializer(serializers.Serializer):
    create = serializers.IntegerField()
    change = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    error = serializers.IntegerField()


class ImportReportSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["tasks", "outcomes"])
    dry_run = serializers.BooleanField()
    committed = serializers.BooleanField(help_text="Whether the rows were written.")
    counts = ImportCountsSerializer()
    rows = ImportRowSerializer(many=True)
    errors = ImportErrorSerializer(many=True)


def _file_error(message) -> Response:
    error = [{"field": "content_base64", "message": str(message)}]
    return problem_response(400, str(message), error)


class _ImportView(APIView):
    kind = ""

    def run(self, request, **kwargs):
        raise NotImplementedError

    def post(self, request):
        raw = request.query_params.get("dry_run", "false").lower()
        if raw not in ("true", "false", "1", "0"):
            return problem_response(
                400, str(BAD_DRY_RUN), [{"field": "dry_run", "message": str(BAD_DRY_RUN)}]
            )
        dry_run = raw in ("true", "1")
        payload = ImportJSONSerializer(data=request.data)
        payload.is_valid(raise_exception=True)  # 400 naming content_base64 / filename
        try:
            data = base64.b64decode(payload.validated_data["content_base64"], validate=True)
        except (binascii.Error, ValueError):
            return _file_error(BAD_BASE64)
        filename = payload.validated_data.get("filename", "")
        try:
            report = self.run(request, data=data, filename=filename, dry_run=dry_run)
        except imports.ImportFileError as exc:
            return _file_error(exc.message)
        if report is None:
            error = [{"field": "forum", "message": str(BAD_FORUM)}]
            return problem_response(400, str(BAD_FORUM), error)
        body = report.as_dict()
        if report.errors:
            errors = [
                {"field": f"rows.{e.row}.{e.column or 'row'}", "message": e.message,
                 "row": e.row, "column": e.column, "header": e.header}
                for e in report.errors
            ]  # fmt: skip
            response = problem_response(400, str(BAD_ROWS), errors)
            response.data["report"] = body
            return response
        return Response(body, status=200)


DRY_RUN = OpenApiParameter(
    "dry_run", OpenApiTypes.BOOL, description="Report what would happen; write nothing."
)
REQUEST = ImportJSONSerializer
RESPONSES = {
    200: ImportReportSerializer,
    400: OpenApiResponse(description="Bad rows (one entry per bad cell, `rows.<row>.<column>`) "
                         "or an unreadable file; nothing written."),
}  # fmt: skip


class TaskImportView(_ImportView):
    kind = "tasks"

    @extend_schema(
        operation_id="v1_tasks_import_create",
        summary="Import tasks from a CSV or XLSX file",
        description="Columns as the workspace export writes them (English or Korean headers), "
        "plus description, start date, manager, supporting organizations and source outcomes. "
        "A task is matched by plan code and ref; new refs are created. All or nothing.",
        parameters=[DRY_RUN],
        request=REQUEST,
        responses=RESPONSES,
        tags=["tasks"],
    )
    def post(self, request):
        return super().post(request)

    def run(self, request, **kwargs):
        return imports.task_import(actor=request.user, **kwargs)


class OutcomeImportView(_ImportView):
    kind = "outcomes"

    @extend_schema(
        operation_id="v1_outcomes_import_create",
        summary="Import outcomes of forums from a CSV or XLSX file",
        description="An outcome is matched by its forum ('name (YYYY-MM-DD)' or a unique name) "
        "and title; with `?forum=<id>` the file needs no forum column. All or nothing.",
        parameters=[DRY_RUN, OpenApiParameter("forum", OpenApiTypes.INT)],
        request=REQUEST,
        responses=RESPONSES,
        tags=["outcomes"],
    )
    def post(self, request):
        return super().post(request)

    def run(self, request, **kwargs):
        forum_id = request.query_params.get("forum")
        forum = None
        if forum_id:
            forum = Forum.objects.filter(pk=forum_id).first() if forum_id.isdigit() else None
            if forum is None:
                return None
        return imports.outcome_import(actor=request.user, forum=forum, **kwargs)
