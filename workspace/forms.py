"""Forms of the task page. Each carries the task version it was loaded with; the service
compares it (`expected_version`) so a stale form writes nothing."""

from django import forms
from django.utils.translation import gettext_lazy as _

from tracker.models import User

from .templatetags.workspace import person


def _note(rows: int):
    return forms.CharField(
        label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": rows})
    )


class VersionedForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class MoveForm(VersionedForm):
    to_status = forms.CharField(widget=forms.HiddenInput, max_length=16)
    expected_from = forms.CharField(widget=forms.HiddenInput, max_length=16)
    note = _note(3)
    evidence_url = forms.URLField(
        label=_("Evidence link"), required=False, max_length=500, assume_scheme="https"
    )


class ReportForm(VersionedForm):
    note = _note(3)
    progress = forms.IntegerField(
        label=_("Progress (%)"), required=False, min_value=0, max_value=100
    )
    evidence_url = forms.URLField(
        label=_("Evidence link"), required=False, max_length=500, assume_scheme="https"
    )


class PersonChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return person(obj)


class AssignForm(VersionedForm):
    assignee = PersonChoiceField(
        label=_("Assignee"), queryset=User.objects.none(), required=False, empty_label=_("no one")
    )
    note = _note(2)

    def __init__(self, *args, choices=None, **kwargs):
        super().__init__(*args, **kwargs)
        if choices is not None:
            self.fields["assignee"].queryset = choices


class DeadlineForm(VersionedForm):
    due_date = forms.DateField(
        label=_("New due date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 2}))
