"""FilterSets build their form class once per class and language; each request still gets
its own form and fields, so nothing typed in one request shows in another."""

from django.http import QueryDict
from django.utils import translation

from plans.filtersets import TaskFilterSet
from plans.models import Task


def filterset(status):
    return TaskFilterSet(data=QueryDict(f"status={status}"), queryset=Task.objects.none())


def test_one_form_class_per_language_and_a_form_per_request():
    planned, done = filterset("planned"), filterset("done")
    assert type(planned.form) is type(done.form)
    assert planned.form is not done.form
    assert planned.form.fields["status"] is not done.form.fields["status"]
    assert planned.form.is_valid() and done.form.is_valid()
    assert planned.form.cleaned_data["status"] == ["planned"]
    assert done.form.cleaned_data["status"] == ["done"]
    with translation.override("ko"):
        assert type(filterset("planned").form) is not type(planned.form)


def test_bad_input_is_still_refused_by_name():
    bad = filterset("finished")
    assert not bad.form.is_valid()
    assert set(bad.form.errors) == {"status"}
