"""Settings for the joint action plan tracker, read from the environment only.

Every variable is listed in `.env.example`. A `.env` file beside manage.py (or the file
DJANGO_ENV_FILE names) is read when present; real environment variables win over it.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
# Local state of the embedded defaults (SQLite, filesystem broker, mail files) lives here.
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
# DJANGO_ENV_FILE names another file (or a missing one, to read none).
environ.Env.read_env(env.str("DJANGO_ENV_FILE", default=str(BASE_DIR / ".env")), overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)

SECRET_KEY_MISSING = (
    "DJANGO_SECRET_KEY is not set. Set DJANGO_SECRET_KEY to a long random value "
    "(or DJANGO_DEBUG=1 for local development only)."
)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(SECRET_KEY_MISSING)
    # Debug only: a fixed, obviously unsafe key so sessions survive restarts in development.
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

# Key of the HMAC under which API token secrets are stored; rotating it invalidates all tokens.
API_TOKEN_PEPPER = env.str("API_TOKEN_PEPPER", default="") or SECRET_KEY

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "simple_history",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "tracker",
    "plans",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "tracker.middleware.UserTimezoneMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

# The audit history is a record, never a way back: no "revert" in the admin.
SIMPLE_HISTORY_REVERT_DISABLED = True

ROOT_URLCONF = "tracker.urls"
WSGI_APPLICATION = "tracker.wsgi.application"
ASGI_APPLICATION = "tracker.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'tracker.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "tracker.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Redis: Celery broker and cache -----------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_DATA_DIR = VAR_DIR / "celery"

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    # Seconds before Redis hands an unacknowledged message to another worker. Longer than any
    # task's hard time limit and any countdown (retries wait at most 30 minutes), so a message
    # is redelivered only when its worker is gone; and longer than REMINDER_LEASE_SECONDS, so
    # a dead worker's reminder is redelivered after its lease ran out.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
    }
    if CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] < 1:
        raise ImproperlyConfigured("CELERY_VISIBILITY_TIMEOUT must be at least 1 (seconds).")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # No server needed: kombu's filesystem transport keeps messages as files under var/.
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_DATA_DIR / "queue"),
        "data_folder_out": str(CELERY_DATA_DIR / "queue"),
        "control_folder": str(CELERY_DATA_DIR / "control"),
        "store_processed": False,
    }

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_TIME_LIMIT = 300
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
HEARTBEAT_INTERVAL_SECONDS = env.int("HEARTBEAT_INTERVAL_SECONDS", default=60)

# --- Email ----------------------------------------------------------------------------------
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")
# Seconds an SMTP connection may block: a hung server becomes an ordinary, retried error
# (well inside the delivery tasks' time limits and the reminder lease).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="tracker@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ko", "Korean")]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static files ----------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise serves from here after collectstatic
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security (production) -----------------------------------------------------------------
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # httpx logs every request URL at INFO (webhook endpoints); keep those out of the logs.
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tracker.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "tracker.api.permissions.TokenScope",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "tracker.api.pagination.Cursor",
    # JSON only, with a bound on nesting (tracker/api/parsers.py); no endpoint takes forms.
    "DEFAULT_PARSER_CLASSES": ["tracker.api.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["tracker.api.renderers.OrjsonRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_THROTTLE_CLASSES": [
        "tracker.api.throttling.TokenRateThrottle",
        "tracker.api.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "token": env.str("API_THROTTLE_TOKEN", default="1200/minute"),
        "user": env.str("API_THROTTLE_USER", default="2400/minute"),
        "login": env.str("API_THROTTLE_LOGIN", default="20/minute"),
    },
    "EXCEPTION_HANDLER": "tracker.api.errors.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Joint Action Plan Tracker API",
    "DESCRIPTION": (
        "Plans, tasks and the forum outcomes behind them, for the systems of ministries and "
        "firms. Authenticate with `Authorization: Bearer <token>` (create one in the admin or "
        "with POST /api/v1/auth/token/) or a browser session. Every error is an RFC 9457 "
        "problem document (application/problem+json) with a list of field errors."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "TaskStatusEnum": "plans.models.TaskStatus",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tracker.api.schema.add_problem_responses",
    ],
}

# --- Demo -----------------------------------------------------------------------------------
DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="demo")

# --- Webhooks ---------------------------------------------------------------------------------
# Fernet key(s) that encrypt webhook signing secrets at rest; comma-separated to rotate (the
# first encrypts, all decrypt). Empty: derived from DJANGO_SECRET_KEY (see notifications/
# encryption.py), so changing that key without listing the old one in SECRET_KEY_FALLBACKS
# makes the stored secrets unreadable.
WEBHOOK_ENCRYPTION_KEY = env.str("WEBHOOK_ENCRYPTION_KEY", default="")
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=6)
WEBHOOK_DISABLE_AFTER = env.int("WEBHOOK_DISABLE_AFTER", default=5)
WEBHOOK_QUEUE = env.str("WEBHOOK_QUEUE", default="celery")
if WEBHOOK_MAX_ATTEMPTS < 1 or WEBHOOK_DISABLE_AFTER < 1 or WEBHOOK_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured(
        "WEBHOOK_MAX_ATTEMPTS and WEBHOOK_DISABLE_AFTER must be at least 1 and "
        "WEBHOOK_TIMEOUT_SECONDS above 0."
    )
# Beat re-enqueues deliveries whose message was lost or whose worker died.
CELERY_BEAT_SCHEDULE = {
    **vars().get("CELERY_BEAT_SCHEDULE", {}),
    "notifications.requeue_webhooks": {
        "task": "notifications.requeue_webhooks",
        "schedule": 60.0,
        "options": {"queue": WEBHOOK_QUEUE},
    },
}

# --- Reminders ------------------------------------------------------------------------------
# Defaults of each plan's ReminderPolicy (editable per plan in the admin by its coordinators).
REMINDER_BEFORE_DAYS = env.list("REMINDER_BEFORE_DAYS", cast=int, default=[14, 7, 1, 0])
REMINDER_OVERDUE_EVERY_DAYS = env.int("REMINDER_OVERDUE_EVERY_DAYS", default=7)
REMINDER_ESCALATE_MANAGER_AFTER_DAYS = env.int("REMINDER_ESCALATE_MANAGER_AFTER_DAYS", default=3)
REMINDER_ESCALATE_COORDINATORS_AFTER_DAYS = env.int(
    "REMINDER_ESCALATE_COORDINATORS_AFTER_DAYS", default=14
)
REMINDER_VERIFICATION_AFTER_DAYS = env.int("REMINDER_VERIFICATION_AFTER_DAYS", default=7)
# How often beat runs the sweep; the sweep decides from the database what is due.
REMINDER_SWEEP_SECONDS = env.int("REMINDER_SWEEP_SECONDS", default=300)
# Email attempts per notification (exponential backoff from 60 s, capped under the broker's
# visibility timeout) before the failure is recorded.
REMINDER_MAX_ATTEMPTS = env.int("REMINDER_MAX_ATTEMPTS", default=5)
# While a worker sends a reminder its row is leased to it: no other worker claims it until
# the lease runs out. Longer than the delivery task's hard time limit (90 s), so a live
# attempt keeps it; when a worker dies mid-send, the reminder is due again at the lease's end.
REMINDER_LEASE_SECONDS = env.int("REMINDER_LEASE_SECONDS", default=300)
# Celery queue of the email deliveries and of the sweep (workers must consume it).
NOTIFICATION_QUEUE = env.str("NOTIFICATION_QUEUE", default="celery")
if (
    REMINDER_MAX_ATTEMPTS < 1
    or REMINDER_SWEEP_SECONDS < 1
    or REMINDER_LEASE_SECONDS < 1
    or min(REMINDER_BEFORE_DAYS, default=0) < 0
    or min(
        REMINDER_OVERDUE_EVERY_DAYS,
        REMINDER_ESCALATE_MANAGER_AFTER_DAYS,
        REMINDER_ESCALATE_COORDINATORS_AFTER_DAYS,
        REMINDER_VERIFICATION_AFTER_DAYS,
    )
    < 0
):
    raise ImproperlyConfigured(
        "REMINDER_MAX_ATTEMPTS, REMINDER_SWEEP_SECONDS and REMINDER_LEASE_SECONDS must be "
        "at least 1 and the REMINDER_* days 0 or more."
    )
# A message redelivered while its reminder is still leased would be dropped (the sweep would
# catch it up, minutes later): the broker must wait longer than a lease.
if CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", REMINDER_LEASE_SECONDS + 1) <= (
    REMINDER_LEASE_SECONDS
):
    raise ImproperlyConfigured(
        "CELERY_VISIBILITY_TIMEOUT must be longer than REMINDER_LEASE_SECONDS."
    )
CELERY_BEAT_SCHEDULE = {
    **vars().get("CELERY_BEAT_SCHEDULE", {}),
    "notifications.sweep_reminders": {
        "task": "notifications.sweep_reminders",
        "schedule": float(REMINDER_SWEEP_SECONDS),
        "options": {"queue": NOTIFICATION_QUEUE},
    },
}

# --- Digest ---------------------------------------------------------------------------------
# Beat runs the digest sweep as often as the reminder sweep: each opted-in user's digest falls
# due at 08:00 in their own zone, and the sweep creates it once (unique per user and day).
CELERY_BEAT_SCHEDULE = {
    **vars().get("CELERY_BEAT_SCHEDULE", {}),
    "notifications.sweep_digests": {
        "task": "notifications.sweep_digests",
        "schedule": float(REMINDER_SWEEP_SECONDS),
        "options": {"queue": NOTIFICATION_QUEUE},
    },
}
# Beat also sends these entries once when it starts, so a fresh `make run` (or a restart after
# a pause) sweeps at once instead of a full interval later; the sweeps are idempotent.
BEAT_RUN_AT_START = ["notifications.sweep_reminders", "notifications.sweep_digests"]
