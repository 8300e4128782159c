"""Rate limits per token and per user, kept in the cache (Redis when REDIS_URL is set, so
every web process shares the count)."""

from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle

from tracker.models import ApiToken


class TokenRateThrottle(SimpleRateThrottle):
    scope = "token"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiToken):
            return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
        return None


class UserRateThrottle(SimpleRateThrottle):
    scope = "user"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
        return None


class LoginRateThrottle(AnonRateThrottle):
    """Password attempts at POST /auth/token/, per client address."""

    scope = "login"
