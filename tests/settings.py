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
