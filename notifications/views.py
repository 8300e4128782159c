"""The calendar feed: served without a session, the secret in the URL is the credential."""

from django.http import Http404, HttpResponse
from django.views.decorators.http import require_safe

from . import calendar


@require_safe
def calendar_feed(request, key: str):
    """A person's task deadlines as iCalendar; unknown, wrong or revoked keys are 404."""
    feed = calendar.calendar_feed_find(key)
    if feed is None:
        raise Http404("No such calendar.")
    body = calendar.calendar_feed_render(feed)
    calendar.calendar_feed_mark_fetched(feed)
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="tasks.ics"'
    response["Cache-Control"] = "private, max-age=300"
    response["X-Robots-Tag"] = "noindex"
    return response
