"""Rate limits per token, per user and per client address, kept in the cache (Redis when
REDIS_URL is set, so every web process shares the count).

The per-token and per-user limits are fixed-window counters (the window opens with the first
request and lasts the rate's period): on Redis, every counter a request touches is bumped in
ONE pipelined round trip (SET NX EX, INCR, TTL per key), where DRF's sliding-window throttles
made a GET and a SET per throttle. Other caches (the embedded setup's local memory) use
add + incr. A refused request counts too: hammering does not earn a reset.

Every counter a request bumped is left on the request (`rate_limits`: limit, count, seconds
left) for the IETF RateLimit headers (draft-ietf-httpapi-ratelimit-headers), which
tracker.middleware writes on the API's answers from the tightest of them: no extra round
trip.
"""

import math
import time
from typing import NamedTuple

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle

from tracker.client_ip import client_ip
from tracker.models import ApiToken


class ClientAddressMixin:
    """The client address by the project's one rule (tracker.client_ip: REMOTE_ADDR unless
    TRUSTED_PROXIES says otherwise), not DRF's, which trusts X-Forwarded-For when NUM_PROXIES
    is unset."""

    def get_ident(self, request):
        return client_ip(request) or ""


_CLIENTS: dict = {}


def _redis_client(cache):
    """A redis client on the cache's write pool, made once per pool: Django makes a new one
    per operation, copying some 170 response callbacks into a new dict each time."""
    pool = cache._cache._get_connection_pool(True)
    entry = _CLIENTS.get(id(pool))
    if entry is None or entry[0] is not pool:
        entry = _CLIENTS[id(pool)] = (pool, cache._cache._client(connection_pool=pool))
    return entry[1]


def _bump(keys: dict[str, int]) -> dict[str, tuple[int, float]]:
    """Add one to each counter `key` (created with a lifetime of `keys[key]` seconds):
    {key: (count, seconds left)}. One round trip on Redis."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        names = {key: cache.make_and_validate_key(key) for key in keys}
        client = _redis_client(cache)
        pipe = client.pipeline(transaction=False)
        for key, duration in keys.items():
            pipe.set(names[key], 0, ex=duration, nx=True)
            pipe.incr(names[key])
            pipe.ttl(names[key])
        replies = pipe.execute()
        result = {}
        for n, (key, duration) in enumerate(keys.items()):
            count, ttl = replies[3 * n + 1], replies[3 * n + 2]
            result[key] = (int(count), float(ttl if ttl and ttl > 0 else duration))
        return result
    result = {}
    now = time.time()
    for key, duration in keys.items():
        cache.add(f"{key}:opened", now, duration)
        cache.add(key, 0, duration)
        try:
            count = cache.incr(key)
        except ValueError:  # expired in between
            cache.set(key, 1, duration)
            count = 1
        opened = cache.get(f"{key}:opened", now)
        result[key] = (count, max(duration - (now - opened), 1.0))
    return result


class RateLimit(NamedTuple):
    """One counter as a request left it: its limit, the requests counted in its window
    (this one included) and the seconds until the window closes."""

    limit: int
    count: int
    reset: float

    @property
    def remaining(self) -> int:
        return max(self.limit - self.count, 0)


def record(request, limit: RateLimit) -> None:
    """Leave `limit` on the Django request, for the RateLimit headers (tracker.middleware)."""
    django_request = getattr(request, "_request", request)
    limits = getattr(django_request, "rate_limits", None)
    if limits is None:
        limits = django_request.rate_limits = []
    limits.append(limit)


def tightest(limits: list[RateLimit]) -> RateLimit:
    """The counter a client meets first: the fewest requests left, then the latest reset."""
    return min(limits, key=lambda limit: (limit.remaining, -limit.reset))


class CounterThrottle(ClientAddressMixin, SimpleRateThrottle):
    """A fixed-window counter; all of a view's counters are bumped together (see above)."""

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        counts = getattr(request, "_throttle_counts", None)
        if counts is None or self.key not in counts:
            specs = self._specs_of(request, view)
            counts = request._throttle_counts = _bump(
                {key: duration for key, (duration, _limit) in specs.items()}
            )
            for key, (_duration, limit) in specs.items():
                record(request, RateLimit(limit, *counts[key]))
        self.count, self.left = counts.get(self.key, (0, float(self.duration)))
        return self.count <= self.num_requests

    def _specs_of(self, request, view) -> dict[str, tuple[int, int]]:
        """{key: (window seconds, limit)} of every CounterThrottle of `view` that applies to
        `request`."""
        specs = {self.key: (self.duration, self.num_requests)}
        for throttle_class in getattr(view, "throttle_classes", ()):
            if throttle_class is type(self) or not issubclass(throttle_class, CounterThrottle):
                continue
            other = throttle_class()
            if other.rate is None:
                continue
            key = other.get_cache_key(request, view)
            if key is not None:
                specs[key] = (other.duration, other.num_requests)
        return specs

    def wait(self):
        return math.ceil(self.left)


class TokenRateThrottle(CounterThrottle):
    scope = "token"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiToken):
            return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
        return None


class UserRateThrottle(CounterThrottle):
    scope = "user"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
        return None


class LoginRateThrottle(ClientAddressMixin, AnonRateThrottle):
    """Password attempts at POST /auth/token/, per client address (DRF's sliding window:
    its reset is when the oldest attempt in the window leaves it)."""

    scope = "login"

    def allow_request(self, request, view):
        allowed = super().allow_request(request, view)
        if self.rate is not None and getattr(self, "key", None) is not None:
            history = getattr(self, "history", [])
            reset = self.duration - (self.now - history[-1]) if history else self.duration
            # A refused attempt is not added to the history: it counts as one past the limit.
            count = len(history) if allowed else self.num_requests + 1
            record(request, RateLimit(self.num_requests, count, max(reset, 0.0)))
        return allowed
