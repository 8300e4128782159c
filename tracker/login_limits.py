"""Login attempts limited per account and per client address (django-axes).

Every `authenticate(request, ...)` passes `LoginLimitBackend` first (settings: "Authentication
and login limits"). Axes counts the failures in the database per username and per client
address (`tracker.client_ip`); at `LOGIN_FAILURE_LIMIT` it flags the request as locked out and
refuses further attempts, right password or not, until `LOGIN_COOLOFF_MINUTES` after the last
failure. A locked-out request is answered here: the API with a 429 problem document, pages
(admin, workspace) with a 429 page in the user's language, both with Retry-After. Superusers
unlock in the admin (*Axes → Access attempts*: delete the rows) or with `manage.py axes_reset`
(`axes_reset_username NAME`, `axes_reset_ip ADDRESS`).
"""

import logging
import math

from axes.backends import AxesStandaloneBackend
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.db.models import Max, Q
from django.dispatch import receiver
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

log = logging.getLogger("tracker.login")

LOGIN_LOCKED = _(
    "Too many failed sign-in attempts for this account or from this address: signing in is "
    "paused. Try again after the time in Retry-After, or ask an administrator to unlock it."
)
LOCKED_LOG = "Sign-in locked after %s failed attempts: username %r from address %s"
REFUSED_LOG = "Sign-in refused while locked: username %r from address %s"
USERNAME_STORED = 255  # axes' username columns


class LoginLimitBackend(AxesStandaloneBackend):
    """Axes' check, for every authentication that comes with a request. Without one (code
    calling `authenticate(username=..., password=...)` directly, the test client's `login()`)
    there is no client to count, so there is nothing to limit: the next backend decides."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def attempt_username(request, credentials=None) -> str | None:
    """AXES_USERNAME_CALLABLE: the username an attempt is counted against, cut to the 255
    characters axes stores (a longer one, which no account has, would otherwise be a database
    error on PostgreSQL instead of a refused sign-in)."""
    if credentials:
        username = credentials.get("username")
    else:
        data = getattr(request, "data", None) or getattr(request, "POST", None)
        username = data.get("username") if hasattr(data, "get") else None
    return None if username is None else str(username)[:USERNAME_STORED]


def retry_after_seconds(request) -> int:
    """Seconds until the lock has surely ended: the cool-off after the newest failure counted
    against this account or address (the lock may end sooner, as older failures expire)."""
    cool_off = settings.AXES_COOLOFF_TIME
    username = attempt_username(request, getattr(request, "axes_credentials", None))
    ip_address = getattr(request, "axes_ip_address", None)
    match = Q(ip_address=ip_address) if ip_address else Q(pk__in=[])
    if username:
        match |= Q(username=username)
    newest = AccessAttempt.objects.filter(match).aggregate(newest=Max("attempt_time"))["newest"]
    if newest is None:
        return int(cool_off.total_seconds())
    return max(1, math.ceil((newest + cool_off - timezone.now()).total_seconds()))


def is_locked_out(request) -> bool:
    return bool(getattr(request, "axes_locked_out", False))


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: what a locked-out request is answered with."""
    if credentials is not None and getattr(request, "axes_credentials", None) is None:
        request.axes_credentials = credentials
    seconds = retry_after_seconds(request)
    if request.path.startswith("/api/"):
        from tracker.api.errors import problem_json

        response = problem_json(request, 429, LOGIN_LOCKED)
    else:
        response = render(
            request,
            "tracker/login_locked.html",
            {"minutes": max(1, math.ceil(seconds / 60))},
            status=429,
        )
    response["Retry-After"] = str(seconds)
    return response


@receiver(user_locked_out)
def log_lockout(sender, request=None, username=None, ip_address=None, **kwargs):
    """A warning per lockout and per attempt refused while locked; never the password."""
    failures = getattr(request, "axes_failures_since_start", None)
    if failures is not None:
        log.warning(LOCKED_LOG, failures, username, ip_address)
    else:
        log.warning(REFUSED_LOG, username, ip_address)
