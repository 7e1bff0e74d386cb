"""Settings shared by every environment.

Everything is read from environment variables; with none set the app runs embedded:
SQLite in the project folder, local media files, the django-q2 ORM broker and console
message delivery.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("DISPATCH_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def database_from_url(url: str) -> dict:
    """Turn DATABASE_URL (postgres://user:pass@host:port/name?pool=1) into a DATABASES entry."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"DATABASE_URL scheme {parsed.scheme!r} is not supported; use postgres://")
    query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    use_pool = query.pop("pool", "0").lower() in {"1", "true", "yes"}
    options: dict = {}
    if use_pool:
        # psycopg's pool owns the connections, so Django must not keep its own (CONN_MAX_AGE=0).
        options["pool"] = {"min_size": 2, "max_size": int(query.pop("pool_max", "8")), "timeout": 10}
    if "sslmode" in query:
        options["sslmode"] = query.pop("sslmode")
    # Parameters bound on the server (`?server_side_binding=0` binds them in the client, as
    # Django does by default). psycopg prepares a statement only when told after how many runs
    # (`?prepare_threshold=5`); Django leaves that off, and so does this by default: measured on
    # the toolset bench, preparing slowed the command chain, whose savepoints and rollbacks keep
    # evicting psycopg's prepared statements. Behind a transaction-pooling PgBouncer, leave
    # preparing off.
    options["server_side_binding"] = query.pop("server_side_binding", "1").lower() in {"1", "true", "yes"}
    if "prepare_threshold" in query:
        options["prepare_threshold"] = int(query.pop("prepare_threshold"))
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")),
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        "CONN_MAX_AGE": 0 if use_pool else int(query.pop("conn_max_age", "60")),
        "CONN_HEALTH_CHECKS": not use_pool,
        "OPTIONS": options,
    }


SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-not-secret-6f1c2a9e0b7d4e3f8a5c")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

DJANGO_APPS = [
    "dispatch.common.admin_base.DispatchAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Trigram index operator classes (tickets' search indexes) and EXPLAIN-able search lookups.
    "django.contrib.postgres",
]
THIRD_PARTY_APPS = [
    "rest_framework",
    "django_htmx",
    "django_q",
    "dispatch.accounts.apps.LockoutsConfig",  # django-axes
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "csp",
]
LOCAL_APPS = [
    "dispatch.common",
    "dispatch.accounts",
    "dispatch.tickets",
    "dispatch.technicians",
    "dispatch.messaging",
    "dispatch.intake",
    "dispatch.scheduling",
    "dispatch.closeout",
    "dispatch.api",
    "dispatch.autopilot",
    "dispatch.demo",
    "dispatch.customer",
    "dispatch.field",
    "dispatch.simulation",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "dispatch.common.security_headers.PermissionsPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed the second factor.
    "django_otp.middleware.OTPMiddleware",
    # Staff sessions end after hours idle; a session that owes its second factor goes no further.
    "dispatch.accounts.middleware.SignInGateMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a refused sign-in of a locked pair into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# django-axes checks every password sign-in (admin, /tech/) before Django's own backend does.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dispatch.common.context_processors.company",
            ],
        },
    },
]

if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": database_from_url(os.environ["DATABASE_URL"])}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {
                # IMMEDIATE takes SQLite's write lock when a transaction opens, so two writers
                # queue instead of both reading a ticket and then failing with "database is locked".
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("DISPATCH_TIME_ZONE", "America/Los_Angeles")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if os.environ.get("DISPATCH_S3_BUCKET"):
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["DISPATCH_S3_BUCKET"],
            "endpoint_url": os.environ.get("DISPATCH_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("DISPATCH_S3_REGION", "us-east-1"),
            # Never overwrite evidence: a second upload with the same name gets its own key.
            "file_overwrite": False,
            "signature_version": "s3v4",
            "default_acl": None,
            "querystring_auth": True,
            "client_config": None,  # filled in below, needs botocore
        },
    }
    from botocore.config import Config as _BotoConfig

    STORAGES["default"]["OPTIONS"]["client_config"] = _BotoConfig(
        signature_version="s3v4",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        # botocore's defaults (60 s to connect, 60 s to read, retried) would hold a web worker for
        # minutes when the store stops answering; an upload then fails with a clear 503 within
        # about half a minute instead, before the technician's page gives up on the request.
        connect_timeout=5,
        read_timeout=10,
        retries={"total_max_attempts": 2, "mode": "standard"},
    )

LOGIN_URL = "/admin/login/"

# --- People's sign-ins -------------------------------------------------------------------
# Lockout: this many failures for one username from one address within the window lock that
# pair (only that pair) for the window; a successful sign-in clears the count.
AXES_FAILURE_LIMIT = int(os.environ.get("DISPATCH_SIGNIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("DISPATCH_SIGNIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Tries while locked are refused unheard: the lock ends when the page said it would.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "dispatch.common.client_ip.client_network"
AXES_USERNAME_CALLABLE = "dispatch.accounts.lockout.lockout_username"
AXES_LOCKOUT_CALLABLE = "dispatch.accounts.views.locked_out"
# The sign-in record (dispatch.accounts) keeps every sign-in, and its admin does the unlocking.
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ADMIN = False
# Two-factor (TOTP) for back-office roles: off in development so the demo logins work in one
# step, on in production settings. Whoever has enrolled is always asked, required or not.
DISPATCH_TWO_FACTOR_REQUIRED = env_bool("DISPATCH_TWO_FACTOR_REQUIRED", False)
# Back-office sessions end after this long without a request (technicians keep their month).
DISPATCH_STAFF_IDLE_HOURS = int(os.environ.get("DISPATCH_STAFF_IDLE_HOURS", "12"))
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_HTTPONLY = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True

# Nothing inline: every script and style comes from static/. img-src allows data: (the
# technician pages' icon) and blob: (a photo's preview before upload).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'"],
        "manifest-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Rate limits and used webhook tokens must be shared by every web process: tables in the main
# database (created by migrate, dispatch/common/migrations). Per-client counters (sign-in and API limits, the request form's) have a table of their own:
# past MAX_ENTRIES a database cache culls its oldest keys, and a flood of counters from many
# addresses must cull counters, not the used webhook tokens or autonomy pauses of the default.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "dispatch_cache"},
    "limits": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "dispatch_limits",
        "OPTIONS": {"MAX_ENTRIES": 50_000, "CULL_FREQUENCY": 4},
    },
}

# --- Real Dispatch -----------------------------------------------------------------------
DISPATCH_COMPANY_NAME = os.environ.get("DISPATCH_COMPANY_NAME", "Real Dispatch Door Service")
# What an authenticator app shows beside the code.
OTP_TOTP_ISSUER = DISPATCH_COMPANY_NAME
DISPATCH_PUBLIC_URL = os.environ.get("DISPATCH_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# Development actor headers (X-Actor-Id/-Role/-Type) are honoured only when this is on.
DISPATCH_DEV_AUTH = env_bool("DISPATCH_DEV_AUTH", False)
DISPATCH_AUTH_JWT_SECRET = os.environ.get("DISPATCH_AUTH_JWT_SECRET", "")
DISPATCH_AUTH_JWT_ISSUER = os.environ.get("DISPATCH_AUTH_JWT_ISSUER", "")
DISPATCH_AUTH_JWT_AUDIENCE = os.environ.get("DISPATCH_AUTH_JWT_AUDIENCE", "")
# After this many failed authentications (401s) from one address in a window, /api/ and /mcp
# answer 429 AUTH_RATE_LIMITED to that address, even with a valid credential, until the window ends.
DISPATCH_API_AUTH_FAILURE_LIMIT = int(os.environ.get("DISPATCH_API_AUTH_FAILURE_LIMIT", "30"))
DISPATCH_API_AUTH_FAILURE_WINDOW_SECONDS = max(
    1, int(os.environ.get("DISPATCH_API_AUTH_FAILURE_WINDOW_SECONDS", "300"))
)
# Key of the audit hash chain. Kept apart from SECRET_KEY so rotating sessions keeps the chain.
DISPATCH_AUDIT_CHAIN_KEY = os.environ.get("DISPATCH_AUDIT_CHAIN_KEY", SECRET_KEY)
DISPATCH_EVIDENCE_URI_SCHEMES = env_list("DISPATCH_EVIDENCE_URI_SCHEMES", "s3,minio")
DISPATCH_EVIDENCE_MAX_BYTES = int(os.environ.get("DISPATCH_EVIDENCE_MAX_BYTES", str(25 * 1024 * 1024)))
# Billing: labor per hour and tax in basis points (875 = 8.75 %), integer cents throughout.
DISPATCH_LABOR_RATE_CENTS = int(os.environ.get("DISPATCH_LABOR_RATE_CENTS", "12500"))
DISPATCH_LABOR_TAX_RATE_BPS = int(os.environ.get("DISPATCH_LABOR_TAX_RATE_BPS", "0"))
DISPATCH_PARTS_TAX_RATE_BPS = int(os.environ.get("DISPATCH_PARTS_TAX_RATE_BPS", "875"))
# Outbound delivery: "console" (log only), "file" (JSON lines) or "live" (Twilio SMS and SMTP email).
DISPATCH_MESSAGE_DELIVERY = os.environ.get("DISPATCH_MESSAGE_DELIVERY", "console")
DISPATCH_MESSAGE_FILE_PATH = os.environ.get("DISPATCH_MESSAGE_FILE_PATH", str(VAR_DIR / "outbox.jsonl"))
# How long a delivery worker waits on a provider: once to connect, once more for its answer.
DISPATCH_SEND_TIMEOUT_SECONDS = int(os.environ.get("DISPATCH_SEND_TIMEOUT_SECONDS", "30"))
# The task queue kills a task that runs longer than this (Q_CLUSTER["timeout"] below): the one
# hard limit on how long a delivery can go on.
DISPATCH_Q_TIMEOUT_SECONDS = int(os.environ.get("DISPATCH_Q_TIMEOUT_SECONDS", "60"))
# A SENDING claim older than this is presumed dead and taken back by the sweep. It must exceed
# the longest a delivery can run, or a live worker's message would be sent twice: past the task
# queue's timeout (the worker is killed by then) and past two send timeouts (a send's connect
# and answer). A system check (dispatch.E002) refuses a shorter lease.
DISPATCH_OUTBOX_CLAIM_LEASE_SECONDS = int(
    os.environ.get(
        "DISPATCH_OUTBOX_CLAIM_LEASE_SECONDS",
        str(max(2 * DISPATCH_SEND_TIMEOUT_SECONDS, DISPATCH_Q_TIMEOUT_SECONDS) + 30),
    )
)
DISPATCH_DEFAULT_PHONE_REGION = os.environ.get("DISPATCH_DEFAULT_PHONE_REGION", "US")
# Where the company works: cities and ZIP code prefixes ("Portland, OR; Beaverton, OR; 972"). The
# default of the ServiceArea row in the admin, which is what intake reads. Empty: no limit.
DISPATCH_SERVICE_AREA = os.environ.get("DISPATCH_SERVICE_AREA", "")
# Sites' coordinates: "offline" (ZIP and city centroids shipped with the code, no network call) or
# "nominatim" (OpenStreetMap's search, asked after intake commits; its policy wants a user agent).
DISPATCH_GEOCODER = os.environ.get("DISPATCH_GEOCODER", "offline")
DISPATCH_GEOCODER_URL = os.environ.get("DISPATCH_GEOCODER_URL", "https://nominatim.openstreetmap.org")
DISPATCH_GEOCODER_USER_AGENT = os.environ.get("DISPATCH_GEOCODER_USER_AGENT", "real-dispatch")
DISPATCH_GEOCODER_TIMEOUT_SECONDS = float(os.environ.get("DISPATCH_GEOCODER_TIMEOUT_SECONDS", "10"))
# An optional reading of customers' messages by a model: the base URL of an OpenAI-compatible
# server ("http://127.0.0.1:8080/v1"; requests go to <url>/chat/completions). Empty: off.
DISPATCH_LLM_URL = os.environ.get("DISPATCH_LLM_URL", "")
# The model asked; the server must support structured outputs (a strict JSON schema).
DISPATCH_LLM_MODEL = os.environ.get("DISPATCH_LLM_MODEL", "gpt-4o-mini")
# Sent as a bearer token, only when set (a local server may need none).
DISPATCH_LLM_API_KEY = os.environ.get("DISPATCH_LLM_API_KEY", "")
# The whole call, connecting to the last byte of the answer: intake waits no longer.
DISPATCH_LLM_TIMEOUT_SECONDS = float(os.environ.get("DISPATCH_LLM_TIMEOUT_SECONDS", "4"))
# The model's own confidence (0-100) from which its reading counts as sure.
DISPATCH_LLM_MIN_CONFIDENCE = int(os.environ.get("DISPATCH_LLM_MIN_CONFIDENCE", "80"))
# The built-in dispatcher (dispatch.autopilot): on unless DISPATCH_AUTOPILOT=0. It acts within the
# autonomy ladder set in the admin; where no rung applies, at DISPATCH_AUTOPILOT_DEFAULT_LEVEL
# (0 suggest only, 1 propose and book, 2 dispatch, 3 verify and draft invoices). A booked job is
# dispatched this many minutes before its window.
DISPATCH_AUTOPILOT = os.environ.get("DISPATCH_AUTOPILOT", "1") == "1"
DISPATCH_AUTOPILOT_NUDGES = True
DISPATCH_AUTOPILOT_DEFAULT_LEVEL = int(os.environ.get("DISPATCH_AUTOPILOT_DEFAULT_LEVEL", "1"))
DISPATCH_AUTOPILOT_DISPATCH_LEAD_MINUTES = int(os.environ.get("DISPATCH_AUTOPILOT_DISPATCH_LEAD_MINUTES", "60"))
# The first window offered to a customer starts at least this far ahead (half for an urgent job).
DISPATCH_AUTOPILOT_PROPOSAL_LEAD_MINUTES = int(os.environ.get("DISPATCH_AUTOPILOT_PROPOSAL_LEAD_MINUTES", "90"))
# The evening step: from this hour (company time) tomorrow's routes are re-planned once
# (dispatch.autopilot.evening), before the customers' reminders at DISPATCH_REMINDER_HOUR.
DISPATCH_AUTOPILOT_EVENING_PLAN = os.environ.get("DISPATCH_AUTOPILOT_EVENING_PLAN", "1") == "1"
DISPATCH_AUTOPILOT_PLAN_HOUR = int(os.environ.get("DISPATCH_AUTOPILOT_PLAN_HOUR", "16"))
# The day planner (scheduling.day_planner): the solver's time bound and step count (the count makes
# a plan repeatable; the clock bounds a large day), and how soon a job may no longer move.
DISPATCH_PLAN_SECONDS = float(os.environ.get("DISPATCH_PLAN_SECONDS", "5"))
DISPATCH_PLAN_SOLUTIONS = int(os.environ.get("DISPATCH_PLAN_SOLUTIONS", "1000"))
DISPATCH_PLAN_FREEZE_MINUTES = int(os.environ.get("DISPATCH_PLAN_FREEZE_MINUTES", "120"))
DISPATCH_EMAIL_MESSAGE_ID_DOMAIN = os.environ.get("DISPATCH_EMAIL_MESSAGE_ID_DOMAIN", "")
# Inbound email webhooks are refused while this is empty.
MAILGUN_SIGNING_KEY = os.environ.get("MAILGUN_SIGNING_KEY", "")
# Clients behind this many trusted proxies: the real address is that far from the end of X-Forwarded-For.
DISPATCH_TRUSTED_PROXY_COUNT = int(os.environ.get("DISPATCH_TRUSTED_PROXY_COUNT", "0"))
DISPATCH_STATUS_LINK_MAX_AGE_DAYS = int(os.environ.get("DISPATCH_STATUS_LINK_MAX_AGE_DAYS", "180"))
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM_NUMBER = os.environ.get("TWILIO_FROM_NUMBER", "")
TWILIO_API_BASE = os.environ.get("TWILIO_API_BASE", "https://api.twilio.com")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "15"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "dispatch@localhost")

# Scheduling: travel estimate (haversine x road factor / speed), slot grid, arrival window,
# ranking weights (overrides of dispatch.scheduling.ranking.DEFAULT_WEIGHTS).
DISPATCH_TRAVEL_ROAD_FACTOR = float(os.environ.get("DISPATCH_TRAVEL_ROAD_FACTOR", "1.3"))
DISPATCH_TRAVEL_SPEED_KMH = float(os.environ.get("DISPATCH_TRAVEL_SPEED_KMH", "40"))
DISPATCH_TRAVEL_UNKNOWN_MINUTES = int(os.environ.get("DISPATCH_TRAVEL_UNKNOWN_MINUTES", "30"))
DISPATCH_SLOT_STEP_MINUTES = int(os.environ.get("DISPATCH_SLOT_STEP_MINUTES", "30"))
DISPATCH_ARRIVAL_WINDOW_MINUTES = int(os.environ.get("DISPATCH_ARRIVAL_WINDOW_MINUTES", "120"))
DISPATCH_SLOT_WEIGHTS: dict = {}
# Wake-ups and customer updates.
DISPATCH_DELAY_NOTICE_MINUTES = int(os.environ.get("DISPATCH_DELAY_NOTICE_MINUTES", "15"))
DISPATCH_PROPOSAL_STALE_MINUTES = int(os.environ.get("DISPATCH_PROPOSAL_STALE_MINUTES", "240"))
DISPATCH_STALE_HOLD_MINUTES = int(os.environ.get("DISPATCH_STALE_HOLD_MINUTES", "1440"))
DISPATCH_ACK_TIMEOUT_MINUTES = int(os.environ.get("DISPATCH_ACK_TIMEOUT_MINUTES", "15"))
DISPATCH_SLA_RISK_MARGIN_MINUTES = {"EMERGENCY": 60, "URGENT": 240, "ROUTINE": 1440}
DISPATCH_REMINDER_HOUR = int(os.environ.get("DISPATCH_REMINDER_HOUR", "17"))
# A check-in this long before the booked window needs a reason (recorded with it). Technicians
# who finish early are often sent on and a customer will usually take them a few hours early,
# so half a working day is the margin: an arrival earlier than that is more often a wrong job
# or a wrong date than an early technician, and someone should say which.
DISPATCH_EARLY_CHECK_IN_MINUTES = int(os.environ.get("DISPATCH_EARLY_CHECK_IN_MINUTES", "240"))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}

Q_CLUSTER = {
    "name": "dispatch",
    "orm": "default",
    "workers": int(os.environ.get("DISPATCH_Q_WORKERS", "2")),
    # retry must exceed timeout, or a slow task is started twice while still running.
    "timeout": DISPATCH_Q_TIMEOUT_SECONDS,
    "retry": 2 * DISPATCH_Q_TIMEOUT_SECONDS,
    "max_attempts": 3,
    "catch_up": False,
    # Successful tasks kept in the task table (0 keeps all, -1 none).
    "save_limit": int(os.environ.get("DISPATCH_Q_SAVE_LIMIT", "500")),
    "poll": 1,
}
if os.environ.get("REDIS_URL"):
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = os.environ["REDIS_URL"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
