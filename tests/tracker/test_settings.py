"""Settings come from the environment and refuse to start without what they need."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tracker.settings import SECRET_KEY_MISSING

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "debug": settings.DEBUG,
    "db_engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "broker": settings.CELERY_BROKER_URL,
    "cache": settings.CACHES["default"]["BACKEND"],
    "email_backend": settings.EMAIL_BACKEND,
    "email_path": getattr(settings, "EMAIL_FILE_PATH", None),
    "acks_late": settings.CELERY_TASK_ACKS_LATE,
    "reject_on_worker_lost": settings.CELERY_TASK_REJECT_ON_WORKER_LOST,
    "accept": settings.CELERY_ACCEPT_CONTENT,
}))
"""


def run_settings(**env_vars):
    """Load tracker.settings in a fresh interpreter with only the given variables set."""
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "tracker.settings",
        "DJANGO_ENV_FILE": str(ROOT / "var" / "no-such-env-file"),
        **env_vars,
    }
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refuses_to_start_without_secret_key_when_not_debug():
    result = run_settings(DJANGO_DEBUG="0")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert SECRET_KEY_MISSING in result.stderr
    assert "DJANGO_SECRET_KEY" in SECRET_KEY_MISSING


def test_debug_starts_without_secret_key_with_embedded_defaults():
    result = run_settings(DJANGO_DEBUG="1")
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["debug"] is True
    assert loaded["db_engine"] == "django.db.backends.sqlite3"
    assert loaded["db_name"].endswith("var/tracker.sqlite3")
    assert loaded["broker"] == "filesystem://"
    assert loaded["cache"].endswith("LocMemCache")
    assert loaded["email_backend"].endswith("filebased.EmailBackend")
    assert loaded["email_path"].endswith("var/mail")


def test_environment_selects_postgres_redis_and_smtp():
    result = run_settings(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="x" * 50,
        DATABASE_URL="postgres://u:p@db.example:5432/tracker",
        REDIS_URL="redis://cache.example:6379/2",
        EMAIL_URL="smtp://mail.example:25",
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["debug"] is False
    # Django's backend, its health check without a round trip (tracker/db/postgresql)
    assert loaded["db_engine"] == "tracker.db.postgresql"
    assert loaded["broker"] == "redis://cache.example:6379/2"
    assert loaded["cache"].endswith("RedisCache")
    assert loaded["email_backend"].endswith("smtp.EmailBackend")
    assert loaded["acks_late"] is True
    assert loaded["reject_on_worker_lost"] is True
    assert loaded["accept"] == ["json"]
