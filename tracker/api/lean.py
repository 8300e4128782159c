"""A lean route for an integration's most frequent reads: bearer-token GETs (and HEADs) of
`/api/v1/tasks/` and `/api/v1/users/me/`.

`LeanApiMiddleware` sits right after Django's SecurityMiddleware. For such a request it hands
the request to a second, shorter middleware chain ending in the same URL resolver and view;
every other request goes on down the full stack. The shorter chain is the full one minus the
middleware that does nothing for a bearer-token GET of these two paths (`SKIPPED`):

- WhiteNoise serves static files only (these paths are not);
- sessions, CSRF, Django's authentication, the workspace's user language and messages: the
  API authenticates the token itself (`BearerTokenAuthentication` runs first and decides any
  request that names a bearer token: 401 for a bad one, never the session), so the session is
  never read, nor CSRF checked (a safe method), nor a message stored; the API's language
  after authentication is decided by the authentication class, not by the workspace's
  middleware (which skips `/api/` anyway);
- simple_history's request (only writes record history; a GET writes none, and stamping the
  token's last use is a queryset update, which records none), the admin's policy memo (admin
  paths only), htmx (pages only), axes (sign-in failures only) and the idempotency keys
  (POST only).

What stays is everything a response of these paths depends on, in the same order as in the
full stack: SecurityMiddleware (before this middleware: SSL redirect, HSTS, nosniff,
Referrer-Policy, COOP), LocaleMiddleware (Accept-Language or the language cookie, then
Content-Language and `Vary: Accept-Language`), CommonMiddleware (Content-Length, disallowed
user agents), X-Frame-Options, the API's UTC and RateLimit headers, and any middleware added
later that is not named in `SKIPPED`. Inside the view nothing changes: the token's lookup (so
revocation counts at once), its scope, the throttles, filters, pagination, the error format.
Django's handler still logs 4xx/5xx answers and sends the request signals.

A request asking for HTML (DRF's browsable page, in DEBUG: it uses CSRF and sessions) takes
the full stack.

`tests/tracker/test_api_lean.py` requests every variant of both paths through this route and
through the full stack and compares status, headers and body. `API_LEAN_ROUTE=0` turns the
route off (the full stack for every request).
"""

from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.utils.module_loading import import_string

LEAN_PATHS = frozenset({"/api/v1/tasks/", "/api/v1/users/me/"})
LEAN_METHODS = frozenset({"GET", "HEAD"})

SKIPPED = frozenset(
    {
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "workspace.middleware.UserLanguageMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "simple_history.middleware.HistoryRequestMiddleware",
        "plans.policy_memo.PolicyMemoMiddleware",
        "django_htmx.middleware.HtmxMiddleware",
        "axes.middleware.AxesMiddleware",
        "tracker.idempotency.IdempotencyMiddleware",
    }
)

THIS = f"{__name__}.LeanApiMiddleware"


def is_lean(request) -> bool:
    """A bearer-token GET or HEAD of one of the lean paths, not asking for HTML."""
    if request.method not in LEAN_METHODS or request.path_info not in LEAN_PATHS:
        return False
    # DRF's browsable renderer (DEBUG) may be asked for, by Accept or ?format=: its page
    # uses CSRF and sessions, so it takes the full stack.
    if "html" in request.META.get("HTTP_ACCEPT", "") or "format=" in request.META.get(
        "QUERY_STRING", ""
    ):
        return False
    # As BearerTokenAuthentication reads it: the first word, case-insensitively.
    words = request.META.get("HTTP_AUTHORIZATION", "").split(maxsplit=1)
    return bool(words) and words[0].lower() == "bearer"


def lean_middleware(middleware: list[str]) -> list[str]:
    """The middleware after this one in `middleware`, less what is skipped."""
    after = middleware[middleware.index(THIS) + 1 :] if THIS in middleware else middleware
    return [path for path in after if path not in SKIPPED]


class _LeanHandler(BaseHandler):
    """Django's handler over a given middleware list (synchronous, as the project runs)."""

    def __init__(self, middleware: list[str]):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(middleware):
            instance = import_string(path)(handler)
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler


class LeanApiMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.lean = _LeanHandler(lean_middleware(list(settings.MIDDLEWARE)))

    def __call__(self, request):
        if settings.API_LEAN_ROUTE and is_lean(request):
            return self.lean._middleware_chain(request)
        return self.get_response(request)
