"""Rate limits per token, per user and per client address, kept in the cache (Redis when
REDIS_URL is set, so every web process shares the count)."""

from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle

from tracker.client_ip import client_ip
from tracker.models import ApiToken


class ClientAddressMixin:
    """The client address by the project's one rule (tracker.client_ip: REMOTE_ADDR unless
    TRUSTED_PROXIES says otherwise), not DRF's, which trusts X-Forwarded-For when NUM_PROXIES
    is unset."""

    def get_ident(self, request):
        return client_ip(request) or ""


class TokenRateThrottle(ClientAddressMixin, SimpleRateThrottle):
    scope = "token"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiToken):
            return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
        return None


class UserRateThrottle(ClientAddressMixin, SimpleRateThrottle):
    scope = "user"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
        return None


class LoginRateThrottle(ClientAddressMixin, AnonRateThrottle):
    """Password attempts at POST /auth/token/, per client address."""

    scope = "login"
