"""The plan API. Every queryset is scoped by plans.permissions (out of sight -> 404); every
write goes through plans.services, which check the action (not allowed -> 403)."""

import re

from django.db import connections
from django.db.models import Prefetch
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.response import Response

from plans import etags, selectors, services
from plans import permissions as policy
from plans.exceptions import VersionConflict
from plans.filtersets import (
    ForumFilterSet,
    OutcomeFilterSet,
    PlanFilterSet,
    PlanParticipantFilterSet,
    StatusUpdateFilterSet,
    TaskFilterSet,
    WorkstreamFilterSet,
)
from plans.models import Forum, Outcome, Plan, PlanParticipant, StatusUpdate, Task, Workstream
from tracker.api.filtering import NamedFiltersBackend
from tracker.api.serializers import OrganizationSerializer
from tracker.api.views import OrganizationViewSet
from tracker.models import Organization

from . import page_statements
from . import serializers as s


class PolicyViewSetMixin:
    """Scopes the queryset to what the user may see; the services check everything else."""

    model = None
    lookup_value_regex = r"[0-9]{1,18}"  # ids only; anything else is a 404 from the router

    def base_queryset(self):
        return self.model.objects.all()

    def get_queryset(self):
        return policy.for_user(self.request.user, policy.VIEW, self.base_queryset())

    def visible_tasks(self):
        return policy.for_user(self.request.user, policy.VIEW, Task)


@extend_schema_view(
    list=extend_schema(summary="List plans you can see", description="With participants and "
                       "rolled-up progress of the tasks you can see."),
    retrieve=extend_schema(summary="A plan"),
)  # fmt: skip
class PlanViewSet(PolicyViewSetMixin, viewsets.ReadOnlyModelViewSet):
    model = Plan
    serializer_class = s.PlanSerializer
    filterset_class = PlanFilterSet

    def base_queryset(self):
        return Plan.objects.with_progress(tasks=self.visible_tasks()).prefetch_related(
            Prefetch("participations", queryset=PlanParticipant.objects.order_by("pk"))
        )


@extend_schema_view(
    list=extend_schema(summary="List workstreams of the plans you can see"),
    retrieve=extend_schema(summary="A workstream"),
)
class WorkstreamViewSet(PolicyViewSetMixin, viewsets.ReadOnlyModelViewSet):
    model = Workstream
    serializer_class = s.WorkstreamSerializer
    filterset_class = WorkstreamFilterSet

    def base_queryset(self):
        return Workstream.objects.with_progress(tasks=self.visible_tasks()).prefetch_related(
            "lead_organizations"
        )


@extend_schema_view(
    list=extend_schema(summary="List forums", description="Forums are public records."),
    retrieve=extend_schema(summary="A forum"),
)
class ForumViewSet(PolicyViewSetMixin, viewsets.ReadOnlyModelViewSet):
    model = Forum
    serializer_class = s.ForumSerializer
    filterset_class = ForumFilterSet

    def base_queryset(self):
        return Forum.objects.prefetch_related("hosts", "participants")


@extend_schema_view(
    list=extend_schema(summary="List forum outcomes", description="MOUs, pledges, "
                       "commitments; with progress of the tasks you can see that implement "
                       "them."),
    retrieve=extend_schema(summary="An outcome"),
)  # fmt: skip
class OutcomeViewSet(PolicyViewSetMixin, viewsets.ReadOnlyModelViewSet):
    model = Outcome
    serializer_class = s.OutcomeSerializer
    filterset_class = OutcomeFilterSet

    def base_queryset(self):
        return Outcome.objects.with_progress(tasks=self.visible_tasks()).prefetch_related("parties")


@extend_schema_view(
    list=extend_schema(summary="List the status history you can see (newest first)"),
    retrieve=extend_schema(summary="A status update"),
)
class StatusUpdateViewSet(PolicyViewSetMixin, viewsets.ReadOnlyModelViewSet):
    model = StatusUpdate
    serializer_class = s.StatusUpdateSerializer
    filterset_class = StatusUpdateFilterSet
    ordering = ("-created_at", "-id")

    def get_queryset(self):
        return super().get_queryset().order_by(*self.ordering)

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        rows = selectors.status_updates_attach_people(
            queryset if page is None else page, reader=request.user
        )
        data = s.StatusUpdateSerializer(rows, many=True).data
        return Response(data) if page is None else self.get_paginated_response(data)

    def retrieve(self, request, *args, **kwargs):
        update = self.get_object()
        selectors.status_updates_attach_people([update], reader=request.user)
        return Response(s.StatusUpdateSerializer(update).data)

    @property
    def paginator(self):
        paginator = super().paginator
        if paginator is not None:
            paginator.ordering = self.ordering
        return paginator


class TaskOrdering(OrderingFilter):
    """`?ordering=due_date|updated_at|priority|ref` (minus for descending). Priority sorts by
    rank (critical first when descending), not alphabetically."""

    ordering_fields = ["due_date", "updated_at", "priority", "ref", "id"]
    ordering_description = "One of due_date, updated_at, priority, ref (prefix - to reverse)."

    def get_ordering(self, request, queryset, view):
        ordering = [
            re.sub(r"^(-?)priority$", r"\1priority_rank", term)
            for term in super().get_ordering(request, queryset, view) or []
        ]
        # A unique last key keeps cursors stable and lets (status, due_date, id) serve the page.
        if ordering and ordering[-1].lstrip("-") != "id":
            ordering.append("-id" if ordering[-1].startswith("-") else "id")
        return ordering or None

    def get_default_ordering(self, view):
        return ["due_date", "id"]

    def filter_queryset(self, request, queryset, view):
        ordering = self.get_ordering(request, queryset, view)
        if not ordering:
            return queryset
        # priority_rank is a stored column (Task.priority_rank) with its own indexes.
        return queryset.order_by(*ordering)


ETAG_RE = re.compile(r'^(?:W/)?"v(\d+)"$')
IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description='The ETag you read (e.g. "v6"). If the task has changed since, or the header '
    "is not one ETag of this API: 412 and nothing is written. Without the header (or with `*`) "
    "the write is not checked.",
)
NEW_ETAG = OpenApiParameter(
    "ETag",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The task's version after this write: send it as If-Match on your next write.",
    response=[201],
)


def etag(task: Task) -> str:
    return f'"v{task.version}"'


@extend_schema_view(
    list=extend_schema(
        summary="List tasks you can see",
        description="Filters combine; cursor-paginated (page_size up to 200). For incremental "
        "sync, pass `updated_after` (the list is then ordered by updated_at, id) and read "
        "deletions from /api/v1/changes/ (docs/integration/sync.md).",
    ),
    retrieve=extend_schema(summary="A task", description="The ETag header carries its version."),
    create=extend_schema(summary="Create a task (plan coordinators)"),
    partial_update=extend_schema(
        summary="Change a task's descriptive fields (plan coordinators)",
        parameters=[IF_MATCH],
    ),
    update=extend_schema(
        summary="Replace a task's descriptive fields (plan coordinators)",
        parameters=[IF_MATCH],
    ),
)
class TaskViewSet(
    PolicyViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    model = Task
    serializer_class = s.TaskSerializer
    filterset_class = TaskFilterSet
    # Only the filters a request names run (the same rows and errors, less work per request).
    filter_backends = [NamedFiltersBackend, TaskOrdering]
    ordering = ("due_date", "id")

    def base_queryset(self):
        return Task.objects.with_overdue().select_related("plan")

    def get_serializer_class(self):
        return {
            "create": s.TaskCreateSerializer,
            "update": s.TaskUpdateSerializer,
            "partial_update": s.TaskUpdateSerializer,
            "transition": s.TransitionSerializer,
            "assign": s.AssignSerializer,
            "deadline": s.DeadlineSerializer,
        }.get(self.action, s.TaskSerializer)

    def _show(self, task: Task, status_code=status.HTTP_200_OK) -> Response:
        task = self.base_queryset().get(pk=task.pk)
        selectors.task_attach_relations([task], reader=self.request.user)
        return Response(
            s.TaskSerializer(task, context=self.get_serializer_context()).data,
            status=status_code,
            headers={"ETag": etag(task)},
        )

    def get_queryset(self):
        if self.action != "list":
            return super().get_queryset()
        # The list: the viewer's ids resolved once (one query) and applied as literal lists,
        # reused for the dependencies and parents the page names (selectors.task_rows).
        if getattr(self, "task_scope", None) is None:
            self.task_scope = policy.task_view_scope(self.request.user)
        now = getattr(self, "list_now", None)
        return Task.objects.with_overdue(now).filter(self.task_scope.q)

    def list(self, request, *args, **kwargs):
        # The instant "overdue" is computed against: one object, found by identity among the
        # parameters of a page statement kept for the next request (page_statements).
        self.list_now = now = timezone.now()
        alias = Task.objects.db
        if not page_statements.enabled(request, alias):
            return self.get_paginated_response(s.task_row_data(self._list_page()))
        self.task_scope = policy.task_view_scope(request.user)
        key = page_statements.key(request, self.task_scope, alias)
        connection = connections[alias]
        entry = page_statements.get(connection, key)
        if entry is not None:
            page = self.paginate_queryset(page_statements.CachedPage(entry, connection, now))
            return self.get_paginated_response(s.task_row_data(page))
        recorder = page_statements.Recorder()
        with connection.execute_wrapper(recorder):
            page = self._list_page()
        page_statements.keep(connection, key, self._rows, self.paginator, recorder, now)
        return self.get_paginated_response(s.task_row_data(page))

    def _list_page(self):
        queryset = self.filter_queryset(self.get_queryset())
        self._rows = selectors.task_rows(queryset, scope=self.task_scope)
        return self.paginate_queryset(self._rows)  # ONE query: the rows and their related ids

    def retrieve(self, request, *args, **kwargs):
        task = self.get_object()
        selectors.task_attach_relations([task], reader=request.user)
        return Response(s.TaskSerializer(task).data, headers={"ETag": etag(task)})

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task = services.task_create(actor=request.user, **serializer.validated_data)
        return self._show(task, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        task = self.get_object()
        # Permission before input: a caller who may not change the task hears 403, not a 400
        # about choices it could not have seen.
        policy.ensure(request.user, policy.CHANGE, task)
        partial = kwargs.pop("partial", False)
        serializer = self.get_serializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        task = services.task_update(
            actor=request.user,
            task=task,
            expected_version=self.if_match_version(task),
            **serializer.validated_data,
        )
        return self._show(task)

    def if_match_version(self, task: Task) -> int | None:
        """The version If-Match names; None without the header. A malformed one is stale."""
        header = self.request.headers.get("If-Match")
        if header is None or header.strip() == "*":
            return None
        match = ETAG_RE.match(header.strip())
        if match is None:
            raise VersionConflict(expected=header.strip(), actual=task.version)
        return int(match[1])

    @extend_schema(
        summary="Move a task along the workflow",
        description="Names the status it expects to leave: if the task has moved meanwhile, "
        "409 and nothing is written. Forbidden moves are 409 too; moves your role may not "
        "make are 403.",
        request=s.TransitionSerializer,
        responses={200: s.TaskSerializer},
        parameters=[IF_MATCH],
    )
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        task = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        task = services.task_transition(
            actor=request.user,
            task=task,
            to_status=data["to"],
            expected_from=data["expected_from"],
            note=data["note"],
            evidence_url=data["evidence_url"],
            expected_version=self.if_match_version(task),
        )
        return self._show(task)

    @extend_schema(
        summary="Assign a task",
        description="Coordinators assign anyone; managers of the lead organization assign "
        "members of it.",
        request=s.AssignSerializer,
        responses={200: s.TaskSerializer},
        parameters=[IF_MATCH],
    )
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        return self._write(request, policy.ASSIGN, services.task_assign)

    @extend_schema(
        summary="Move a task's deadline, with a reason (plan coordinators)",
        request=s.DeadlineSerializer,
        responses={200: s.TaskSerializer},
        parameters=[IF_MATCH],
    )
    @action(detail=True, methods=["post"])
    def deadline(self, request, pk=None):
        return self._write(request, policy.CHANGE_DEADLINE, services.task_change_deadline)

    def _write(self, request, action, service):
        """Permission before input (a caller who may not act hears 403, not a 400 about
        choices it could not see), then the service with the body and If-Match."""
        task = self.get_object()
        policy.ensure(request.user, action, task)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task = service(
            actor=request.user, task=task, expected_version=self.if_match_version(task),
            **serializer.validated_data,
        )  # fmt: skip
        return self._show(task)

    @extend_schema(
        methods=["get"],
        summary="A task's status history (oldest first)",
        responses={200: s.StatusUpdateSerializer(many=True)},
    )
    @extend_schema(
        methods=["post"],
        summary="Report progress on a task",
        description="A note, a progress percentage and/or an evidence link. Supporting "
        "organizations may add notes and evidence; a percentage needs the lead organization "
        "or a coordinator. Send If-Match with the task's ETag to refuse the update (412) if "
        "the task has changed since you read it; the answer's ETag is the task's version after "
        "it (a note alone leaves it unchanged).",
        request=s.StatusUpdateCreateSerializer,
        responses={201: s.StatusUpdateSerializer},
        parameters=[IF_MATCH, NEW_ETAG],
    )
    @action(detail=True, methods=["get", "post"], filterset_class=None, pagination_class=None)
    def updates(self, request, pk=None):
        task = self.get_object()
        if request.method == "GET":
            updates = task.updates.order_by("created_at", "id")
            updates = selectors.status_updates_attach_people(updates, reader=request.user)
            return Response(s.StatusUpdateSerializer(updates, many=True).data)
        serializer = s.StatusUpdateCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        update = services.status_update_add(
            actor=request.user, task=task, expected_version=self.if_match_version(task),
            **serializer.validated_data,
        )  # fmt: skip
        selectors.status_updates_attach_people([update], reader=request.user)
        # update.task is the row the service locked and wrote: its version is the new ETag.
        return Response(
            s.StatusUpdateSerializer(update).data,
            status=status.HTTP_201_CREATED,
            headers={"ETag": etag(update.task)},
        )


# --- Write API for the records around tasks (issue 12) -----------------------------------------

RECORD_ETAG_RE = re.compile(r'^(?:W/)?"([0-9a-f]{16})"$')
RECORD_IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The ETag you read (GET answers it in the ETag header). If the record has "
    "changed since, or the header is not one ETag of this API: 412 and nothing is written. "
    "Without the header (or with `*`) the write is not checked.",
)
WRITE_METHODS = ["get", "post", "patch", "delete", "head", "options"]


def record_if_match(request) -> str | None:
    """The ETag value If-Match names (quotes and W/ removed); None without the header. A
    malformed header is kept as it is: it matches no record, so the write is refused (412)."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    match = RECORD_ETAG_RE.match(header.strip())
    return match[1] if match else header.strip()


class RecordWriteMixin:
    """Create (POST), change (PATCH, If-Match) and delete (DELETE) for coordinators, each
    through a service; the answer is the record as GET shows it, with its ETag. Permission
    before input: a caller who may not write hears 403 (or 404), not a 400 about the body."""

    http_method_names = WRITE_METHODS
    create_serializer = None
    update_serializer = None

    def get_serializer_class(self):
        if self.action == "create" and self.create_serializer is not None:
            return self.create_serializer
        if self.action == "partial_update" and self.update_serializer is not None:
            return self.update_serializer
        return super().get_serializer_class()

    def show(self, obj, status_code=status.HTTP_200_OK) -> Response:
        obj = self.base_queryset().get(pk=obj.pk)
        data = self.serializer_class(obj, context=self.get_serializer_context()).data
        return Response(data, status=status_code, headers={"ETag": etags.quoted(obj)})

    def retrieve(self, request, *args, **kwargs):
        obj = self.get_object()
        data = self.get_serializer(obj).data
        return Response(data, headers={"ETag": etags.quoted(obj)})

    def create(self, request, *args, **kwargs):
        policy.ensure(request.user, policy.ADD, self.model)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        obj = self.perform_write(None, dict(serializer.validated_data))
        return self.show(obj, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        obj = self.get_object()
        policy.ensure(request.user, policy.CHANGE, obj)
        serializer = self.get_serializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        obj = self.perform_write(obj, dict(serializer.validated_data), record_if_match(request))
        return self.show(obj)

    def destroy(self, request, *args, **kwargs):
        obj = self.get_object()
        policy.ensure(request.user, policy.DELETE, obj)
        self.perform_delete(obj)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def perform_write(self, obj, data: dict, expected_etag: str | None = None):
        raise NotImplementedError

    def perform_delete(self, obj) -> None:
        raise NotImplementedError


def _write_schema(kind: str, read, create, update, deletable=True, delete_note=""):
    """The OpenAPI words for a record's writes: the body is `create` / `update`, the answer
    the record as GET shows it (`read`)."""
    views = {
        "retrieve": extend_schema(
            summary=f"A {kind}", description="The ETag header is what If-Match takes.",
            responses={200: read},
        ),
        "create": extend_schema(
            summary=f"Create a {kind} (coordinators)", request=create,
            responses={201: read},
        ),
        "partial_update": extend_schema(
            summary=f"Change a {kind} (coordinators)", request=update,
            responses={200: read}, parameters=[RECORD_IF_MATCH],
        ),
    }  # fmt: skip
    if deletable:
        views["destroy"] = extend_schema(
            summary=f"Delete a {kind} (coordinators)",
            description=f"409 while {delete_note}; nothing is deleted then.",
        )
    return views


@extend_schema_view(
    **_write_schema(
        "forum",
        s.ForumSerializer,
        s.ForumWriteSerializer,
        s.ForumWriteSerializer,
        delete_note="it has outcomes",
    )
)
class ForumWriteViewSet(RecordWriteMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
                        mixins.DestroyModelMixin, ForumViewSet):  # fmt: skip
    create_serializer = update_serializer = s.ForumWriteSerializer

    def base_queryset(self):
        if self.action == "scorecard":
            return Forum.objects.all()
        return super().base_queryset()

    def perform_write(self, obj, data, expected_etag=None):
        if obj is None:
            return services.forum_create(actor=self.request.user, **data)
        return services.forum_update(
            actor=self.request.user, forum=obj, expected_etag=expected_etag, **data
        )

    def perform_delete(self, obj):
        services.forum_delete(actor=self.request.user, forum=obj)

    @extend_schema(
        summary="How the forum's outcomes stand",
        description="Fulfilled, in implementation, not started, or with no task yet, counting "
        "the implementing tasks you can see (cancelled ones never count).",
        responses={200: s.ScorecardSerializer},
    )
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None)
    def scorecard(self, request, pk=None):
        forum = self.get_object()
        rows = selectors.outcome_scorecard(user=request.user, forum=forum)
        counts = {key: 0 for key in selectors.SCORECARD_CATEGORIES}
        if rows:
            counts = {key: rows[0][key] for key in selectors.SCORECARD_CATEGORIES}
        return Response({"forum": forum.pk, **counts, "total": sum(counts.values())})


@extend_schema_view(
    **_write_schema(
        "outcome",
        s.OutcomeSerializer,
        s.OutcomeWriteSerializer,
        s.OutcomeWriteSerializer,
        delete_note="a task implements it",
    )
)
class OutcomeWriteViewSet(RecordWriteMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
                          mixins.DestroyModelMixin, OutcomeViewSet):  # fmt: skip
    create_serializer = s.OutcomeWriteSerializer

    def get_serializer_class(self):
        if self.action == "partial_update":
            return s.OutcomeWriteSerializer
        return super().get_serializer_class()

    def base_queryset(self):
        if self.action == "tasks":
            return Outcome.objects.all()
        return super().base_queryset()

    def perform_write(self, obj, data, expected_etag=None):
        if obj is None:
            return services.outcome_create(actor=self.request.user, **data)
        return services.outcome_update(
            actor=self.request.user, outcome=obj, expected_etag=expected_etag, **data
        )

    def perform_delete(self, obj):
        services.outcome_delete(actor=self.request.user, outcome=obj)

    @extend_schema(
        summary="The tasks implementing an outcome",
        description="The ones you can see: open and done by deadline, cancelled ones last.",
        responses={200: s.TaskSerializer(many=True)},
    )
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None)
    def tasks(self, request, pk=None):
        outcome = self.get_object()
        tasks = list(selectors.outcome_task_list(user=request.user, outcome=outcome))
        selectors.task_attach_relations(tasks, reader=request.user)
        return Response(s.TaskSerializer(tasks, many=True).data)


@extend_schema_view(
    **_write_schema(
        "plan", s.PlanSerializer, s.PlanCreateSerializer, s.PlanWriteSerializer, deletable=False
    )
)
class PlanWriteViewSet(RecordWriteMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
                       PlanViewSet):  # fmt: skip
    """Plans are not deleted (their tasks keep their history): close or archive them."""

    http_method_names = ["get", "post", "patch", "head", "options"]
    create_serializer = s.PlanCreateSerializer
    update_serializer = s.PlanWriteSerializer

    def perform_write(self, obj, data, expected_etag=None):
        if obj is None:
            return services.plan_create(actor=self.request.user, **data)
        return services.plan_update(
            actor=self.request.user, plan=obj, expected_etag=expected_etag, **data
        )

    @extend_schema(
        summary="Start the next version of a plan (Joint Plan 1.0 -> 2.0)",
        description="A new plan with this one as predecessor, its participants and "
        "workstreams, and copies of the open tasks you pick, each linked to its predecessor; "
        "the originals are closed as cancelled, carried over (docs/decisions/0012). One "
        "transaction. Coordinators of the plan.",
        request=s.PlanNewVersionSerializer,
        responses={201: s.PlanSerializer},
    )
    @action(detail=True, methods=["post"], url_path="new-version", filterset_class=None)
    def new_version(self, request, pk=None):
        plan = self.get_object()
        policy.ensure(request.user, policy.CHANGE, plan)
        serializer = s.PlanNewVersionSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        new = services.plan_new_version(
            actor=request.user, plan=plan, carry_over=data.pop("tasks", []), **data
        )
        return self.show(new, status.HTTP_201_CREATED)


@extend_schema_view(
    **_write_schema(
        "workstream",
        s.WorkstreamSerializer,
        s.WorkstreamWriteSerializer,
        s.WorkstreamUpdateSerializer,
        delete_note="it holds tasks or sub-workstreams",
    )
)
class WorkstreamWriteViewSet(RecordWriteMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
                             mixins.DestroyModelMixin, WorkstreamViewSet):  # fmt: skip
    create_serializer = s.WorkstreamWriteSerializer
    update_serializer = s.WorkstreamUpdateSerializer

    def perform_write(self, obj, data, expected_etag=None):
        if obj is None:
            return services.workstream_create(actor=self.request.user, **data)
        return services.workstream_update(
            actor=self.request.user, workstream=obj, expected_etag=expected_etag, **data
        )

    def perform_delete(self, obj):
        services.workstream_delete(actor=self.request.user, workstream=obj)


@extend_schema_view(
    list=extend_schema(summary="List the participants of the plans you can see"),
    **_write_schema(
        "plan participant", s.PlanParticipantSerializer, s.ParticipantCreateSerializer,
        s.ParticipantUpdateSerializer,
        delete_note="the organization leads or supports a task of the plan",
    ),
)  # fmt: skip
class PlanParticipantViewSet(RecordWriteMixin, PolicyViewSetMixin, mixins.ListModelMixin,
                             mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                             mixins.UpdateModelMixin, mixins.DestroyModelMixin,
                             viewsets.GenericViewSet):  # fmt: skip
    model = PlanParticipant
    serializer_class = s.PlanParticipantSerializer
    filterset_class = PlanParticipantFilterSet
    create_serializer = s.ParticipantCreateSerializer
    update_serializer = s.ParticipantUpdateSerializer

    def base_queryset(self):
        return PlanParticipant.objects.order_by("plan_id", "pk")

    def perform_write(self, obj, data, expected_etag=None):
        if obj is None:
            return services.participant_add(actor=self.request.user, **data)
        return services.participant_update(
            actor=self.request.user, participant=obj, expected_etag=expected_etag, **data
        )

    def perform_delete(self, obj):
        services.participant_remove(actor=self.request.user, participant=obj)


@extend_schema_view(
    list=extend_schema(summary="List organizations", description="Public records."),
    **_write_schema(
        "organization", OrganizationSerializer, s.OrganizationWriteSerializer,
        s.OrganizationWriteSerializer, deletable=False,
    ),
)  # fmt: skip
class OrganizationWriteViewSet(RecordWriteMixin, mixins.CreateModelMixin,
                               mixins.UpdateModelMixin, OrganizationViewSet):  # fmt: skip
    """Organizations: coordinators record and change them; only superusers delete one, in
    the admin (the API has no DELETE)."""

    model = Organization
    http_method_names = ["get", "post", "patch", "head", "options"]
    create_serializer = update_serializer = s.OrganizationWriteSerializer

    def base_queryset(self):
        return Organization.objects.order_by("name", "id")

    def perform_write(self, obj, data, expected_etag=None):
        if obj is None:
            return services.organization_create(actor=self.request.user, **data)
        return services.organization_update(
            actor=self.request.user, organization=obj, expected_etag=expected_etag, **data
        )
