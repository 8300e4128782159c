"""The plans list, the plan dashboard and its print view (A4, for a ministerial meeting).

Thin views: the figures come from workspace.dashboard (scoped by the one policy), the chart
geometry from workspace.charts; a plan out of the viewer's sight is a 404. The plan's
coordinators start its next version here (plans.services.plan_new_version).
"""

import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_GET

from plans import permissions as policy
from plans import services
from plans.exceptions import DomainError
from plans.models import Plan, Task

from . import charts, dashboard

TIMELINE_STATUSES = [code for code in dashboard.STATUS_ORDER if code != "cancelled"]
# The scorecard's categories in running text ("2 fulfilled · 1 not started").
SCORE_PARTS = {
    "fulfilled": pgettext_lazy("dashboard", "fulfilled"),
    "in_implementation": pgettext_lazy("dashboard", "in implementation"),
    "not_started": pgettext_lazy("dashboard", "not started"),
    "no_task": pgettext_lazy("dashboard", "no task yet"),
}


def _charts(data: dict, geometry) -> dict:
    """The SVG geometry of every chart, drawn from the same figures as the tables."""
    workstreams = charts.labelled_bars(
        [{"row": row, "segments": [("c-progress", row.progress)]} for row in data["workstreams"]],
        scale=100,
        geometry=geometry,
    )
    status = charts.stacked_bar(
        [(f"c-{code}", count) for code, count in data["status_counts"]], geometry=geometry
    )
    organizations = charts.labelled_bars(
        [
            {"row": row, "segments": [("c-overdue", row.overdue), ("c-due-soon", row.due_soon)]}
            for row in data["organizations"]
        ],
        geometry=geometry,
    )
    scorecard = charts.labelled_bars(
        [
            {
                "row": row,
                "segments": [(f"c-{part}", row[part]) for part in SCORE_PARTS],
                "parts": [(row[part], words) for part, words in SCORE_PARTS.items() if row[part]],
            }
            for row in data["scorecard"]
        ],
        lines=2,
        geometry=geometry,
    )
    plan = data["plan"]
    timeline = charts.timeline(
        data["timeline"],
        period_start=plan.period_start,
        period_end=plan.period_end,
        today=data["today"],
        geometry=geometry,
    )
    return {
        "workstreams": workstreams,
        "status": status,
        "organizations": organizations,
        "scorecard": scorecard,
        "timeline": timeline,
    }


@login_required
@require_GET
def plan_list(request):
    plans = dashboard.plan_list(user=request.user)
    return render(request, "workspace/plan_list.html", {"plans": plans})


def _dashboard_context(request, pk: int, geometry) -> dict:
    now = timezone.now()
    plan = dashboard.plan_get(user=request.user, pk=pk, now=now)
    if plan is None:
        raise Http404
    data = dashboard.plan_dashboard(user=request.user, plan=plan, now=now)
    return {
        **data,
        "charts": _charts(data, geometry),
        "timeline_statuses": TIMELINE_STATUSES,
        # Coordinators of the plan start its next version (plan_new_version below).
        "may_new_version": policy.can(request.user, policy.CHANGE, plan),
    }


@login_required
@require_GET
def plan_detail(request, pk: int):
    context = _dashboard_context(request, pk, charts.SCREEN)
    return render(request, "workspace/plan_dashboard.html", context)


@login_required
@require_GET
def plan_print(request, pk: int):
    context = _dashboard_context(request, pk, charts.PRINT)
    return render(request, "workspace/plan_print.html", context)


# --- New version of a plan (Joint Plan 1.0 -> 2.0; docs/decisions/0012) ----------------------


class NewVersionForm(forms.Form):
    code = forms.SlugField(label=gettext_lazy("Code of the new plan"), max_length=32)
    title_en = forms.CharField(
        label=gettext_lazy("Title in English"), max_length=300, required=False
    )
    title_ko = forms.CharField(
        label=gettext_lazy("Title in Korean"), max_length=300, required=False
    )
    period_start = forms.DateField(
        label=gettext_lazy("Period start"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    period_end = forms.DateField(
        label=gettext_lazy("Period end"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    tasks = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Unfinished tasks to carry over"),
        queryset=Task.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, candidates=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tasks"].queryset = (
            candidates if candidates is not None else Task.objects.none()
        )


def _plan_for_new_version(request, pk: int) -> Plan:
    """The plan, if the viewer sees it (else 404) and may change it (else 403)."""
    plan = policy.for_user(request.user, policy.VIEW, Plan).filter(pk=pk).first()
    if plan is None:
        raise Http404
    if not policy.can(request.user, policy.CHANGE, plan):
        raise PermissionDenied
    return plan


def _initial(plan: Plan, candidates) -> dict:
    length = plan.period_end - plan.period_start
    start = plan.period_end + dt.timedelta(days=1)
    return {
        "code": f"{plan.code}-next"[:32],
        "title_en": plan.title_en or "",
        "title_ko": plan.title_ko or "",
        "period_start": start,
        "period_end": start + length,
        "tasks": [task.pk for task in candidates],  # every open task, pre-checked
    }


@login_required
def plan_new_version(request, pk: int):
    plan = _plan_for_new_version(request, pk)
    candidates = services.carry_over_candidates(plan).select_related(
        "workstream", "lead_organization"
    )
    if request.method == "POST":
        form = NewVersionForm(request.POST, candidates=candidates)
        if form.is_valid():
            data = form.cleaned_data
            try:
                new = services.plan_new_version(
                    actor=request.user, plan=plan, code=data["code"],
                    title_en=data["title_en"] or None, title_ko=data["title_ko"] or None,
                    period_start=data["period_start"], period_end=data["period_end"],
                    carry_over=data["tasks"],
                )  # fmt: skip
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    target = field if field in form.fields else None
                    if field == "title":
                        target = "title_en"
                    for error in errors:
                        form.add_error(target, error)
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(
                    request,
                    _("%(code)s created; %(count)s task(s) carried over.")
                    % {"code": new.code, "count": len(data["tasks"])},
                )
                return redirect("workspace:plan", pk=new.pk)
        status = 400
    else:
        form = NewVersionForm(initial=_initial(plan, candidates), candidates=candidates)
        status = 200
    checked = {str(value) for value in (form["tasks"].value() or [])}
    rows = [{"task": task, "checked": str(task.pk) in checked} for task in candidates]
    context = {"plan": plan, "form": form, "rows": rows}
    return render(request, "workspace/plan_new_version.html", context, status=status)
