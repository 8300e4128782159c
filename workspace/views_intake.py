"""Readout intake in the workspace: a coordinator pastes a forum's readout, reviews the draft
outcomes found in it (edit, confirm, drop: htmx swaps one draft at a time) and turns
confirmed ones into tasks of a plan. The services (plans/intake/services.py) decide and
write; the one policy says who may (others: 403 on a forum they see, 404 on drafts)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods, require_POST

from plans import permissions as policy
from plans.exceptions import DomainError, NotAllowed, NotVisible
from plans.intake import services as intake
from plans.intake.models import OutcomeDraft
from plans.models import Plan
from tracker.models import Organization

from .forms_intake import DraftForm, IntakeForm, TasksForm

REVIEWED = gettext_lazy("This draft has already been reviewed.")
NO_COMMITMENT = gettext_lazy(
    "No commitment was found in this text: nothing was saved. Check that it is the readout "
    "itself (sentences such as “agreed to”, “committed to”, “will”, “signed an MOU”)."
)
SERVICE_MESSAGES = {
    intake.NO_COMMITMENT: NO_COMMITMENT,
    intake.NO_LEAD: gettext_lazy(
        "None of the draft's parties takes part in this plan: choose the lead organization."
    ),
}


def _forum(request, pk):
    try:
        forum = intake.forum_for_intake(user=request.user, pk=pk)
    except NotVisible:
        raise Http404 from None
    if not policy.can(request.user, policy.ADD, OutcomeDraft):
        raise PermissionDenied
    return forum


def _organizations():
    return list(Organization.objects.order_by("name"))


def _tasks_form(request, forum, data=None):
    confirmed = intake.draft_list(
        user=request.user, forum=forum, statuses=[OutcomeDraft.Status.CONFIRMED]
    )
    return TasksForm(
        data,
        plans=policy.for_user(request.user, policy.CHANGE, Plan).order_by("code"),
        organizations=Organization.objects.order_by("name"),
        drafts=confirmed,
    )


def _message(exc: ValidationError) -> list[tuple[str, str]]:
    """(field, message) pairs of a service's refusal, in the reader's language."""
    pairs = []
    for field, errors in exc.error_dict.items() if hasattr(exc, "error_dict") else [
        (None, exc.error_list)
    ]:  # fmt: skip
        for error in errors:
            text = error.message % error.params if error.params else error.message
            pairs.append((field, str(SERVICE_MESSAGES.get(str(error.message), text))))
    return pairs


def _add_errors(form, exc: ValidationError) -> None:
    for field, text in _message(exc):
        form.add_error(field if field in form.fields else None, text)


def _page(request, forum, *, form=None, tasks_form=None, status=200):
    drafts = list(intake.draft_list(user=request.user, forum=forum))
    organizations = _organizations()
    groups = {value: [] for value in OutcomeDraft.Status.values}
    for draft in drafts:
        form_for = (
            DraftForm(draft=draft, organizations=organizations)
            if draft.status == OutcomeDraft.Status.DRAFT
            else None
        )
        groups[draft.status].append({"draft": draft, "form": form_for})
    context = {
        "forum": forum,
        "form": form or IntakeForm(initial={"published_on": forum.held_on}),
        "to_review": groups[OutcomeDraft.Status.DRAFT],
        "confirmed": groups[OutcomeDraft.Status.CONFIRMED],
        "dropped": groups[OutcomeDraft.Status.DROPPED],
        "tasks_form": tasks_form or _tasks_form(request, forum),
    }
    return render(request, "workspace/intake.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def forum_intake(request, pk: int):
    forum = _forum(request, pk)
    if request.method == "GET":
        return _page(request, forum)
    form = IntakeForm(request.POST)
    if form.is_valid():
        try:
            readout = intake.readout_intake(actor=request.user, forum=forum, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            count = readout.drafts.count()
            messages.success(
                request,
                ngettext(
                    "%(count)d commitment found: review it below.",
                    "%(count)d commitments found: review them below.",
                    count,
                )
                % {"count": count},
            )
            return redirect("workspace:forum-intake", pk=forum.pk)
    return _page(request, forum, form=form, status=400)


def _draft(request, pk) -> OutcomeDraft:
    draft = (
        policy.for_user(request.user, policy.VIEW, OutcomeDraft)
        .select_related("readout", "forum", "outcome")
        .filter(pk=pk)
        .first()
    )
    if draft is None:
        raise Http404
    return draft


def _draft_partial(request, draft, *, form=None, alert=None, notice=None, status=200):
    draft = _draft(request, draft.pk)
    if form is None and draft.status == OutcomeDraft.Status.DRAFT:
        form = DraftForm(draft=draft, organizations=_organizations())
    context = {
        "item": {"draft": draft, "form": form},
        "alert": alert,
        "notice": notice,
        "forum": draft.forum,
        # Confirming changes what tasks can be made from: that section follows (out of band).
        "tasks_form": _tasks_form(request, draft.forum) if notice == "confirmed" else None,
    }
    return render(request, "workspace/_intake_draft_swap.html", context, status=status)


def _review(request, pk, write):
    draft = _draft(request, pk)
    try:
        return write(draft)
    except NotAllowed:
        raise PermissionDenied from None
    except NotVisible:
        raise Http404 from None
    except DomainError:
        return _draft_partial(request, draft, alert=REVIEWED, status=409)


@login_required
@require_POST
def draft_edit(request, pk: int):
    def write(draft):
        form = DraftForm(request.POST, draft=draft, organizations=_organizations())
        if not form.is_valid():
            return _draft_partial(request, draft, form=form, status=400)
        data = form.cleaned_data
        try:
            intake.draft_update(
                actor=request.user,
                draft=draft,
                title=data["title"],
                kind=data["kind"],
                parties=list(data["parties"]),
                amount=data["amount"],
                currency=data["currency"] or "",
                deadline=data["deadline"],
            )
        except ValidationError as exc:
            _add_errors(form, exc)
            return _draft_partial(request, draft, form=form, status=400)
        return _draft_partial(request, draft, notice="saved")

    return _review(request, pk, write)


@login_required
@require_POST
def draft_confirm(request, pk: int):
    def write(draft):
        try:
            intake.draft_confirm(actor=request.user, draft=draft)
        except ValidationError as exc:
            text = "; ".join(message for _, message in _message(exc))
            return _draft_partial(request, draft, alert=text, status=400)
        return _draft_partial(request, draft, notice="confirmed")

    return _review(request, pk, write)


@login_required
@require_POST
def draft_drop(request, pk: int):
    def write(draft):
        intake.draft_drop(actor=request.user, draft=draft)
        return _draft_partial(request, draft, notice="dropped")

    return _review(request, pk, write)


@login_required
@require_POST
def intake_tasks(request, pk: int):
    forum = _forum(request, pk)
    form = _tasks_form(request, forum, request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            tasks = intake.drafts_create_tasks(
                actor=request.user,
                forum=forum,
                plan=data["plan"],
                drafts=list(data["drafts"]),
                ref_prefix=data["ref_prefix"],
                lead_organization=data["lead_organization"],
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        except (NotAllowed, NotVisible):
            form.add_error("plan", _("You may not add tasks to this plan."))
        else:
            messages.success(
                request,
                ngettext(
                    "%(count)d task created in %(plan)s: %(refs)s.",
                    "%(count)d tasks created in %(plan)s: %(refs)s.",
                    len(tasks),
                )
                % {
                    "count": len(tasks),
                    "plan": data["plan"].code,
                    "refs": ", ".join(task.ref for task in tasks),
                },  # fmt: skip
            )
            return redirect("workspace:forum-intake", pk=forum.pk)
    return _page(request, forum, tasks_form=form, status=400)
