"""The plans list, the plan dashboard and its print view (A4, for a ministerial meeting).

Thin views: the figures come from workspace.dashboard (scoped by the one policy), the chart
geometry from workspace.charts; a plan out of the viewer's sight is a 404.
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_GET

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
    return {**data, "charts": _charts(data, geometry), "timeline_statuses": TIMELINE_STATUSES}


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
