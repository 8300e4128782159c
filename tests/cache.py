"""The tests' Redis cache: every pytest-xdist worker keeps its keys under its own prefix on the
REDIS_URL database, and `cache.clear()` removes only those keys.

Django's RedisCache.clear() is FLUSHDB: under `pytest -n 2` a test resetting its throttles
would wipe the other worker's keys and the Celery messages queued on the same database (the
broker). Here clear() deletes the keys of this worker's prefix (SCAN + UNLINK) and nothing
else, which is what the tests that call it mean: "start from an empty cache"."""

from django.core.cache.backends.redis import RedisCache


class WorkerRedisCache(RedisCache):
    def clear(self) -> bool:
        client = self._cache.get_client(None, write=True)
        batch = []
        for key in client.scan_iter(match=f"{self.key_prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
        return True
