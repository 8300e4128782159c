"""Show times in the signed-in user's own time zone (pages), and UTC in the API; the API's
answers carry the RateLimit headers of the counters their request bumped."""

import datetime
import math
import zoneinfo

from django.utils import timezone

from tracker.api.throttling import tightest


def add_rate_limit_headers(request, response) -> None:
    """RateLimit-Limit, -Remaining and -Reset (IETF draft-ietf-httpapi-ratelimit-headers;
    Reset in whole seconds) of the tightest counter the request bumped, on any answer, errors
    and 429 included. None without a counter: a 401 for a missing or bad token, a path no
    API view serves."""
    limits = getattr(request, "rate_limits", None)
    if not limits:
        return
    limit = tightest(limits)
    response.headers["RateLimit-Limit"] = str(limit.limit)
    response.headers["RateLimit-Remaining"] = str(limit.remaining)
    response.headers["RateLimit-Reset"] = str(math.ceil(limit.reset))


class UserTimezoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            # The API speaks UTC whoever calls it, by session or by token.
            timezone.activate(datetime.UTC)
            response = self.get_response(request)
            add_rate_limit_headers(request, response)
            return response
        user = getattr(request, "user", None)
        tz_name = getattr(user, "time_zone", "") if user and user.is_authenticated else ""
        if tz_name:
            try:
                timezone.activate(zoneinfo.ZoneInfo(tz_name))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        return self.get_response(request)
