"""Serializers of the plan API. They shape and validate data; the services decide and write."""

import datetime as dt

from django.utils.translation import get_language, gettext_noop
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from modeltranslation.fields import NONE
from modeltranslation.utils import build_localized_fieldname, resolution_order
from rest_framework import serializers

from plans import permissions as policy
from plans import services
from plans.models import Forum, Outcome, Plan, PlanParticipant, StatusUpdate, Task, Workstream
from tracker import content_language
from tracker.api.fields import IdRelatedField
from tracker.filtersets import MAX_ID
from tracker.i18n import message
from tracker.models import Organization, User
from tracker.validators import (
    validate_date_in_range,
    validate_single_line,
    validate_text,
    validate_time_zone,
)

# --- Reads -------------------------------------------------------------------------------------


class RoundedProgressField(serializers.FloatField):
    """An average progress (0-100) rounded to one decimal, halves up (42.25 -> 42.3): never the
    float noise of the database's average (33.333333333333336)."""

    def to_representation(self, value):
        return int(float(value) * 10 + 0.5) / 10  # progress is never negative


class RollupMixin(serializers.Serializer):
    task_count = serializers.IntegerField(read_only=True, help_text="Tasks you can see.")
    done_count = serializers.IntegerField(read_only=True)
    overdue_count = serializers.IntegerField(read_only=True)
    progress = RoundedProgressField(
        source="progress_rollup",
        read_only=True,
        help_text="Average progress (0-100) of the tasks counted, rounded to one decimal.",
    )


class ParticipantSerializer(serializers.Serializer):
    organization = serializers.IntegerField(source="organization_id", read_only=True)
    role = serializers.ChoiceField(choices=PlanParticipant.Role.choices, read_only=True)


class PlanSerializer(RollupMixin, serializers.ModelSerializer):
    participants = ParticipantSerializer(source="participations", many=True, read_only=True)

    class Meta:
        model = Plan
        fields = [
            "id", "code", "title", "title_en", "title_ko", "description", "description_en",
            "description_ko", "period_start", "period_end", "status",
            "time_zone", "requires_evidence", "predecessor", "participants", "task_count",
            "done_count", "overdue_count", "progress", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class WorkstreamSerializer(RollupMixin, serializers.ModelSerializer):
    class Meta:
        model = Workstream
        fields = [
            "id", "plan", "code", "title", "title_en", "title_ko", "description",
            "description_en", "description_ko", "lead_organizations", "parent",
            "order", "task_count", "done_count", "overdue_count", "progress",
        ]  # fmt: skip
        read_only_fields = fields


def _link(help_text=""):
    # Stored links may be empty: documented as plain strings, not as "uri".
    return serializers.CharField(read_only=True, help_text=help_text or "A URL, or empty.")


class ForumSerializer(serializers.ModelSerializer):
    source_url = _link()

    class Meta:
        model = Forum
        fields = [
            "id", "name", "name_en", "name_ko", "series", "kind", "held_on", "location", "hosts",
            "participants", "summary", "summary_en", "summary_ko", "source_title", "source_url",
        ]  # fmt: skip
        read_only_fields = fields


class OutcomeSerializer(RollupMixin, serializers.ModelSerializer):
    class Meta:
        model = Outcome
        fields = [
            "id", "forum", "kind", "title", "title_en", "title_ko", "text", "clause_ref",
            "parties", "signed_on",
            "amount", "currency", "binding", "status", "task_count", "done_count",
            "overdue_count", "progress",
        ]  # fmt: skip
        read_only_fields = fields


TASK_EXAMPLE = {
    "id": 12,
    "plan": 1,
    "plan_code": "KUS-JP2",
    "workstream": 2,
    "ref": "SC-03",
    "title": "Agree how Central Texas ecosystem milestones are reported to the SCCD",
    "title_en": "Agree how Central Texas ecosystem milestones are reported to the SCCD",
    "title_ko": "중부 텍사스 생태계 이정표의 SCCD 보고 방식 합의",
    "description": "",
    "description_en": None,
    "description_ko": None,
    "lead_organization": 11,
    "supporting_organizations": [3, 8],
    "source_outcomes": [7],
    "assignee": 5,
    "manager": 4,
    "parent": None,
    "depends_on": [],
    "start_date": "2025-09-01",
    "due_date": "2026-06-30",
    "time_zone": "Asia/Seoul",
    "deadline_at": "2026-06-30T15:00:00Z",
    "status": "in_progress",
    "priority": "high",
    "progress": 40,
    "visibility": "participants",
    "is_overdue": False,
    "completed_at": None,
    "verified_at": None,
    "version": 6,
    "created_at": "2025-07-01T00:40:00Z",
    "updated_at": "2026-03-31T04:00:00Z",
}


def _instant(value):
    """An aware datetime as DRF writes it, in UTC: 2026-06-30T15:00:00Z."""
    if value is None:
        return None
    text = value.astimezone(dt.UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _day(value):
    return value.isoformat() if value is not None else None


def _shown_version(field: str):
    """A function of a row giving `field` as `task.field` reads it: the request language's
    version, else the next fallback language's, else the field's default (modeltranslation's
    descriptor, its language order resolved once instead of per row)."""
    descriptor = getattr(Task, field)
    undefined = descriptor.fallback_undefined
    if undefined is NONE:
        undefined = descriptor.field.get_default()
    columns = [
        build_localized_fieldname(field, language)
        for language in resolution_order(get_language(), descriptor.fallback_languages)
    ]
    default = descriptor.field.get_default()

    def shown(row):
        for column in columns:
            value = row.get(column)
            if value is not None and value != undefined:
                return value
        return default

    return shown


def task_row_data(rows) -> list[dict]:
    """`TaskSerializer`'s JSON for rows of `selectors.task_rows` (dicts, no model instances):
    the same keys and values."""
    title, description = _shown_version("title"), _shown_version("description")
    return [
        {
            "id": row["id"],
            "plan": row["plan_id"],
            "plan_code": row["plan__code"],
            "workstream": row["workstream_id"],
            "ref": row["ref"],
            "title": title(row),
            "title_en": row["title_en"],
            "title_ko": row["title_ko"],
            "description": description(row),
            "description_en": row["description_en"],
            "description_ko": row["description_ko"],
            "lead_organization": row["lead_organization_id"],
            "supporting_organizations": row["support_ids"],
            "source_outcomes": row["outcome_ids"],
            "assignee": row["shown_assignee_id"],
            "manager": row["shown_manager_id"],
            "parent": row["shown_parent_id"],
            "depends_on": row["depends_on_ids"],
            "start_date": _day(row["start_date"]),
            "due_date": _day(row["due_date"]),
            "time_zone": row["plan__time_zone"],
            "deadline_at": _instant(row["deadline_at"]),
            "status": row["status"],
            "priority": row["priority"],
            "progress": row["progress"],
            "visibility": row["visibility"],
            "is_overdue": row["is_overdue"],
            "completed_at": _instant(row["completed_at"]),
            "verified_at": _instant(row["verified_at"]),
            "version": row["version"],
            "created_at": _instant(row["created_at"]),
            "updated_at": _instant(row["updated_at"]),
        }
        for row in rows
    ]


@extend_schema_serializer(examples=[OpenApiExample("A task", value=TASK_EXAMPLE)])
class TaskSerializer(serializers.Serializer):
    """A task as the API shows it. Many-to-many ids, and the parent and people the reader
    may see (others are null or left out), come from `task_attach_relations`.

    The fields below document the shape (OpenAPI); `to_representation` writes the same keys
    directly, because this is the hottest path of the API (lists of up to 200 tasks).
    """

    def to_representation(self, task):
        return {
            "id": task.pk,
            "plan": task.plan_id,
            "plan_code": task.plan.code,
            "workstream": task.workstream_id,
            "ref": task.ref,
            "title": task.title,
            "title_en": task.title_en,
            "title_ko": task.title_ko,
            "description": task.description,
            "description_en": task.description_en,
            "description_ko": task.description_ko,
            "lead_organization": task.lead_organization_id,
            "supporting_organizations": task.support_ids,
            "source_outcomes": task.outcome_ids,
            "assignee": task.shown_assignee_id,
            "manager": task.shown_manager_id,
            "parent": task.shown_parent_id,
            "depends_on": task.depends_on_ids,
            "start_date": _day(task.start_date),
            "due_date": _day(task.due_date),
            "time_zone": task.plan.time_zone,
            "deadline_at": _instant(task.deadline_at),
            "status": task.status,
            "priority": task.priority,
            "progress": task.progress,
            "visibility": task.visibility,
            "is_overdue": task.is_overdue,
            "completed_at": _instant(task.completed_at),
            "verified_at": _instant(task.verified_at),
            "version": task.version,
            "created_at": _instant(task.created_at),
            "updated_at": _instant(task.updated_at),
        }

    id = serializers.IntegerField(read_only=True)
    plan = serializers.IntegerField(source="plan_id", read_only=True)
    plan_code = serializers.CharField(source="plan.code", read_only=True)
    workstream = serializers.IntegerField(source="workstream_id", read_only=True, allow_null=True)
    ref = serializers.CharField(read_only=True)
    title = serializers.CharField(
        read_only=True,
        help_text="In the request's language (Accept-Language), or the other language's when "
        "it has none.",
    )
    title_en = serializers.CharField(read_only=True, allow_null=True, help_text="English title.")
    title_ko = serializers.CharField(read_only=True, allow_null=True, help_text="Korean title.")
    description = serializers.CharField(
        read_only=True, help_text="In the request's language, or the other language's."
    )
    description_en = serializers.CharField(read_only=True, allow_null=True)
    description_ko = serializers.CharField(read_only=True, allow_null=True)
    lead_organization = serializers.IntegerField(source="lead_organization_id", read_only=True)
    supporting_organizations = serializers.ListField(
        child=serializers.IntegerField(), source="support_ids", read_only=True
    )
    source_outcomes = serializers.ListField(
        child=serializers.IntegerField(), source="outcome_ids", read_only=True
    )
    assignee = serializers.IntegerField(
        source="shown_assignee_id", read_only=True, allow_null=True,
        help_text="Null when unassigned or when the person is outside your scope.",
    )  # fmt: skip
    manager = serializers.IntegerField(
        source="shown_manager_id", read_only=True, allow_null=True,
        help_text="Null when none or when the person is outside your scope.",
    )  # fmt: skip
    parent = serializers.IntegerField(
        source="shown_parent_id", read_only=True, allow_null=True,
        help_text="Null when none or when you cannot open the parent task.",
    )  # fmt: skip
    depends_on = serializers.ListField(
        child=serializers.IntegerField(), source="depends_on_ids", read_only=True,
        help_text="The tasks it depends on that you can open.",
    )  # fmt: skip
    start_date = serializers.DateField(read_only=True, allow_null=True)
    due_date = serializers.DateField(read_only=True)
    time_zone = serializers.CharField(
        source="plan.time_zone", read_only=True, help_text="The plan's zone: deadlines end there."
    )
    deadline_at = serializers.DateTimeField(
        read_only=True, help_text="End of the due date in the plan's time zone (UTC)."
    )
    status = serializers.ChoiceField(choices=Task.Status.choices, read_only=True)
    priority = serializers.ChoiceField(choices=Task.Priority.choices, read_only=True)
    progress = serializers.IntegerField(read_only=True)
    visibility = serializers.ChoiceField(choices=Task.Visibility.choices, read_only=True)
    is_overdue = serializers.BooleanField(read_only=True)
    completed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    verified_at = serializers.DateTimeField(read_only=True, allow_null=True)
    version = serializers.IntegerField(read_only=True, help_text="Also the ETag.")
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class StatusUpdateSerializer(serializers.ModelSerializer):
    """People ids come from `status_updates_attach_people`: null outside the reader's scope."""

    author = serializers.IntegerField(source="shown_author_id", read_only=True, allow_null=True)
    assignee_from = serializers.IntegerField(
        source="shown_assignee_from_id", read_only=True, allow_null=True
    )
    assignee_to = serializers.IntegerField(
        source="shown_assignee_to_id", read_only=True, allow_null=True
    )
    evidence_url = _link()
    status_from = serializers.ChoiceField(
        choices=Task.Status.choices, allow_blank=True, read_only=True,
        help_text="Empty unless the update is a status change.",
    )  # fmt: skip
    status_to = serializers.ChoiceField(
        choices=Task.Status.choices, allow_blank=True, read_only=True,
        help_text="Empty unless the update is a status change or creation.",
    )  # fmt: skip

    class Meta:
        model = StatusUpdate
        fields = [
            "id", "task", "author", "created_at", "kind", "status_from", "status_to",
            "progress", "due_date_from", "due_date_to", "assignee_from", "assignee_to", "note",
            "evidence_url",
        ]  # fmt: skip
        read_only_fields = fields


# --- Writes --------------------------------------------------------------------------------


def _visible(serializer, model):
    request = serializer.context.get("request")
    return policy.for_user(request.user if request else None, policy.VIEW, model)


WORKFLOW_FIELD_HINTS = {
    "status": _("Change the status with POST /api/v1/tasks/{id}/transition/."),
    "progress": _("Report progress with POST /api/v1/tasks/{id}/updates/."),
    "due_date": _("Move the deadline with POST /api/v1/tasks/{id}/deadline/ and a reason."),
    "assignee": _("Assign with POST /api/v1/tasks/{id}/assign/."),
    "manager": _("Set the manager with POST /api/v1/tasks/{id}/assign/."),
    "plan": _("A task cannot move to another plan."),
    "ref": _("A task's ref cannot change."),
}
UNKNOWN_FIELD = _("Unknown field.")


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, instead of silently ignoring them."""

    refused_hints: dict[str, str] = {}

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            errors = {
                key: [self.refused_hints.get(key, UNKNOWN_FIELD)]
                for key in data
                if key not in self.fields or self.fields[key].read_only
            }
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


TITLE_REQUIRED = services.TITLE_REQUIRED
TWO_VALUES = "Give {field} or {localized}, not both with different values."


def _version_field(max_length=None, help_text="", validators=()):
    kwargs = {"max_length": max_length} if max_length else {}
    return serializers.CharField(
        allow_null=True, allow_blank=True, required=False, help_text=help_text,
        validators=list(validators), **kwargs,
    )  # fmt: skip


class TaskWriteSerializer(StrictSerializer):
    """Titles and descriptions: `title_en` / `title_ko` (and `description_*`) write one
    language's version; `title` writes the request's language's (Accept-Language). An empty
    or null version is removed; a task keeps a title in at least one language."""

    workstream = IdRelatedField(queryset=Workstream.objects.all(), allow_null=True, required=False)
    title = serializers.CharField(
        max_length=300, required=False, validators=[validate_single_line],
        help_text="The title in the request's language (Accept-Language; English by default).",
    )  # fmt: skip
    title_en = _version_field(300, "The English title.", [validate_single_line])
    title_ko = _version_field(300, "The Korean title.", [validate_single_line])
    description = serializers.CharField(
        allow_blank=True, required=False, validators=[validate_text],
        help_text="The description in the request's language.",
    )  # fmt: skip
    description_en = _version_field(help_text="English description.", validators=[validate_text])
    description_ko = _version_field(help_text="Korean description.", validators=[validate_text])
    lead_organization = IdRelatedField(queryset=Organization.objects.all())
    supporting_organizations = IdRelatedField(
        queryset=Organization.objects.all(), many=True, required=False
    )
    source_outcomes = IdRelatedField(queryset=Outcome.objects.all(), many=True, required=False)
    depends_on = IdRelatedField(queryset=Task.objects.none(), many=True, required=False)
    parent = IdRelatedField(queryset=Task.objects.none(), allow_null=True, required=False)
    start_date = serializers.DateField(
        allow_null=True, required=False, validators=[validate_date_in_range]
    )
    priority = serializers.ChoiceField(choices=Task.Priority.choices, required=False)
    visibility = serializers.ChoiceField(choices=Task.Visibility.choices, required=False)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        language = content_language.active_language()
        errors = {}
        for field in ("title", "description"):
            localized = content_language.localized(field, language)
            if field in attrs:
                value = attrs.pop(field)
                if localized in attrs and (attrs[localized] or "") != (value or ""):
                    errors[field] = [TWO_VALUES.format(field=field, localized=localized)]
                attrs[localized] = value
            for code in content_language.LANGUAGES:
                name = content_language.localized(field, code)
                if name in attrs:
                    attrs[name] = content_language.empty_to_none(attrs[name])
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        visible_tasks = _visible(self, Task)
        self.fields["depends_on"].child_relation.queryset = visible_tasks
        self.fields["parent"].queryset = visible_tasks
        self.fields["workstream"].queryset = _visible(self, Workstream)


class TaskUpdateSerializer(TaskWriteSerializer):
    """Descriptive fields; status, progress, deadline and people have their own endpoints."""

    refused_hints = WORKFLOW_FIELD_HINTS


class TaskCreateSerializer(TaskWriteSerializer):
    refused_hints = {"status": "A new task starts as 'planned'."}
    plan = IdRelatedField(queryset=Plan.objects.none())
    ref = serializers.CharField(max_length=32)
    due_date = serializers.DateField(validators=[validate_date_in_range])
    assignee = IdRelatedField(queryset=User.objects.none(), allow_null=True, required=False)
    manager = IdRelatedField(queryset=User.objects.none(), allow_null=True, required=False)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        english, korean = attrs.get("title_en"), attrs.get("title_ko")
        if not (english or korean):
            raise serializers.ValidationError({"title": [message(TITLE_REQUIRED)]})
        # Both versions named, so that the model does not copy `title` into the request
        # language's; `title` (the original column) is the English one, or the Korean one.
        attrs["title_en"], attrs["title_ko"] = english, korean
        attrs["title"] = english or korean
        return attrs

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = _visible(self, Plan)
        self.fields["assignee"].queryset = _visible(self, User)
        self.fields["manager"].queryset = _visible(self, User)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Mark done with evidence",
            value={
                "to": "done",
                "expected_from": "in_progress",
                "note": "Centre opened on 3 November; minutes attached.",
                "evidence_url": "https://evidence.example.org/sc-03/minutes.pdf",
            },
            request_only=True,
        ),
        OpenApiExample(
            "Start work",
            value={"to": "in_progress", "expected_from": "planned"},
            request_only=True,
        ),
    ]
)
class TransitionSerializer(StrictSerializer):
    to = serializers.ChoiceField(choices=Task.Status.choices, help_text="The status to enter.")
    expected_from = serializers.ChoiceField(
        choices=Task.Status.choices,
        help_text="The status you saw. If the task has moved meanwhile: 409, nothing written.",
    )
    note = serializers.CharField(allow_blank=True, required=False, default="")
    evidence_url = serializers.URLField(
        allow_blank=True, required=False, default="", max_length=500
    )


class AssignSerializer(StrictSerializer):
    assignee = IdRelatedField(queryset=User.objects.none(), allow_null=True)
    manager = IdRelatedField(
        queryset=User.objects.none(), allow_null=True, required=False,
        help_text="Coordinators only. Leave out to keep the manager.",
    )  # fmt: skip
    note = serializers.CharField(allow_blank=True, required=False, default="")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = _visible(self, User)
        self.fields["manager"].queryset = _visible(self, User)


class DeadlineSerializer(StrictSerializer):
    due_date = serializers.DateField(validators=[validate_date_in_range])
    reason = serializers.CharField(help_text="Why the deadline moves; kept in the history.")


class StatusUpdateCreateSerializer(StrictSerializer):
    note = serializers.CharField(allow_blank=True, required=False, default="")
    progress = serializers.IntegerField(min_value=0, max_value=100, required=False, allow_null=True)
    evidence_url = serializers.URLField(
        allow_blank=True, required=False, default="", max_length=500
    )


# --- Write API for forums, outcomes, plans, workstreams, participants (issue 12) -------------

NAME_REQUIRED = gettext_noop("Give a name in English (name_en) or Korean (name_ko).")
TEXT_REQUIRED = {"title": TITLE_REQUIRED, "name": NAME_REQUIRED}


def _text(max_length=None, help_text="", single_line=True, **kwargs):
    validators = [validate_single_line] if single_line else [validate_text]
    extra = {"max_length": max_length} if max_length else {}
    return serializers.CharField(
        required=False, validators=validators, help_text=help_text, **extra, **kwargs
    )


class IdListField(serializers.ListField):
    """A list of related objects by id, resolved in ONE query (DRF's many=True field runs a
    query per id): fixed query counts however long the list. An id that does not exist (or is
    out of sight) is a 400 naming the field, as for IdRelatedField."""

    child = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    default_error_messages = {"does_not_exist": 'Invalid pk "{pk_value}" - object does not exist.'}

    def __init__(self, *, queryset, **kwargs):
        self.queryset = queryset
        kwargs.setdefault("max_length", 1000)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        ids = list(dict.fromkeys(super().to_internal_value(data)))
        found = {obj.pk: obj for obj in self.queryset.filter(pk__in=ids)}
        for pk in ids:
            if pk not in found:
                self.fail("does_not_exist", pk_value=pk)
        return [found[pk] for pk in ids]


def _orgs(**kwargs):
    return IdListField(queryset=Organization.objects.all(), required=False, **kwargs)


class ContentWriteSerializer(StrictSerializer):
    """Writes of records with texts in two languages (decision 0011): `title_en` /
    `title_ko` write one version, `title` the request language's (Accept-Language); an empty
    or null version is removed. On create, `required_text` needs a version in one language.
    Partial (PATCH) serializers take only the fields given."""

    translated: tuple[str, ...] = ()
    required_text: str | None = None

    def validate(self, attrs):
        attrs = super().validate(attrs)
        language = content_language.active_language()
        errors = {}
        for field in self.translated:
            localized = content_language.localized(field, language)
            if field in attrs:
                value = attrs.pop(field)
                if localized in attrs and (attrs[localized] or "") != (value or ""):
                    errors[field] = [TWO_VALUES.format(field=field, localized=localized)]
                attrs[localized] = value
            for code in content_language.LANGUAGES:
                name = content_language.localized(field, code)
                if name in attrs:
                    attrs[name] = content_language.empty_to_none(attrs[name])
        if errors:
            raise serializers.ValidationError(errors)
        field = self.required_text
        if field and not self.partial:
            # Both versions named, so that the model does not copy `title` into the request
            # language's; the original column holds the English one, or the Korean one.
            english, korean = attrs.get(f"{field}_en"), attrs.get(f"{field}_ko")
            if not (english or korean):
                raise serializers.ValidationError({field: [message(TEXT_REQUIRED[field])]})
            attrs[f"{field}_en"], attrs[f"{field}_ko"] = english, korean
            attrs[field] = english or korean
        return attrs


class ForumWriteSerializer(ContentWriteSerializer):
    translated = ("name", "summary")
    required_text = "name"

    name = _text(255, "The name in the request's language (Accept-Language).")
    name_en = _version_field(255, "The English name.", [validate_single_line])
    name_ko = _version_field(255, "The Korean name.", [validate_single_line])
    series = _text(100, 'e.g. "SCCD"', allow_blank=True)
    kind = serializers.ChoiceField(choices=Forum.Kind.choices)
    held_on = serializers.DateField(validators=[validate_date_in_range])
    location = _text(255, allow_blank=True)
    hosts = _orgs()
    participants = _orgs()
    summary = _text(single_line=False, allow_blank=True, help_text="In the request's language.")
    summary_en = _version_field(help_text="English summary.", validators=[validate_text])
    summary_ko = _version_field(help_text="Korean summary.", validators=[validate_text])
    source_title = _text(500, allow_blank=True)
    source_url = serializers.URLField(required=False, allow_blank=True, max_length=500)


class OutcomeWriteSerializer(ContentWriteSerializer):
    translated = ("title",)
    required_text = "title"

    forum = IdRelatedField(queryset=Forum.objects.all())
    kind = serializers.ChoiceField(choices=Outcome.Kind.choices)
    title = _text(300, "The title in the request's language (Accept-Language).")
    title_en = _version_field(300, "The English title.", [validate_single_line])
    title_ko = _version_field(300, "The Korean title.", [validate_single_line])
    text = _text(single_line=False, allow_blank=True, help_text="The verbatim text.")
    clause_ref = _text(100, allow_blank=True)
    parties = _orgs()
    signed_on = serializers.DateField(
        required=False, allow_null=True, validators=[validate_date_in_range]
    )
    amount = serializers.DecimalField(
        max_digits=20, decimal_places=2, min_value=0, required=False, allow_null=True
    )
    currency = serializers.RegexField(
        r"^[A-Z]{3}$", required=False, allow_blank=True, max_length=3,
        help_text="ISO 4217 code (USD, KRW); with an amount.",
    )  # fmt: skip
    binding = serializers.BooleanField(required=False)
    status = serializers.ChoiceField(choices=Outcome.Status.choices, required=False)


class PlanTextsMixin(serializers.Serializer):
    title = _text(300, "The title in the request's language (Accept-Language).")
    title_en = _version_field(300, "The English title.", [validate_single_line])
    title_ko = _version_field(300, "The Korean title.", [validate_single_line])
    description = _text(single_line=False, allow_blank=True, help_text="In the request's language.")
    description_en = _version_field(help_text="English description.", validators=[validate_text])
    description_ko = _version_field(help_text="Korean description.", validators=[validate_text])


class PlanWriteSerializer(PlanTextsMixin, ContentWriteSerializer):
    translated = ("title", "description")
    required_text = "title"

    code = serializers.SlugField(max_length=32, help_text="Unique, e.g. KUS-JP2.")
    period_start = serializers.DateField(validators=[validate_date_in_range])
    period_end = serializers.DateField(validators=[validate_date_in_range])
    status = serializers.ChoiceField(choices=Plan.Status.choices, required=False)
    time_zone = serializers.CharField(
        max_length=64, required=False, validators=[validate_time_zone]
    )
    requires_evidence = serializers.BooleanField(required=False)
    predecessor = IdRelatedField(queryset=Plan.objects.none(), allow_null=True, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["predecessor"].queryset = _visible(self, Plan)


class PlanCreateSerializer(PlanWriteSerializer):
    coordinating = _orgs(
        help_text="Coordinating organizations; include one where you are a coordinator."
    )
    members = _orgs(help_text="Member organizations.")


class WorkstreamWriteSerializer(ContentWriteSerializer):
    translated = ("title", "description")
    required_text = "title"

    plan = IdRelatedField(queryset=Plan.objects.none(), help_text="Set on create only.")
    code = serializers.CharField(max_length=32, validators=[validate_single_line])
    title = _text(300, "The title in the request's language (Accept-Language).")
    title_en = _version_field(300, "The English title.", [validate_single_line])
    title_ko = _version_field(300, "The Korean title.", [validate_single_line])
    description = _text(single_line=False, allow_blank=True, help_text="In the request's language.")
    description_en = _version_field(help_text="English description.", validators=[validate_text])
    description_ko = _version_field(help_text="Korean description.", validators=[validate_text])
    lead_organizations = _orgs()
    parent = IdRelatedField(queryset=Workstream.objects.none(), allow_null=True, required=False)
    order = serializers.IntegerField(min_value=0, max_value=2_147_483_647, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = _visible(self, Plan)
        self.fields["parent"].queryset = _visible(self, Workstream)


class WorkstreamUpdateSerializer(WorkstreamWriteSerializer):
    refused_hints = {"plan": _("A workstream cannot move to another plan.")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].read_only = True


class PlanParticipantSerializer(serializers.ModelSerializer):
    """A plan participant as its own resource (/api/v1/plan-participants/)."""

    class Meta:
        model = PlanParticipant
        fields = ["id", "plan", "organization", "role"]
        read_only_fields = fields


class ParticipantCreateSerializer(StrictSerializer):
    plan = IdRelatedField(queryset=Plan.objects.none())
    organization = IdRelatedField(queryset=Organization.objects.all())
    role = serializers.ChoiceField(choices=PlanParticipant.Role.choices, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = _visible(self, Plan)


class ParticipantUpdateSerializer(StrictSerializer):
    refused_hints = {
        "plan": _("Add the organization to the other plan instead."),
        "organization": _("Remove this participant and add the other organization."),
    }
    role = serializers.ChoiceField(choices=PlanParticipant.Role.choices)


class PlanNewVersionSerializer(PlanTextsMixin, ContentWriteSerializer):
    """The next version of a plan: a new code and period, titles (default: the old plan's),
    and the open tasks to carry over."""

    translated = ("title", "description")

    code = serializers.SlugField(max_length=32, help_text="The new plan's code, e.g. KUS-JP3.")
    period_start = serializers.DateField(validators=[validate_date_in_range])
    period_end = serializers.DateField(validators=[validate_date_in_range])
    status = serializers.ChoiceField(choices=Plan.Status.choices, required=False)
    tasks = IdListField(
        queryset=Task.objects.none(), required=False,
        help_text="Open tasks of this plan to carry over (each is copied and the original "
        "closed as cancelled, carried over). Leave out to carry none.",
    )  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tasks"].queryset = _visible(self, Task)


class ScorecardSerializer(serializers.Serializer):
    """How a forum's outcomes stand (plans.selectors.outcome_scorecard), counting the
    implementing tasks you can see."""

    forum = serializers.IntegerField()
    fulfilled = serializers.IntegerField(help_text="Every implementing task is done or verified.")
    in_implementation = serializers.IntegerField(help_text="At least one has started.")
    not_started = serializers.IntegerField(help_text="Every implementing task is still planned.")
    no_task = serializers.IntegerField(help_text="No (visible, non-cancelled) task implements it.")
    total = serializers.IntegerField()


class OrganizationWriteSerializer(ContentWriteSerializer):
    """An organization of the registry (coordinators): names and acronyms in two languages."""

    translated = ("name", "acronym")
    required_text = "name"

    name = _text(200, "The name in the request's language (Accept-Language).")
    name_en = _version_field(200, "The English name.", [validate_single_line])
    name_ko = _version_field(200, "The Korean name.", [validate_single_line])
    acronym = _text(30, "The acronym in the request's language.", allow_blank=True)
    acronym_en = _version_field(30, "The English acronym, e.g. MOTIE.", [validate_single_line])
    acronym_ko = _version_field(30, "The Korean acronym, e.g. 산업부.", [validate_single_line])
    kind = serializers.ChoiceField(choices=Organization.Kind.choices)
    country = serializers.RegexField(
        r"^[A-Z]{2}$", max_length=2, help_text="ISO 3166-1 alpha-2 code in capitals, e.g. KR."
    )
    parent = IdRelatedField(queryset=Organization.objects.all(), allow_null=True, required=False)
    website = serializers.URLField(required=False, allow_blank=True, max_length=200)
    aliases = serializers.ListField(
        child=serializers.CharField(max_length=200, validators=[validate_single_line]),
        required=False,
        max_length=50,
        help_text='Other names texts use for it, e.g. ["Commerce", "상무부"] (readout intake).',
    )
