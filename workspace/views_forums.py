"""Forum and outcome pages: what was agreed where, and what became of it.

Forum list -> forum (its outcomes and scorecard) -> outcome (its implementing tasks) -> task:
"what happened to what we agreed in June?" is two clicks from a forum. Everything is read
through plans.selectors; the policy decides what each person sees (a hidden forum, outcome
or task is 404, and a figure never counts a task the viewer may not open)."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from plans import selectors as plan_selectors

CATEGORIES = plan_selectors.SCORECARD_CATEGORIES


def _empty_card(forum) -> dict:
    return {"forum": forum, **dict.fromkeys(CATEGORIES, 0), "total": 0}


def _totals(cards: list[dict]) -> dict:
    return {name: sum(card[name] for card in cards) for name in (*CATEGORIES, "total")}


@login_required
@require_GET
def forum_list(request):
    forums = list(plan_selectors.forum_list(user=request.user))
    cards = {row["forum"].pk: row for row in plan_selectors.outcome_scorecard(user=request.user)}
    rows = [{**(cards.get(forum.pk) or _empty_card(forum)), "forum": forum} for forum in forums]
    return render(
        request,
        "workspace/forum_list.html",
        {"rows": rows, "totals": _totals(rows), "categories": CATEGORIES},
    )


@login_required
@require_GET
def forum_detail(request, pk: int):
    user = request.user
    forum = plan_selectors.forum_get(user=user, pk=pk)
    if forum is None:
        raise Http404
    now = timezone.now()
    outcomes = list(plan_selectors.outcome_list(user=user, now=now).filter(forum_id=forum.pk))
    cards = plan_selectors.outcome_scorecard(user=user, forum=forum)
    card = cards[0] if cards else _empty_card(forum)
    return render(
        request,
        "workspace/forum_detail.html",
        {"forum": forum, "outcomes": outcomes, "card": card, "categories": CATEGORIES},
    )


@login_required
@require_GET
def outcome_detail(request, pk: int):
    user, now = request.user, timezone.now()
    outcome = plan_selectors.outcome_get(user=user, pk=pk, now=now)
    if outcome is None:
        raise Http404
    tasks = list(plan_selectors.outcome_task_list(user=user, outcome=outcome, now=now))
    return render(request, "workspace/outcome_detail.html", {"outcome": outcome, "tasks": tasks})
