"""Settings for the joint action plan tracker, read from the environment only.

Every variable is listed in `.env.example`. A `.env` file beside manage.py (or the file
DJANGO_ENV_FILE names) is read when present; real environment variables win over it.
"""

import ipaddress
import socket
from datetime import timedelta
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

# Port `make run` serves on (`make run PORT=8001` sets it); links default to that address.
WEB_PORT = env.int("WEB_PORT", default=8000)
if not 1 <= WEB_PORT <= 65535:
    raise ImproperlyConfigured("WEB_PORT must be a port number between 1 and 65535.")
# Absolute address of the site in emails and calendar feeds: SITE_URL when set, else the
# development server's own address.
SITE_URL = env.str("SITE_URL", default=f"http://127.0.0.1:{WEB_PORT}").rstrip("/")

INSTALLED_APPS = [
    # Before the admin: registers the English and Korean versions of content fields
    # (tracker/translation.py, plans/translation.py) when the apps are ready.
    "modeltranslation",
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
    "django_htmx",
    "workspace",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Bearer-token GETs of the task list and users/me skip what does nothing for them
    # (sessions, CSRF, messages, history, htmx...): tracker/api/lean.py.
    "tracker.api.lean.LeanApiMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: the signed-in user's own language wins over Accept-Language.
    "workspace.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "tracker.middleware.UserTimezoneMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # The admin asks the policy the same questions many times a page: answered once a request.
    "plans.policy_memo.PolicyMemoMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# The audit history is a record, never a way back: no "revert" in the admin.
SIMPLE_HISTORY_REVERT_DISABLED = True
# The reason of a change (a deadline's reason, a transition's note) is kept whole, however long.
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True

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
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # The same backend, its health check without a round trip (tracker/db/postgresql).
        DATABASES["default"]["ENGINE"] = "tracker.db.postgresql"
    if DATABASES["default"]["ENGINE"] == "tracker.db.postgresql" and not env.bool(
        "DATABASE_JIT", default=False
    ):
        # PostgreSQL's JIT compiles the policy's scope subqueries anew for each query once a
        # plan holds thousands of tasks: 7.0 s of a 7.1 s task list query at 10,000 tasks,
        # 138 ms without it. Off for our sessions unless DATABASE_JIT=1.
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["options"] = f"{options.get('options', '')} -c jit=off".strip()
# A network path to PostgreSQL cut without a reset (packets dropped: a partition, a dead
# host, a firewall) must fail a query within seconds, not after the kernel's 15-minute
# retransmission limit or its 2-hour keepalive, on both ends:
# - client (libpq): connect within DATABASE_CONNECT_TIMEOUT; an idle connection is probed
#   after DATABASE_KEEPALIVES_IDLE s, every DATABASE_KEEPALIVES_INTERVAL s, and dropped
#   after DATABASE_KEEPALIVES_COUNT unanswered probes; a query (or any data) left
#   unacknowledged for DATABASE_TCP_USER_TIMEOUT s drops the connection (keepalives do not
#   run while data waits for an acknowledgement). A dead connection thus raises
#   OperationalError within about 20-25 s: the task is retried (notifications/tasks.py), the
#   request fails and Django closes the connection, the next request connects afresh.
# - server (the same values as session settings): the server drops the session of a client
#   that vanished, so its row locks (a claim's FOR UPDATE) do not outlive it; and a session
#   idle inside a transaction for DATABASE_IDLE_IN_TRANSACTION_TIMEOUT s is ended (rolled
#   back) whatever the network says.
# - DATABASE_STATEMENT_TIMEOUT: any one statement longer than this is cancelled (0: never).
# PostgreSQL only; each is overridable, 0 switches a timeout off. See docs/deploy.md.
DATABASE_CONNECT_TIMEOUT = env.int("DATABASE_CONNECT_TIMEOUT", default=5)
DATABASE_KEEPALIVES_IDLE = env.int("DATABASE_KEEPALIVES_IDLE", default=10)
DATABASE_KEEPALIVES_INTERVAL = env.int("DATABASE_KEEPALIVES_INTERVAL", default=5)
DATABASE_KEEPALIVES_COUNT = env.int("DATABASE_KEEPALIVES_COUNT", default=3)
DATABASE_TCP_USER_TIMEOUT = env.int("DATABASE_TCP_USER_TIMEOUT", default=20)
DATABASE_STATEMENT_TIMEOUT = env.int("DATABASE_STATEMENT_TIMEOUT", default=60)
DATABASE_IDLE_IN_TRANSACTION_TIMEOUT = env.int("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT", default=60)
if (
    min(DATABASE_CONNECT_TIMEOUT, DATABASE_TCP_USER_TIMEOUT) < 0
    or min(DATABASE_STATEMENT_TIMEOUT, DATABASE_IDLE_IN_TRANSACTION_TIMEOUT) < 0
    or min(DATABASE_KEEPALIVES_IDLE, DATABASE_KEEPALIVES_INTERVAL, DATABASE_KEEPALIVES_COUNT) < 1
):
    raise ImproperlyConfigured(
        "DATABASE_CONNECT_TIMEOUT, DATABASE_TCP_USER_TIMEOUT, DATABASE_STATEMENT_TIMEOUT and "
        "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT must be 0 (off) or more, the "
        "DATABASE_KEEPALIVES_* at least 1."
    )
if DATABASES["default"]["ENGINE"] == "tracker.db.postgresql":
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options.setdefault("connect_timeout", DATABASE_CONNECT_TIMEOUT)
    options.setdefault("keepalives", 1)
    options.setdefault("keepalives_idle", DATABASE_KEEPALIVES_IDLE)
    options.setdefault("keepalives_interval", DATABASE_KEEPALIVES_INTERVAL)
    options.setdefault("keepalives_count", DATABASE_KEEPALIVES_COUNT)
    options.setdefault("tcp_user_timeout", DATABASE_TCP_USER_TIMEOUT * 1000)  # milliseconds
    session = {
        "statement_timeout": f"{DATABASE_STATEMENT_TIMEOUT}s",
        "idle_in_transaction_session_timeout": f"{DATABASE_IDLE_IN_TRANSACTION_TIMEOUT}s",
        "tcp_keepalives_idle": DATABASE_KEEPALIVES_IDLE,
        "tcp_keepalives_interval": DATABASE_KEEPALIVES_INTERVAL,
        "tcp_keepalives_count": DATABASE_KEEPALIVES_COUNT,
        "tcp_user_timeout": DATABASE_TCP_USER_TIMEOUT * 1000,
    }
    options["options"] = " ".join(
        [options.get("options", ""), *(f"-c {name}={value}" for name, value in session.items())]
    ).strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "tracker.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Authentication and login limits -------------------------------------------------------
# Every authenticate() that carries a request (API token login, admin login, the workspace's
# sign-in) passes django-axes first: LOGIN_FAILURE_LIMIT failed attempts for one account, or
# from one client address, within LOGIN_COOLOFF_MINUTES of each other lock sign-in for that
# account, or from that address, until LOGIN_COOLOFF_MINUTES after the last failure. The
# attempts are kept in the database (shared by every web process, with or without Redis, and
# an audit trail for superusers in the admin). See tracker/login_limits.py and the README.
INSTALLED_APPS = [*INSTALLED_APPS, "axes"]
AUTHENTICATION_BACKENDS = [
    "tracker.login_limits.LoginLimitBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Last, as axes asks: it turns a lockout flagged during the request into the lockout answer.
MIDDLEWARE = [*MIDDLEWARE, "axes.middleware.AxesMiddleware"]
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
LOGIN_COOLOFF_MINUTES = env.int("LOGIN_COOLOFF_MINUTES", default=15)
if LOGIN_FAILURE_LIMIT < 1 or LOGIN_COOLOFF_MINUTES < 1:
    raise ImproperlyConfigured("LOGIN_FAILURE_LIMIT and LOGIN_COOLOFF_MINUTES must be at least 1.")
# Addresses or networks (CIDR) of the reverse proxies in front of the app. Only a request
# arriving from one of them has its X-Forwarded-For read (from the right, skipping these
# proxies); empty: the client address is REMOTE_ADDR and X-Forwarded-For is ignored
# (tracker/client_ip.py, used by the login limits and the API throttles alike).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy.strip(), strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"TRUSTED_PROXIES: {_proxy!r} is not an IP address or network (e.g. 10.0.0.0/8)."
        ) from None
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_COOLOFF_MINUTES)
# Two separate counts, either of which locks: per account (from any address) and per address
# (whatever the account).
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# Not on success: axes would then clear every count of the address, so an attacker signing in
# to an account of their own between guesses would never be locked. Failures expire anyway.
AXES_RESET_ON_SUCCESS = False
# Attempts refused during a lockout do not prolong it: it ends LOGIN_COOLOFF_MINUTES after the
# last real failure, as the answer's Retry-After says.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "tracker.client_ip.client_ip"
AXES_USERNAME_CALLABLE = "tracker.login_limits.attempt_username"
AXES_LOCKOUT_CALLABLE = "tracker.login_limits.lockout_response"
AXES_ENABLE_ACCESS_FAILURE_LOG = True  # every failure, kept (1,000 per username at most)
AXES_DISABLE_ACCESS_LOG = True  # no row per successful sign-in
AXES_VERBOSE = False  # no start-up banner; usernames and addresses are logged by tracker.login

# --- Redis: Celery broker and cache -----------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_DATA_DIR = VAR_DIR / "celery"

if REDIS_URL:
    # A path to Redis cut without a reset (packets dropped) is noticed within seconds by the
    # web processes (cache) and the workers (broker), which then reconnect when it returns:
    # every command waits at most REDIS_SOCKET_TIMEOUT s for its answer, a connection at most
    # REDIS_CONNECT_TIMEOUT s; idle sockets are probed by TCP keepalive (after
    # REDIS_KEEPALIVE_IDLE s, every REDIS_KEEPALIVE_INTERVAL s, REDIS_KEEPALIVE_COUNT probes)
    # and unacknowledged data drops the connection after REDIS_TCP_USER_TIMEOUT s; a pooled
    # connection idle longer than REDIS_HEALTH_CHECK_INTERVAL s is PINGed before use, and
    # kombu drops the worker's BRPOP connection once its answer is REDIS_HEALTH_CHECK_INTERVAL
    # s overdue (BRPOP waits 1 s on a live server) and reconnects. See docs/deploy.md.
    REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=10.0)
    REDIS_CONNECT_TIMEOUT = env.float("REDIS_CONNECT_TIMEOUT", default=5.0)
    REDIS_HEALTH_CHECK_INTERVAL = env.int("REDIS_HEALTH_CHECK_INTERVAL", default=10)
    REDIS_KEEPALIVE_IDLE = env.int("REDIS_KEEPALIVE_IDLE", default=10)
    REDIS_KEEPALIVE_INTERVAL = env.int("REDIS_KEEPALIVE_INTERVAL", default=5)
    REDIS_KEEPALIVE_COUNT = env.int("REDIS_KEEPALIVE_COUNT", default=3)
    REDIS_TCP_USER_TIMEOUT = env.int("REDIS_TCP_USER_TIMEOUT", default=20)
    if (
        min(REDIS_SOCKET_TIMEOUT, REDIS_CONNECT_TIMEOUT) <= 0
        or min(REDIS_KEEPALIVE_IDLE, REDIS_KEEPALIVE_INTERVAL, REDIS_KEEPALIVE_COUNT) < 1
        or min(REDIS_HEALTH_CHECK_INTERVAL, REDIS_TCP_USER_TIMEOUT) < 0
    ):
        raise ImproperlyConfigured(
            "REDIS_SOCKET_TIMEOUT and REDIS_CONNECT_TIMEOUT must be above 0, the "
            "REDIS_KEEPALIVE_* at least 1, REDIS_HEALTH_CHECK_INTERVAL and "
            "REDIS_TCP_USER_TIMEOUT 0 (off) or more."
        )
    REDIS_SOCKET_OPTIONS = {
        "socket_timeout": REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
        "socket_keepalive": True,
        "socket_keepalive_options": {
            socket.TCP_KEEPIDLE: REDIS_KEEPALIVE_IDLE,
            socket.TCP_KEEPINTVL: REDIS_KEEPALIVE_INTERVAL,
            socket.TCP_KEEPCNT: REDIS_KEEPALIVE_COUNT,
            **(
                {socket.TCP_USER_TIMEOUT: REDIS_TCP_USER_TIMEOUT * 1000}
                if REDIS_TCP_USER_TIMEOUT and hasattr(socket, "TCP_USER_TIMEOUT")
                else {}
            ),
        },
        "health_check_interval": REDIS_HEALTH_CHECK_INTERVAL,
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": dict(REDIS_SOCKET_OPTIONS),
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    # Seconds before Redis hands an unacknowledged message to another worker. Longer than any
    # task's hard time limit and any countdown (retries wait at most 30 minutes), so a message
    # is redelivered only when its worker is gone; and longer than REMINDER_LEASE_SECONDS, so
    # a dead worker's reminder is redelivered after its lease ran out. (A dead worker's rows
    # are not waiting for this: the requeue sends them once their lease ran out.)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
        **REDIS_SOCKET_OPTIONS,
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

# --- Delivery queues and recovery ----------------------------------------------------------
# Three queues, each consumed by its own worker processes (see the Procfile), so a receiver
# that hangs never holds back email: reminder and digest emails, webhook POSTs, and
# housekeeping (sweeps, requeues, the heartbeat). Every task is routed explicitly.
NOTIFICATION_QUEUE = env.str("NOTIFICATION_QUEUE", default="email")
WEBHOOK_QUEUE = env.str("WEBHOOK_QUEUE", default="webhooks")
HOUSEKEEPING_QUEUE = env.str("HOUSEKEEPING_QUEUE", default="housekeeping")
# A row whose message was lost (broker down at commit, a message dropped, a worker died or
# was cut off and its lease ran out, a retry's enqueue failed) is enqueued again by the
# housekeeping tick (beat, every DELIVERY_REQUEUE_EVERY_SECONDS, on HOUSEKEEPING_QUEUE) once
# it has been due DELIVERY_REQUEUE_AFTER_SECONDS (a lease that ran out counts from its end;
# default 5 s: rows a sweep just made and enqueued are not lost), and only while its
# delivery queue holds no message (rows queued behind a backlog are not lost). Enqueueing a
# row whose message does exist costs nothing but that message: the claim takes each row
# once.
#
# The 2-minute bound for a worker host that is killed or cut off at t = 0 (defaults):
#   its rows were claimed at t <= 0 with a lease of REMINDER_LEASE_SECONDS (60): free at
#   t <= 60 (its tasks stopped by then: hard time limit 54 s after the claim; a cut-off
#   database or Redis connection fails within ~25 s: DATABASE_*/REDIS_* timeouts above);
#   + requeue after (5) + one tick (30): enqueued again at t <= 95;
#   + another host's email worker claims and sends the batch: seconds (a batch of 200 takes
#   ~5 s at 40 emails/s) -> every email out before t = 120.
# Keep REMINDER_LEASE_SECONDS (and WEBHOOK_LEASE_SECONDS) + DELIVERY_REQUEUE_AFTER_SECONDS +
# DELIVERY_REQUEUE_EVERY_SECONDS well under 120 s; docs/deploy.md has the rest.
DELIVERY_REQUEUE_AFTER_SECONDS = env.int("DELIVERY_REQUEUE_AFTER_SECONDS", default=5)
DELIVERY_REQUEUE_EVERY_SECONDS = env.int("DELIVERY_REQUEUE_EVERY_SECONDS", default=30)
if (
    not all((NOTIFICATION_QUEUE, WEBHOOK_QUEUE, HOUSEKEEPING_QUEUE))
    or DELIVERY_REQUEUE_AFTER_SECONDS < 0
    or DELIVERY_REQUEUE_EVERY_SECONDS < 1
):
    raise ImproperlyConfigured(
        "NOTIFICATION_QUEUE, WEBHOOK_QUEUE and HOUSEKEEPING_QUEUE must be set, "
        "DELIVERY_REQUEUE_AFTER_SECONDS 0 or more and DELIVERY_REQUEUE_EVERY_SECONDS at least 1."
    )
# Sweeps and requeues send one message per batch of this many ids; a worker claims the
# batch in one statement and mails it over one SMTP connection.
DELIVERY_BATCH_SIZE = env.int("DELIVERY_BATCH_SIZE", default=200)
if not 1 <= DELIVERY_BATCH_SIZE <= 5000:
    raise ImproperlyConfigured("DELIVERY_BATCH_SIZE must be between 1 and 5000.")
CELERY_TASK_DEFAULT_QUEUE = HOUSEKEEPING_QUEUE
CELERY_TASK_ROUTES = {
    "notifications.deliver_notification": {"queue": NOTIFICATION_QUEUE},
    "notifications.deliver_notifications": {"queue": NOTIFICATION_QUEUE},
    "notifications.deliver_digests": {"queue": NOTIFICATION_QUEUE},
    "notifications.deliver_digest": {"queue": NOTIFICATION_QUEUE},
    "notifications.deliver_webhook": {"queue": WEBHOOK_QUEUE},
    "notifications.deliver_webhooks": {"queue": WEBHOOK_QUEUE},
    "notifications.sweep_reminders": {"queue": HOUSEKEEPING_QUEUE},
    "notifications.sweep_digests": {"queue": HOUSEKEEPING_QUEUE},
    "notifications.requeue_webhooks": {"queue": HOUSEKEEPING_QUEUE},
    "notifications.requeue_deliveries": {"queue": HOUSEKEEPING_QUEUE},
    "tracker.heartbeat": {"queue": HOUSEKEEPING_QUEUE},
    "tracker.expire_idempotency_keys": {"queue": HOUSEKEEPING_QUEUE},
}
CELERY_BEAT_SCHEDULE = {
    **vars().get("CELERY_BEAT_SCHEDULE", {}),
    "notifications.requeue_deliveries": {
        "task": "notifications.requeue_deliveries",
        "schedule": float(DELIVERY_REQUEUE_EVERY_SECONDS),
        "options": {"queue": HOUSEKEEPING_QUEUE},
    },
}

# --- Email ----------------------------------------------------------------------------------
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")
# Seconds an SMTP connection may block: a hung or cut-off server becomes an ordinary,
# retried error, well inside the delivery tasks' time limits and the reminder lease (a batch
# starts no send later than EMAIL_TIMEOUT + 15 s before its lease ends).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="tracker@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ko", "Korean")]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
# Content in two languages (django-modeltranslation): titles, descriptions and names have an
# English and a Korean column (title_en, title_ko); `title` reads the active language's and
# falls back to the other. The original column keeps the English one (or the Korean one when
# there is no English), see tracker/content_language.py.
MODELTRANSLATION_DEFAULT_LANGUAGE = "en"
MODELTRANSLATION_LANGUAGES = ("en", "ko")
MODELTRANSLATION_FALLBACK_LANGUAGES = {"default": ("en", "ko")}
# The Korean catalog (locale/ko), compiled to .mo by `make messages` (run by install/migrate).
LOCALE_PATHS = [BASE_DIR / "locale"]
LOGIN_URL = "workspace:login"
LOGIN_REDIRECT_URL = "workspace:home"
LOGOUT_REDIRECT_URL = "workspace:login"
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
# All on by default with DEBUG off, so `manage.py check --deploy` is clean; each can be
# switched for a TLS-terminating proxy (README, "Production").
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# The proxy in front redirects plain HTTP to HTTPS itself. Django cannot see that: saying so
# switches Django's own redirect off by default and silences check --deploy's W008.
SSL_REDIRECT_BY_PROXY = env.bool("DJANGO_SSL_REDIRECT_BY_PROXY", default=False)
SECURE_SSL_REDIRECT = env.bool(
    "DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG and not SSL_REDIRECT_BY_PROXY
)
if SSL_REDIRECT_BY_PROXY:
    SILENCED_SYSTEM_CHECKS = [*vars().get("SILENCED_SYSTEM_CHECKS", []), "security.W008"]
# Strict-Transport-Security on HTTPS responses: seconds browsers keep to HTTPS (0: no header).
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
if SECURE_HSTS_SECONDS < 0:
    raise ImproperlyConfigured("DJANGO_SECURE_HSTS_SECONDS must be 0 or more.")
# Behind a TLS-terminating proxy: the header by which it tells the app the client used HTTPS
# (e.g. X-Forwarded-Proto: https). Trusted only when named here, and then safe only if the
# proxy always sets or strips it: a client reaching the app directly could claim HTTPS.
_proxy_ssl_header = env.str("DJANGO_SECURE_PROXY_SSL_HEADER", default="")
if _proxy_ssl_header:
    if not (_proxy_ssl_header.isascii() and _proxy_ssl_header.replace("-", "").isalnum()):
        raise ImproperlyConfigured(
            "DJANGO_SECURE_PROXY_SSL_HEADER must be an HTTP header name, e.g. X-Forwarded-Proto."
        )
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # httpx logs every request URL at INFO (webhook endpoints); keep those out of the logs.
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
# django-axes narrates every login at INFO; its warnings (and tracker.login's) are what matter.
LOGGING["loggers"]["axes"] = {"level": "WARNING"}

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tracker.api.authentication.BearerTokenAuthentication",
        "tracker.api.authentication.SessionAuthentication",
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
# Idempotency-Key on API POSTs (tracker/idempotency.py): last, so it keeps the view's own
# answer; a key is kept this many hours, then beat's expire_idempotency_keys deletes it.
MIDDLEWARE = [*MIDDLEWARE, "tracker.idempotency.IdempotencyMiddleware"]
# The lean route of tracker/api/lean.py (off: every request through the full stack).
API_LEAN_ROUTE = env.bool("API_LEAN_ROUTE", default=True)
# The task list's first pages: their statement compiled once, then run (plans/api/
# page_statements.py; off: built and compiled on every request).
API_TASK_PAGE_STATEMENTS = env.bool("API_TASK_PAGE_STATEMENTS", default=True)
IDEMPOTENCY_KEY_HOURS = env.int("IDEMPOTENCY_KEY_HOURS", default=24)
if IDEMPOTENCY_KEY_HOURS < 1:
    raise ImproperlyConfigured("IDEMPOTENCY_KEY_HOURS must be at least 1.")
CELERY_BEAT_SCHEDULE = {
    **vars().get("CELERY_BEAT_SCHEDULE", {}),
    "tracker.expire_idempotency_keys": {
        "task": "tracker.expire_idempotency_keys",
        "schedule": 3600.0,
        "options": {"queue": HOUSEKEEPING_QUEUE},
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Joint Action Plan Tracker API",
    "DESCRIPTION": (
        "Plans, tasks and the forum outcomes behind them, for the systems of ministries and "
        "firms. Authenticate with `Authorization: Bearer <token>` (create one in the admin or "
        "with POST /api/v1/auth/token/) or a browser session. Every error is an RFC 9457 "
        "problem document (application/problem+json) with a list of field errors."
    ),
    "VERSION": "1.1.0",
    # Relative: the server that serves the document (paths carry /api/v1/ themselves).
    "SERVERS": [{"url": "/", "description": "This server"}],
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "TaskStatusEnum": "plans.models.TaskStatus",
        # Named once each now that the write API takes them as input (issue 12).
        "ForumKindEnum": "plans.models.ForumKind",
        "OutcomeKindEnum": "plans.models.OutcomeKind",
        "OutcomeStatusEnum": "plans.models.OutcomeStatus",
        "PlanStatusEnum": "plans.models.PlanStatus",
        "PlanParticipantRoleEnum": "plans.models.PlanParticipantRole",
        "StatusUpdateKindEnum": "plans.models.StatusUpdateKind",
        "OrganizationKindEnum": "tracker.models.Organization.Kind",
        "MembershipRoleEnum": "tracker.models.Membership.Role",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tracker.api.schema.add_problem_responses",
        "tracker.idempotency.add_idempotency_key_header",
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
# Seconds a webhook attempt holds its delivery row (as REMINDER_LEASE_SECONDS for emails): the
# task's time limits end inside it (outbox.time_limits); a dead or cut-off worker's delivery
# is sent again by the requeue at most one tick after this.
WEBHOOK_LEASE_SECONDS = env.int("WEBHOOK_LEASE_SECONDS", default=60)
if WEBHOOK_LEASE_SECONDS <= WEBHOOK_TIMEOUT_SECONDS:
    raise ImproperlyConfigured("WEBHOOK_LEASE_SECONDS must be longer than WEBHOOK_TIMEOUT_SECONDS.")
WEBHOOK_DISABLE_AFTER = env.int("WEBHOOK_DISABLE_AFTER", default=5)
if WEBHOOK_MAX_ATTEMPTS < 1 or WEBHOOK_DISABLE_AFTER < 1 or WEBHOOK_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured(
        "WEBHOOK_MAX_ATTEMPTS and WEBHOOK_DISABLE_AFTER must be at least 1 and "
        "WEBHOOK_TIMEOUT_SECONDS above 0."
    )
# Targets (notifications/webhook_http.py): https only unless switched off (default: off only
# with DJANGO_DEBUG); loopback, private, link-local, shared, reserved and multicast addresses
# only with WEBHOOK_ALLOW_PRIVATE_TARGETS, for development and tests: NEVER on in production,
# where it lets anyone who may create a webhook make the server POST into its own network.
# Cloud metadata addresses are refused whatever the settings.
WEBHOOK_REQUIRE_HTTPS = env.bool("WEBHOOK_REQUIRE_HTTPS", default=not DEBUG)
WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False)
# Beat re-enqueues deliveries whose message was lost or whose worker died: the entry
# "notifications.requeue_deliveries" above (DELIVERY_REQUEUE_EVERY_SECONDS).

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
# While a worker sends a batch of reminders (or digests) their rows are leased to it: no
# other worker claims them until the lease runs out. The delivery tasks' time limits are
# derived from it (soft 80 %, hard 90 % of the lease: notifications.outbox.time_limits) and
# a batch starts no new send once less than EMAIL_TIMEOUT + 15 s of the lease is left (the
# rest is given back and enqueued again), so a live attempt always ends inside its lease;
# when a worker dies or is cut off mid-send, its rows are due again at the lease's end and
# the next housekeeping tick enqueues them (the 2-minute arithmetic: "Delivery queues and
# recovery" above). Sized to the send: 60 s = a 20 s SMTP timeout, 25 s of sending, room
# for the stamp. Keep it at least 3 x EMAIL_TIMEOUT (a shorter one leaves a batch little
# time to send: half the lease at least).
REMINDER_LEASE_SECONDS = env.int("REMINDER_LEASE_SECONDS", default=60)
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
if REMINDER_LEASE_SECONDS <= EMAIL_TIMEOUT:
    raise ImproperlyConfigured("REMINDER_LEASE_SECONDS must be longer than EMAIL_TIMEOUT.")
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
        "options": {"queue": HOUSEKEEPING_QUEUE},
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
        "options": {"queue": HOUSEKEEPING_QUEUE},
    },
}
# Beat also sends these entries once when it starts, so a fresh `make run` (or a restart after
# a pause) sweeps at once instead of a full interval later; the sweeps are idempotent.
BEAT_RUN_AT_START = [
    "notifications.sweep_reminders",
    "notifications.sweep_digests",
    "notifications.requeue_deliveries",
]
