"""Readout intake in the API: paste a forum's readout, review the drafts, confirm them into
outcomes and turn confirmed ones into a plan's tasks.

    POST  /api/v1/forums/{id}/intake/          {"text", "published_on"} -> the drafts found
    GET   /api/v1/forums/{id}/intake/          the forum's drafts (?status=draft|confirmed|dropped)
    POST  /api/v1/forums/{id}/intake/tasks/    {"plan", "drafts", "ref_prefix", ...} -> tasks
    GET   /api/v1/outcome-drafts/{id}/         one draft
    PATCH /api/v1/outcome-drafts/{id}/         edit kind, title, parties, amount, deadline
    POST  /api/v1/outcome-drafts/{id}/confirm/ -> the outcome it became
    POST  /api/v1/outcome-drafts/{id}/drop/
    POST  /api/v1/outcome-drafts/{id}/organizations/  register an unknown party

The one policy decides (plans/intake/policy.py): a forum out of sight is 404; who may not add
outcomes hears 403 on a forum they see; drafts are seen by those who may add outcomes only.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from plans import permissions as policy
from plans.intake import services as intake
from plans.intake.models import OutcomeDraft, Readout
from plans.models import Outcome, OutcomeKind, Plan, Task, Workstream
from tracker.api.fields import IdRelatedField
from tracker.filtersets import MAX_ID
from tracker.models import Organization


class OutcomeDraftSerializer(serializers.ModelSerializer):
    parties = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    published_on = serializers.DateField(source="readout.published_on", read_only=True)

    class Meta:
        model = OutcomeDraft
        fields = [
            "id", "forum", "readout", "published_on", "position", "sentence", "start", "end",
            "trigger", "kind", "title", "parties", "new_party_names", "amount", "currency",
            "deadline", "deadline_phrase", "status", "outcome", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class ReadoutSerializer(serializers.ModelSerializer):
    drafts = OutcomeDraftSerializer(many=True, read_only=True)

    class Meta:
        model = Readout
        fields = ["id", "forum", "published_on", "created_at", "drafts"]
        read_only_fields = fields


class IntakeSerializer(serializers.Serializer):
    text = serializers.CharField(
        max_length=intake.MAX_TEXT, trim_whitespace=False,
        help_text="The joint statement, readout or press release, as plain text.",
    )  # fmt: skip
    published_on = serializers.DateField(
        help_text="When it was published: relative deadlines ('next year') count from it."
    )


class DraftUpdateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=OutcomeKind.choices, required=False)
    title = serializers.CharField(max_length=300, required=False)
    parties = IdRelatedField(many=True, queryset=Organization.objects.all(), required=False)
    new_party_names = serializers.ListField(
        child=serializers.CharField(max_length=200), max_length=50, required=False
    )
    amount = serializers.DecimalField(
        max_digits=20, decimal_places=2, min_value=0, allow_null=True, required=False
    )
    currency = serializers.RegexField(r"^(?:[A-Z]{3})?$", allow_blank=True, required=False)
    deadline = serializers.DateField(allow_null=True, required=False)
    deadline_phrase = serializers.CharField(max_length=200, allow_blank=True, required=False)


class NewOrganizationSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=Organization.Kind.choices)
    country = serializers.RegexField(r"^[A-Z]{2}$", help_text="ISO 3166-1 alpha-2, e.g. KR.")


class CreateTasksSerializer(serializers.Serializer):
    plan = IdRelatedField(queryset=Plan.objects.all())
    drafts = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), min_length=1,
        max_length=200,
    )  # fmt: skip
    ref_prefix = serializers.CharField(max_length=20, help_text="Refs become PREFIX-01, -02 …")
    lead_organization = IdRelatedField(
        queryset=Organization.objects.all(), required=False, allow_null=True
    )
    workstream = IdRelatedField(queryset=Workstream.objects.all(), required=False, allow_null=True)


class CreatedTaskSerializer(serializers.ModelSerializer):
    source_outcomes = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = ["id", "ref", "title", "due_date", "lead_organization", "source_outcomes"]

    def get_source_outcomes(self, task) -> list[int]:
        return [outcome.pk for outcome in task.source_outcomes.all()]


class ConfirmedSerializer(serializers.Serializer):
    draft = OutcomeDraftSerializer()
    outcome = serializers.IntegerField()


class OrganizationCreatedSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name", "kind", "country"]


STATUS = OpenApiParameter(
    "status", str, enum=list(OutcomeDraft.Status.values), description="Only drafts in this state."
)


class ForumIntakeView(APIView):
    def _forum(self, request, pk):
        forum = intake.forum_for_intake(user=request.user, pk=pk)
        policy.ensure(request.user, policy.ADD, OutcomeDraft)
        return forum

    @extend_schema(
        summary="The drafts of a forum's readouts (coordinators)",
        parameters=[STATUS],
        responses={200: OutcomeDraftSerializer(many=True)},
    )
    def get(self, request, pk):
        forum = self._forum(request, pk)
        wanted = request.query_params.getlist("status")
        unknown = [value for value in wanted if value not in OutcomeDraft.Status.values]
        if unknown:
            raise serializers.ValidationError({"status": [f"Not a draft status: {unknown[0]}."]})
        drafts = intake.draft_list(user=request.user, forum=forum, statuses=wanted)
        return Response(OutcomeDraftSerializer(drafts, many=True).data)

    @extend_schema(
        summary="Paste a readout: find its commitments as draft outcomes (coordinators)",
        description="Each commitment sentence becomes a draft with its kind, parties (resolved "
        "against the organization registry; unknown names offered as new organizations), "
        "amount and suggested deadline. Descriptive sentences are left out. Nothing found: "
        "400 on `text`.",
        request=IntakeSerializer,
        responses={201: ReadoutSerializer},
    )
    def post(self, request, pk):
        forum = self._forum(request, pk)
        serializer = IntakeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        readout = intake.readout_intake(
            actor=request.user, forum=forum, **serializer.validated_data
        )
        readout = Readout.objects.prefetch_related("drafts__parties").get(pk=readout.pk)
        return Response(ReadoutSerializer(readout).data, status=status.HTTP_201_CREATED)


class ForumIntakeTasksView(APIView):
    @extend_schema(
        summary="Create a plan's tasks from confirmed drafts, one per draft (coordinators)",
        description="Each task keeps its source outcome, takes the draft's title and suggested "
        "deadline (else the plan's end) and is led by `lead_organization` or the first of the "
        "draft's parties in the plan. All or nothing.",
        request=CreateTasksSerializer,
        responses={201: CreatedTaskSerializer(many=True)},
    )
    def post(self, request, pk):
        forum = intake.forum_for_intake(user=request.user, pk=pk)
        policy.ensure(request.user, policy.ADD, OutcomeDraft)
        serializer = CreateTasksSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        plan = data["plan"]
        if not policy.can(request.user, policy.VIEW, plan):
            raise serializers.ValidationError({"plan": ["No such plan."]})
        tasks = intake.drafts_create_tasks(
            actor=request.user,
            forum=forum,
            plan=plan,
            drafts=data["drafts"],
            ref_prefix=data["ref_prefix"],
            lead_organization=data.get("lead_organization"),
            workstream=data.get("workstream"),
        )
        tasks = (
            Task.objects.filter(pk__in=[t.pk for t in tasks])
            .prefetch_related("source_outcomes")
            .order_by("ref")
        )
        return Response(CreatedTaskSerializer(tasks, many=True).data, status=201)


class OutcomeDraftViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = OutcomeDraftSerializer
    lookup_value_regex = r"[0-9]{1,18}"

    def get_queryset(self):
        return (
            policy.for_user(self.request.user, policy.VIEW, OutcomeDraft)
            .select_related("readout")
            .prefetch_related("parties")
        )

    def _show(self, draft, code=status.HTTP_200_OK):
        draft = self.get_queryset().get(pk=draft.pk)
        return Response(OutcomeDraftSerializer(draft).data, status=code)

    @extend_schema(summary="A draft outcome (coordinators)")
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary="Edit a draft under review",
        request=DraftUpdateSerializer,
        responses={200: OutcomeDraftSerializer},
    )
    def partial_update(self, request, pk=None):
        draft = self.get_object()
        policy.ensure(request.user, policy.CHANGE, draft)
        serializer = DraftUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        draft = intake.draft_update(actor=request.user, draft=draft, **serializer.validated_data)
        return self._show(draft)

    @extend_schema(
        summary="Confirm a draft: it becomes an outcome of its forum",
        request=None,
        responses={200: ConfirmedSerializer},
    )
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        outcome: Outcome = intake.draft_confirm(actor=request.user, draft=self.get_object())
        draft = self.get_queryset().get(pk=pk)
        return Response({"draft": OutcomeDraftSerializer(draft).data, "outcome": outcome.pk})

    @extend_schema(summary="Drop a draft: not an outcome", request=None,
                   responses={200: OutcomeDraftSerializer})  # fmt: skip
    @action(detail=True, methods=["post"])
    def drop(self, request, pk=None):
        return self._show(intake.draft_drop(actor=request.user, draft=self.get_object()))

    @extend_schema(
        summary="Register one of the draft's unknown names as an organization and a party",
        request=NewOrganizationSerializer,
        responses={201: OrganizationCreatedSerializer},
    )
    @action(detail=True, methods=["post"])
    def organizations(self, request, pk=None):
        draft = self.get_object()
        policy.ensure(request.user, policy.CHANGE, draft)
        serializer = NewOrganizationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        organization = intake.draft_add_organization(
            actor=request.user, draft=draft, **serializer.validated_data
        )
        return Response(OrganizationCreatedSerializer(organization).data, status=201)
