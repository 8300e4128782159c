"""What an intake stores: the text pasted (`Readout`) and the draft outcomes found in it
(`OutcomeDraft`), kept until the coordinator has confirmed or dropped each one."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from tracker.models import Organization
from tracker.validators import validate_date_in_range, validate_single_line, validate_text

from ..models import Forum, Outcome, OutcomeKind, _choices_check


class Readout(models.Model):
    """A joint statement, readout or press release pasted into a forum's intake."""

    forum = models.ForeignKey(
        Forum, verbose_name=_("forum"), on_delete=models.CASCADE, related_name="readouts"
    )
    text = models.TextField(_("text"), validators=[validate_text])
    published_on = models.DateField(_("published on"), validators=[validate_date_in_range])
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("readout")
        verbose_name_plural = _("readouts")
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.forum} ({self.published_on:%Y-%m-%d})"


class OutcomeDraftStatus(models.TextChoices):
    DRAFT = "draft", _("To review")
    CONFIRMED = "confirmed", _("Confirmed")
    DROPPED = "dropped", _("Dropped")


class OutcomeDraft(models.Model):
    """One commitment found in a readout: what it says, who, how much and by when."""

    Status = OutcomeDraftStatus
    Kind = OutcomeKind

    readout = models.ForeignKey(
        Readout, verbose_name=_("readout"), on_delete=models.CASCADE, related_name="drafts"
    )
    forum = models.ForeignKey(
        Forum, verbose_name=_("forum"), on_delete=models.CASCADE, related_name="outcome_drafts"
    )
    position = models.PositiveIntegerField(_("position"), help_text=_("Order in the text."))
    sentence = models.TextField(_("sentence"), validators=[validate_text])
    start = models.PositiveIntegerField(_("start"), help_text=_("Offset of the sentence."))
    end = models.PositiveIntegerField(_("end"))
    trigger = models.CharField(_("commitment phrase"), max_length=200, blank=True)
    kind = models.CharField(_("kind"), max_length=32, choices=OutcomeKind.choices)
    title = models.CharField(_("title"), max_length=300, validators=[validate_single_line])
    parties = models.ManyToManyField(
        Organization, verbose_name=_("parties"), related_name="outcome_drafts", blank=True
    )
    new_party_names = models.JSONField(
        _("new organizations"),
        default=list,
        blank=True,
        help_text=_("Names the registry does not know, offered as new organizations."),
    )
    amount = models.DecimalField(
        _("amount"), max_digits=20, decimal_places=2, null=True, blank=True
    )
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    deadline = models.DateField(
        _("suggested deadline"), null=True, blank=True, validators=[validate_date_in_range]
    )
    deadline_phrase = models.CharField(_("deadline phrase"), max_length=200, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.DRAFT
    )
    outcome = models.OneToOneField(
        Outcome,
        verbose_name=_("outcome"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="draft",
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("outcome draft")
        verbose_name_plural = _("outcome drafts")
        ordering = ["readout", "position"]
        constraints = [
            _choices_check("kind", OutcomeKind, "outcomedraft_kind_valid", _("Outcome kind")),
            _choices_check(
                "status", OutcomeDraftStatus, "outcomedraft_status_valid", _("Draft status")
            ),
            models.CheckConstraint(
                condition=Q(amount__isnull=True, currency="")
                | Q(amount__isnull=False, currency__regex=r"^[A-Z]{3}$"),
                name="outcomedraft_amount_has_currency",
                violation_error_message=_(
                    "An amount needs a three-letter ISO 4217 currency (e.g. USD), "
                    "and a currency needs an amount."
                ),
            ),
            models.CheckConstraint(
                condition=Q(amount__isnull=True) | Q(amount__gte=0),
                name="outcomedraft_amount_not_negative",
                violation_error_message=_("An amount cannot be negative."),
            ),
            models.CheckConstraint(
                condition=Q(end__gte=models.F("start")),
                name="outcomedraft_span_ordered",
                violation_error_message=_("The sentence cannot end before it starts."),
            ),
        ]

    def __str__(self):
        return self.title
