"""The inbox: the viewer's own reminders (notifications app), newest first, marked read one
at a time or all at once. Read through notifications.selectors, written through
notifications.services; someone else's notification is 404.

Marking read is a POST form: without JavaScript it redirects back to the inbox; with htmx
the inbox's list is swapped in place and the header's unread count updated out of band."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from notifications import selectors, services
from plans.exceptions import NotVisible

PAGE_ROWS = 50


def _page(request):
    paginator = Paginator(selectors.notification_list(user=request.user), PAGE_ROWS)
    return paginator.get_page(request.GET.get("page") or request.POST.get("page"))


def _render(request, status: int = 200):
    page = _page(request)
    context = {"page": page, "notifications": list(page.object_list)}
    template = "workspace/_inbox_main.html" if request.htmx else "workspace/inbox.html"
    return render(request, template, context, status=status)


def _back(request):
    page = request.POST.get("page", "")
    url = reverse("workspace:inbox")
    return redirect(f"{url}?page={page}" if page.isdigit() and page != "1" else url)


@login_required
@require_GET
def inbox(request):
    return _render(request)


@login_required
@require_POST
def notification_read(request, pk: int):
    notification = selectors.notification_get(user=request.user, pk=pk)
    if notification is None:
        raise Http404
    try:
        services.notification_mark_read(user=request.user, notification=notification)
    except NotVisible:
        raise Http404 from None
    messages.success(request, _("Marked as read."))
    return _render(request) if request.htmx else _back(request)


@login_required
@require_POST
def notifications_read_all(request):
    marked = services.notifications_mark_all_read(user=request.user)
    messages.success(
        request,
        ngettext(
            "%(count)d notification marked as read.",
            "%(count)d notifications marked as read.",
            marked,
        )
        % {"count": marked},
    )
    return _render(request) if request.htmx else _back(request)
