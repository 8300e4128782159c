"""`Authorization: Bearer <token>` for integrations; sessions (with CSRF) for people.

Both speak the caller's language: once a request is authenticated, its user's own language
(`User.language`) decides the words of the answer (problem documents, field errors, labels),
unless the request names one itself with Accept-Language (content negotiation wins for an
API). Before authentication, and for anonymous requests, Accept-Language decides
(LocaleMiddleware), else English.
"""

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from tracker.services import api_token_authenticate

INVALID_TOKEN = _("The bearer token is invalid, expired or revoked.")


LANGUAGES = frozenset(code for code, _name in settings.LANGUAGES)


def activate_user_language(request, user) -> None:
    """Answer in `user`'s language unless the request asked for one (Accept-Language)."""
    if request.META.get("HTTP_ACCEPT_LANGUAGE", "").strip():
        return
    language = getattr(user, "language", "")
    if language in LANGUAGES:
        translation.activate(language)
        request._request.LANGUAGE_CODE = language


class UserLanguageMixin:
    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            activate_user_language(request, result[0])
        return result


class _BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() != self.keyword.lower():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        token = api_token_authenticate(header[1])
        if token is None:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        return token.user, token

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'


class BearerTokenAuthentication(UserLanguageMixin, _BearerTokenAuthentication):
    """A token acts as its user, in its user's language."""


class SessionAuthentication(UserLanguageMixin, authentication.SessionAuthentication):
    """A signed-in browser session (CSRF checked), in its user's language."""


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "jpt_<prefix>_<secret>",
            "description": "An API token created in the admin or with POST /api/v1/auth/token/.",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    """drf-spectacular's cookieAuth, for our SessionAuthentication (its own extension matches
    only DRF's class itself)."""

    target_class = SessionAuthentication
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
