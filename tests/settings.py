"""Test settings: the real settings with only what tests must change."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-not-for-production-use")

from tracker.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
CELERY_TASK_ALWAYS_EAGER = False
# The local webhook receivers listen on http://127.0.0.1; tests of the target rules switch
# these back (never like this in production: see tracker/settings.py).
WEBHOOK_REQUIRE_HTTPS = False
WEBHOOK_ALLOW_PRIVATE_TARGETS = True
# The test client and the live servers of the tests speak plain HTTP: no redirect to HTTPS
# (tracker.settings turns it on whenever DEBUG is off).
SECURE_SSL_REDIRECT = False

# pytest-xdist runs the suite in several processes (gw0, gw1, ...) on one REDIS_URL database.
# Each keeps its cache keys under a prefix of its own, and cache.clear() removes only those
# (tests/cache.py; Django's own clear() would FLUSHDB the other worker's keys and the Celery
# messages queued there). The test database is per worker already (test_<name>_gw0, ...).
TEST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
if REDIS_URL:  # noqa: F405
    CACHES["default"]["BACKEND"] = "tests.cache.WorkerRedisCache"  # noqa: F405
    CACHES["default"]["KEY_PREFIX"] = f"tests-{TEST_WORKER}"  # noqa: F405
