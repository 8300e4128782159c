"""Forms of readout intake: paste a text, edit a draft, create tasks from confirmed drafts."""

from django import forms
from django.utils.translation import gettext_lazy as _

from plans.intake.models import OutcomeDraft
from plans.models import OutcomeKind, Plan
from tracker.models import Organization

from .labels import OUTCOME_KIND
from .templatetags.workspace import org_name


class OrganizationChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return org_name(obj)


class IntakeForm(forms.Form):
    text = forms.CharField(
        label=_("Text of the joint statement, readout or press release"),
        widget=forms.Textarea(attrs={"rows": 10}),
        max_length=100_000,
        strip=False,
    )
    published_on = forms.DateField(
        label=_("Published on"),
        help_text=_("Deadlines such as “next year” count from this date."),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


class DraftForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=300)
    kind = forms.ChoiceField(label=_("Kind"), choices=())
    # Plain choices built once per page (a queryset field would query again for every draft).
    parties = forms.TypedMultipleChoiceField(
        label=_("Parties"), coerce=int, required=False,
        widget=forms.SelectMultiple(attrs={"size": 5}),
    )  # fmt: skip
    amount = forms.DecimalField(
        label=_("Amount"), required=False, min_value=0, max_digits=20, decimal_places=2
    )
    currency = forms.RegexField(
        label=_("Currency"), regex=r"^[A-Z]{3}$", required=False, max_length=3,
        error_messages={"invalid": _("Three capital letters, e.g. USD or KRW.")},
    )  # fmt: skip
    deadline = forms.DateField(
        label=_("Suggested deadline"), required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )  # fmt: skip

    def __init__(self, *args, draft: OutcomeDraft, organizations, **kwargs):
        kwargs.setdefault("prefix", f"draft-{draft.pk}")
        if not args or args[0] is None:
            kwargs.setdefault(
                "initial",
                {
                    "title": draft.title,
                    "kind": draft.kind,
                    "parties": [org.pk for org in draft.parties.all()],
                    "amount": draft.amount,
                    "currency": draft.currency,
                    "deadline": draft.deadline,
                },
            )
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [
            (value, OUTCOME_KIND.get(value, value)) for value in OutcomeKind.values
        ]
        self._organizations = {org.pk: org for org in organizations}
        self.fields["parties"].choices = [
            (org.pk, f"{org_name(org)} ({org.acronym})" if org.acronym else org_name(org))
            for org in organizations
        ]

    def clean_parties(self):
        return [self._organizations[pk] for pk in self.cleaned_data["parties"]]


class TasksForm(forms.Form):
    plan = OrganizationChoice(label=_("Plan"), queryset=Plan.objects.none())
    ref_prefix = forms.RegexField(
        label=_("Ref prefix"), regex=r"^[A-Za-z0-9][A-Za-z0-9-]{0,19}$", initial="RD",
        help_text=_("The new tasks are numbered PREFIX-01, PREFIX-02 …"),
        error_messages={"invalid": _("Letters, digits and dashes, up to 20 characters.")},
    )  # fmt: skip
    lead_organization = OrganizationChoice(
        label=_("Lead organization"), queryset=Organization.objects.none(), required=False,
        empty_label=_("the first party taking part in the plan"),
    )  # fmt: skip
    drafts = forms.ModelMultipleChoiceField(
        label=_("Confirmed outcomes"), queryset=OutcomeDraft.objects.none(),
        widget=forms.CheckboxSelectMultiple,
    )  # fmt: skip

    def __init__(self, *args, plans, organizations, drafts, **kwargs):
        kwargs.setdefault("prefix", "tasks")
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = plans
        self.fields["plan"].label_from_instance = lambda plan: f"{plan.code} {plan.title}"
        self.fields["lead_organization"].queryset = organizations
        self.fields["drafts"].queryset = drafts
        self.fields["drafts"].label_from_instance = lambda draft: draft.title
