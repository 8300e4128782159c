"""The plan domain: forums and their outcomes, plans, workstreams, tasks and their history.

Rules across one row live in `clean()` and in database constraints with readable messages;
every state change goes through `plans/services.py`.
"""

import datetime as dt
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop, pgettext_lazy
from simple_history.models import HistoricalRecords

from tracker.constraints import ChecksInOneQuery
from tracker.content_language import TranslatedContent
from tracker.i18n import message
from tracker.models import Organization
from tracker.validators import (
    validate_date_in_range,
    validate_single_line,
    validate_text,
    validate_time_zone,
    validate_web_url,
)

from . import querysets


def _choices_check(field: str, choices: type[models.TextChoices], name: str, label: str):
    return models.CheckConstraint(
        condition=Q(**{f"{field}__in": choices.values}),
        name=name,
        violation_error_message=format_lazy(
            _("{label} must be one of: {values}."), label=label, values=", ".join(choices.values)
        ),
    )


class ForumKind(models.TextChoices):
    SUMMIT = "summit", _("Summit")
    MINISTERIAL = "ministerial", _("Ministerial meeting")
    DIALOGUE = "dialogue", _("Dialogue")
    BUSINESS_FORUM = "business_forum", _("Business forum")
    CONFERENCE = "conference", _("Conference")
    WORKING_GROUP_MEETING = "working_group_meeting", _("Working-group meeting")


class Forum(TranslatedContent):
    Kind = ForumKind

    name = models.CharField(_("name"), max_length=255, validators=[validate_single_line])
    series = models.CharField(
        _("series"),
        max_length=100,
        blank=True,
        help_text=_('e.g. "SCCD"'),
        validators=[validate_single_line],
    )
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    held_on = models.DateField(_("held on"), validators=[validate_date_in_range])
    location = models.CharField(
        _("location"), max_length=255, blank=True, validators=[validate_single_line]
    )
    hosts = models.ManyToManyField(
        Organization, verbose_name=_("hosts"), related_name="hosted_forums", blank=True
    )
    participants = models.ManyToManyField(
        Organization, verbose_name=_("participants"), related_name="attended_forums", blank=True
    )
    summary = models.TextField(_("summary"), blank=True, validators=[validate_text])
    source_title = models.CharField(
        _("source title"), max_length=500, blank=True, validators=[validate_single_line]
    )
    source_url = models.URLField(
        _("source URL"), max_length=500, blank=True, validators=[validate_web_url]
    )
    # Incremental sync (`updated_after`, docs/decisions/0013): bumped by every write of the
    # row or of its links (hosts, participants).
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords()

    class Meta:
        indexes = [models.Index(fields=["updated_at", "id"], name="forum_sync")]
        verbose_name = _("forum")
        verbose_name_plural = _("forums")
        ordering = ["-held_on", "name"]
        constraints = [
            _choices_check("kind", ForumKind, "forum_kind_valid", _("Forum kind")),
            models.UniqueConstraint(
                fields=["name", "held_on"],
                name="forum_unique_name_and_date",
                violation_error_message=_(
                    "A forum with this name is already recorded on this date."
                ),
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.held_on:%Y-%m-%d})"


class OutcomeKind(models.TextChoices):
    MOU = "mou", _("MOU")
    INVESTMENT_PLEDGE = "investment_pledge", _("Investment pledge")
    COMMITMENT = "commitment", _("Commitment")
    DECISION = "decision", _("Decision")
    JOINT_STATEMENT_ITEM = "joint_statement_item", _("Joint statement item")


class OutcomeStatus(models.TextChoices):
    OPEN = "open", _("Open")
    IN_IMPLEMENTATION = "in_implementation", _("In implementation")
    FULFILLED = "fulfilled", _("Fulfilled")
    LAPSED = "lapsed", _("Lapsed")


class Outcome(ChecksInOneQuery, TranslatedContent):
    Kind = OutcomeKind

    Status = OutcomeStatus

    forum = models.ForeignKey(
        Forum, verbose_name=_("forum"), on_delete=models.PROTECT, related_name="outcomes"
    )
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    title = models.CharField(_("title"), max_length=300, validators=[validate_single_line])
    text = models.TextField(_("verbatim text"), blank=True, validators=[validate_text])
    clause_ref = models.CharField(
        _("clause reference"), max_length=100, blank=True, validators=[validate_single_line]
    )
    parties = models.ManyToManyField(
        Organization, verbose_name=_("parties"), related_name="outcomes", blank=True
    )
    signed_on = models.DateField(
        _("signed on"), null=True, blank=True, validators=[validate_date_in_range]
    )
    amount = models.DecimalField(
        _("amount"), max_digits=20, decimal_places=2, null=True, blank=True
    )
    currency = models.CharField(
        _("currency"), max_length=3, blank=True, help_text=_("ISO 4217 code, e.g. USD, KRW.")
    )
    binding = models.BooleanField(
        _("binding"), default=False, help_text=_("Most forum outcomes are non-binding.")
    )
    status = models.CharField(
        _("status"), max_length=32, choices=Status.choices, default=Status.OPEN
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords()
    objects = querysets.OutcomeQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["updated_at", "id"], name="outcome_sync")]
        verbose_name = _("outcome")
        verbose_name_plural = _("outcomes")
        ordering = ["forum__held_on", "title"]
        constraints = [
            _choices_check("kind", OutcomeKind, "outcome_kind_valid", _("Outcome kind")),
            _choices_check("status", OutcomeStatus, "outcome_status_valid", _("Outcome status")),
            models.CheckConstraint(
                condition=Q(amount__isnull=True, currency="")
                | Q(amount__isnull=False, currency__regex=r"^[A-Z]{3}$"),
                name="outcome_amount_has_currency",
                violation_error_message=_(
                    "An amount needs a three-letter ISO 4217 currency (e.g. USD), "
                    "and a currency needs an amount."
                ),
            ),
            models.CheckConstraint(
                condition=Q(amount__isnull=True) | Q(amount__gte=0),
                name="outcome_amount_not_negative",
                violation_error_message=_("An amount cannot be negative."),
            ),
        ]

    def __str__(self):
        return self.title


class PlanStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ACTIVE = "active", _("Active")
    CLOSED = "closed", _("Closed")
    ARCHIVED = "archived", _("Archived")


class Plan(TranslatedContent):
    Status = PlanStatus

    code = models.SlugField(_("code"), max_length=32, unique=True, allow_unicode=False)
    title = models.CharField(_("title"), max_length=300, validators=[validate_single_line])
    description = models.TextField(_("description"), blank=True, validators=[validate_text])
    period_start = models.DateField(_("period start"), validators=[validate_date_in_range])
    period_end = models.DateField(_("period end"), validators=[validate_date_in_range])
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.DRAFT
    )
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        default="Asia/Seoul",
        validators=[validate_time_zone],
        help_text=_("Deadlines of this plan end at midnight in this IANA time zone."),
    )
    requires_evidence = models.BooleanField(
        _("requires evidence"),
        default=False,
        help_text=_("Marking a task done needs an evidence link."),
    )
    predecessor = models.ForeignKey(
        "self",
        verbose_name=_("predecessor"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="successors",
        help_text=_("e.g. Joint Plan 1.0 for Joint Plan 2.0."),
    )
    participants = models.ManyToManyField(
        Organization,
        verbose_name=_("participants"),
        through="PlanParticipant",
        related_name="plans",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords()
    objects = querysets.PlanQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["updated_at", "id"], name="plan_sync")]
        verbose_name = _("plan")
        verbose_name_plural = _("plans")
        ordering = ["-period_start", "code"]
        constraints = [
            _choices_check("status", PlanStatus, "plan_status_valid", _("Plan status")),
            models.CheckConstraint(
                condition=Q(period_end__gte=models.F("period_start")),
                name="plan_period_ordered",
                violation_error_message=_("The plan period cannot end before it starts."),
            ),
            models.CheckConstraint(
                condition=~Q(predecessor=models.F("pk")),
                name="plan_not_own_predecessor",
                violation_error_message=_("A plan cannot be its own predecessor."),
            ),
        ]

    def __str__(self):
        return f"{self.code}: {self.title}"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class PlanParticipantRole(models.TextChoices):
    COORDINATING = "coordinating", _("Coordinating")
    MEMBER = "member", _("Member")


class PlanParticipant(models.Model):
    Role = PlanParticipantRole

    plan = models.ForeignKey(
        Plan, verbose_name=_("plan"), on_delete=models.CASCADE, related_name="participations"
    )
    organization = models.ForeignKey(
        Organization,
        verbose_name=_("organization"),
        on_delete=models.PROTECT,
        related_name="plan_participations",
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.MEMBER)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords()

    class Meta:
        indexes = [models.Index(fields=["updated_at", "id"], name="planparticipant_sync")]
        verbose_name = _("plan participant")
        verbose_name_plural = _("plan participants")
        ordering = ["plan", "role", "organization__name"]
        constraints = [
            _choices_check(
                "role", PlanParticipantRole, "planparticipant_role_valid", _("Participant role")
            ),
            models.UniqueConstraint(
                fields=["plan", "organization"],
                name="planparticipant_once_per_plan",
                violation_error_message=_("This organization already participates in this plan."),
            ),
        ]

    def __str__(self):
        return f"{self.organization} ({self.get_role_display()}) in {self.plan.code}"


class Workstream(TranslatedContent):
    plan = models.ForeignKey(
        Plan, verbose_name=_("plan"), on_delete=models.CASCADE, related_name="workstreams"
    )
    code = models.CharField(_("code"), max_length=32, validators=[validate_single_line])
    title = models.CharField(_("title"), max_length=300, validators=[validate_single_line])
    description = models.TextField(_("description"), blank=True, validators=[validate_text])
    lead_organizations = models.ManyToManyField(
        Organization,
        verbose_name=_("lead organizations"),
        related_name="led_workstreams",
        blank=True,
    )
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="children",
        help_text=_("e.g. the critical minerals sub-working group."),
    )
    order = models.PositiveIntegerField(_("order"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords()
    objects = querysets.WorkstreamQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["updated_at", "id"], name="workstream_sync")]
        verbose_name = _("workstream")
        verbose_name_plural = _("workstreams")
        ordering = ["plan", "order", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "code"],
                name="workstream_code_unique_in_plan",
                violation_error_message=_(
                    "Another workstream of this plan already uses this code."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(parent=models.F("pk")),
                name="workstream_not_own_parent",
                violation_error_message=_("A workstream cannot be its own parent."),
            ),
        ]

    def __str__(self):
        return f"{self.code} {self.title}"

    def clean(self):
        if self.parent_id and self.plan_id and self.parent.plan_id != self.plan_id:
            raise ValidationError({"parent": _("The parent workstream belongs to another plan.")})


class TaskStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    IN_PROGRESS = "in_progress", _("In progress")
    AT_RISK = "at_risk", _("At risk")
    BLOCKED = "blocked", _("Blocked")
    DONE = "done", _("Done")
    VERIFIED = "verified", _("Verified")
    CANCELLED = "cancelled", _("Cancelled")


class TaskPriority(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    CRITICAL = "critical", _("Critical")


class TaskVisibility(models.TextChoices):
    PARTICIPANTS = "participants", _("Lead and supporting organizations only")
    PLAN = "plan", _("Every organization in the plan")


class Task(ChecksInOneQuery, TranslatedContent):
    Status = TaskStatus

    OPEN_STATUSES = (Status.PLANNED, Status.IN_PROGRESS, Status.AT_RISK, Status.BLOCKED)
    COMPLETE_STATUSES = (Status.DONE, Status.VERIFIED)

    Priority = TaskPriority

    Visibility = TaskVisibility

    plan = models.ForeignKey(
        Plan, verbose_name=_("plan"), on_delete=models.PROTECT, related_name="tasks"
    )
    workstream = models.ForeignKey(
        Workstream,
        verbose_name=_("workstream"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tasks",
    )
    ref = models.CharField(
        _("ref"),
        max_length=32,
        help_text=_("Unique in its plan, e.g. SC-03."),
        validators=[validate_single_line],
    )
    title = models.CharField(_("title"), max_length=300, validators=[validate_single_line])
    description = models.TextField(_("description"), blank=True, validators=[validate_text])
    source_outcomes = models.ManyToManyField(
        Outcome, verbose_name=_("source outcomes"), related_name="tasks", blank=True
    )
    lead_organization = models.ForeignKey(
        Organization,
        verbose_name=_("lead organization"),
        on_delete=models.PROTECT,
        related_name="led_tasks",
    )
    supporting_organizations = models.ManyToManyField(
        Organization,
        verbose_name=_("supporting organizations"),
        related_name="supported_tasks",
        blank=True,
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assignee"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tasks",
    )
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("manager"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="managed_tasks",
    )
    start_date = models.DateField(
        _("start date"), null=True, blank=True, validators=[validate_date_in_range]
    )
    due_date = models.DateField(_("due date"), validators=[validate_date_in_range])
    deadline_at = models.DateTimeField(
        _("deadline at"),
        editable=False,
        db_index=True,
        help_text=_("End of the due date in the plan's time zone, in UTC (derived)."),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PLANNED
    )
    priority = models.CharField(
        _("priority"), max_length=16, choices=Priority.choices, default=Priority.NORMAL
    )
    # The priority's rank (low 0 ... critical 3), kept by the database itself (a stored
    # generated column, so bulk writes and raw SQL keep it too): `ordering=priority` walks an
    # index instead of sorting every visible row on a CASE expression.
    priority_rank = models.GeneratedField(
        expression=models.Case(
            *[
                models.When(priority=value, then=models.Value(rank))
                for rank, value in enumerate(TaskPriority.values)
            ],
            default=models.Value(len(TaskPriority.values)),
        ),
        output_field=models.PositiveSmallIntegerField(),
        db_persist=True,
        verbose_name=_("priority rank"),
    )
    progress = models.PositiveSmallIntegerField(
        _("progress"), default=0, help_text=_("Percent, 0 to 100.")
    )
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="milestones",
    )
    depends_on = models.ManyToManyField(
        "self",
        verbose_name=_("depends on"),
        symmetrical=False,
        related_name="dependents",
        blank=True,
    )
    visibility = models.CharField(
        _("visibility"), max_length=16, choices=Visibility.choices, default=Visibility.PARTICIPANTS
    )
    predecessor = models.ForeignKey(
        "self",
        verbose_name=_("carried over from"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="successors",
        editable=False,
        help_text=_("The task of the previous plan version this one carries over."),
    )
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True, editable=False)
    verified_at = models.DateTimeField(_("verified at"), null=True, blank=True, editable=False)
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("updated by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    history = HistoricalRecords(
        m2m_fields=["supporting_organizations", "source_outcomes"],
        excluded_fields=["priority_rank"],  # derived from priority, which the history keeps
    )
    objects = querysets.TaskQuerySet.as_manager()

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ["plan", "due_date", "ref"]
        indexes = [
            models.Index(fields=["status", "deadline_at"], name="task_status_deadline"),
            # The default list order, filtered by status (the commonest API query).
            models.Index(fields=["status", "due_date", "id"], name="task_status_due"),
            models.Index(fields=["due_date", "id"], name="task_due"),
            # Incremental sync: `updated_after`, ordered by (updated_at, id).
            models.Index(fields=["updated_at", "id"], name="task_sync"),
            # ordering=priority, with and without a status filter.
            models.Index(fields=["priority_rank", "id"], name="task_priority_rank"),
            models.Index(
                fields=["status", "priority_rank", "id"], name="task_status_priority_rank"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "ref"],
                name="task_ref_unique_in_plan",
                violation_error_message=_("Another task of this plan already uses this ref."),
            ),
            models.CheckConstraint(
                condition=Q(start_date__isnull=True) | Q(due_date__gte=models.F("start_date")),
                name="task_due_not_before_start",
                violation_error_message=_("The due date cannot be before the start date."),
            ),
            models.CheckConstraint(
                condition=Q(progress__gte=0, progress__lte=100),
                name="task_progress_percent",
                violation_error_message=_("Progress must be between 0 and 100."),
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["done", "verified"]) | Q(progress=100),
                name="task_complete_means_full_progress",
                violation_error_message=_("A done or verified task has progress 100."),
            ),
            models.CheckConstraint(
                condition=~Q(parent=models.F("pk")),
                name="task_not_own_parent",
                violation_error_message=_("A task cannot be its own parent."),
            ),
            _choices_check("status", TaskStatus, "task_status_valid", _("Task status")),
            _choices_check("priority", TaskPriority, "task_priority_valid", _("Task priority")),
            _choices_check(
                "visibility", TaskVisibility, "task_visibility_valid", _("Task visibility")
            ),
        ]

    def __str__(self):
        return f"{self.ref} {self.title}"

    def clean(self):
        errors = {}
        if self.workstream_id and self.plan_id and self.workstream.plan_id != self.plan_id:
            errors["workstream"] = _("The workstream belongs to another plan.")
        if self.parent_id and self.plan_id and self.parent.plan_id != self.plan_id:
            errors["parent"] = _("The parent task belongs to another plan.")
        if errors:
            raise ValidationError(errors)

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def is_overdue(self) -> bool:
        """Open and past the end of its due date in the plan's zone (see querysets.overdue)."""
        annotated = self.__dict__.get("_is_overdue")
        if annotated is not None:
            return annotated
        return self.is_open and self.deadline_at is not None and self.deadline_at <= timezone.now()

    @is_overdue.setter
    def is_overdue(self, value):
        # Set by TaskQuerySet.with_overdue(), which decides in SQL at the query's instant.
        self.__dict__["_is_overdue"] = value

    @staticmethod
    def deadline_for(due_date: dt.date, time_zone: str) -> dt.datetime:
        """The instant a due date ends: next midnight in the plan's zone, returned in UTC."""
        next_midnight = dt.datetime.combine(
            due_date + dt.timedelta(days=1), dt.time(0), tzinfo=zoneinfo.ZoneInfo(time_zone)
        )
        return next_midnight.astimezone(dt.UTC)


class StatusUpdateKind(models.TextChoices):
    CREATED = "created", pgettext_lazy("status update kind", "Created")
    PROGRESS = "progress", _("Progress")
    TRANSITION = "transition", _("Status change")
    DEADLINE_CHANGE = "deadline_change", _("Deadline change")
    ASSIGNMENT = "assignment", _("Assignment")


class StatusUpdate(ChecksInOneQuery, models.Model):
    """Append-only history of a task. Nothing edits or deletes a row once written."""

    Kind = StatusUpdateKind

    # PROTECT: history outlives nothing it describes; a task with history is cancelled, not deleted.
    task = models.ForeignKey(
        Task, verbose_name=_("task"), on_delete=models.PROTECT, related_name="updates"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("author"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="status_updates",
        help_text=_("Empty when the system made the change."),
    )
    created_at = models.DateTimeField(_("created at"), db_index=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    status_from = models.CharField(
        _("status from"), max_length=16, choices=TaskStatus.choices, blank=True
    )
    status_to = models.CharField(
        _("status to"), max_length=16, choices=TaskStatus.choices, blank=True
    )
    progress = models.PositiveSmallIntegerField(_("progress"), null=True, blank=True)
    due_date_from = models.DateField(_("due date from"), null=True, blank=True)
    due_date_to = models.DateField(_("due date to"), null=True, blank=True)
    assignee_from = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assignee from"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    assignee_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assignee to"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    note = models.TextField(_("note"), blank=True, validators=[validate_text])
    evidence_url = models.URLField(
        _("evidence link"), max_length=500, blank=True, validators=[validate_web_url]
    )

    objects = querysets.StatusUpdateQuerySet.as_manager()

    class Meta:
        verbose_name = _("status update")
        verbose_name_plural = _("status updates")
        ordering = ["task", "created_at", "pk"]
        constraints = [
            _choices_check("kind", StatusUpdateKind, "statusupdate_kind_valid", _("Update kind")),
            models.CheckConstraint(
                condition=Q(progress__isnull=True) | Q(progress__gte=0, progress__lte=100),
                name="statusupdate_progress_percent",
                violation_error_message=_("Progress must be between 0 and 100."),
            ),
            models.CheckConstraint(
                condition=~Q(kind="transition") | (~Q(status_from="") & ~Q(status_to="")),
                name="statusupdate_transition_has_states",
                violation_error_message=_(
                    "A status change records the status it left and entered."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(kind="deadline_change") | (Q(due_date_to__isnull=False) & ~Q(note="")),
                name="statusupdate_deadline_change_has_reason",
                violation_error_message=_("A deadline change records the new date and a reason."),
            ),
        ]

    def __str__(self):
        return f"{self.task.ref}: {self.get_kind_display()} at {self.created_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError(message(APPEND_ONLY))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(message(APPEND_ONLY))


APPEND_ONLY = gettext_noop("Status updates are append-only: they cannot be changed or deleted.")


# Readout intake's drafts live beside the domain they feed (plans/intake/models.py).
from .intake.models import OutcomeDraft, Readout  # noqa: E402, F401
