"""LeadRecord settings: one module, driven by the environment (django-environ).

Every knob an operator may turn is read here with ``env(...)``; the
docker-compose test checks that the compose file sets only names read here.
Defaults give the embedded mode: SQLite under ``data/`` and Celery tasks run
in process. Production values pass ``manage.py check --deploy``.
"""

import re
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"))

DEBUG = env.bool("DEBUG", default=False)

# A development key only when DEBUG is on; anything else must set its own.
if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-leadrecord-development-key-only")
else:
    SECRET_KEY = env.str("SECRET_KEY", default="").strip()
    if not SECRET_KEY:
        raise ImproperlyConfigured(
            "Set SECRET_KEY (a development default exists only with DEBUG=1)."
        )

# The key of the hashes erasure keeps of erased emails (contacts/erasure.py,
# docs/erasure.md); empty: derived from SECRET_KEY (and its fallbacks). Set it
# to rotate SECRET_KEY freely without losing those hashes.
ERASURE_HASH_KEY = env.str("ERASURE_HASH_KEY", default="")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Applications -------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "django_tables2",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
    "axes",
    "leadrecord.apps.LeadRecordConfig",
    "contacts.apps.ContactsConfig",
    "handoff.apps.HandoffConfig",
    "reports.apps.ReportsConfig",
    "events.apps.EventsConfig",
    "buyers.apps.BuyersConfig",
    "webhooks.apps.WebhooksConfig",
    "demo.apps.DemoConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "leadrecord.middleware.ContentSecurityPolicyMiddleware",
    "leadrecord.middleware.FriendlyMethodNotAllowedMiddleware",
    # Last, as django-axes asks: it turns a lockout into the lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "leadrecord.urls"
WSGI_APPLICATION = "leadrecord.wsgi.application"

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
                "leadrecord.navigation.navigation",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------

DATA_DIR = Path(env.str("LEADRECORD_DATA_DIR", default=str(BASE_DIR / "data")))
_default_database_url = f"sqlite:///{DATA_DIR / 'leadrecord.sqlite3'}"
DATABASES = {"default": env.db("DATABASE_URL", default=_default_database_url)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        # Take the write lock when a transaction starts, so two writers queue
        # up instead of one failing with "database is locked" mid-transaction.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# The owner of the tables, for ``manage.py migrate`` and ``grant_app_role`` only:
# DATABASE_URL is then the application's role, which owns nothing and cannot
# alter or rewrite the ledger (docs/ledger-integrity.md).
_migrate_database_url = env.str("MIGRATE_DATABASE_URL", default="").strip()
MIGRATE_DATABASE = env.db_url_config(_migrate_database_url) if _migrate_database_url else None
if MIGRATE_DATABASE and MIGRATE_DATABASE["NAME"] != DATABASES["default"]["NAME"]:
    raise ImproperlyConfigured("MIGRATE_DATABASE_URL must name the same database as DATABASE_URL.")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ---------------------------------------------------------------------

AUTHENTICATION_BACKENDS = [
    # First, so a locked-out username/address pair is refused before the
    # password is even checked.
    "axes.backends.AxesStandaloneBackend",
    # Django's model backend, reading a session's user with their roles in one query.
    "leadrecord.authentication.SessionUserBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Login throttling (django-axes): five failures for one username from one
# address lock that pair out for 15 minutes. The same answer is given whether
# or not the username exists, so the lockout does not reveal accounts.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

# --- Internationalization and money -------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("LEADRECORD_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

LEADRECORD_CURRENCY = env.str("LEADRECORD_CURRENCY", default="USD").upper()
# Money is Decimal with these digits and places everywhere (models, API, ledger).
MONEY_MAX_DIGITS = 14
MONEY_DECIMAL_PLACES = 2

# --- Static files -------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve straight from the apps' static folders too, so pages work before (or
# without) collectstatic: the embedded mode and the test suite rely on it.
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Security -----------------------------------------------------------------

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Health checks from inside the stack speak plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/$"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Same-origin only; the API docs page needs inline styles from Swagger UI.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Requests bigger than this are refused before parsing (10 MB bodies get a 400).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)

# --- API ----------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so an anonymous call gets 401 with WWW-Authenticate.
        "leadrecord.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["leadrecord.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "leadrecord.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "leadrecord.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "leadrecord.errors.api_exception_handler",
    # Per token (or per signed-in user); health/ opts out. Rates: API_RATE_LIMIT below.
    "DEFAULT_THROTTLE_CLASSES": [
        "leadrecord.throttling.TokenBurstThrottle",
        "leadrecord.throttling.TokenSustainedThrottle",
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
DRF_STANDARDIZED_ERRORS = {"ENABLE_IN_DEBUG_FOR_UNHANDLED_EXCEPTIONS": True}

# API tokens (django-rest-knox): only a digest of each key is stored; a key is
# shown once, when `issue_token` creates it, and expires after this many days.
API_TOKEN_TTL_DAYS = env.int("API_TOKEN_TTL_DAYS", default=90)
if API_TOKEN_TTL_DAYS < 1:
    raise ImproperlyConfigured("API_TOKEN_TTL_DAYS must be a whole number of days, at least 1.")
REST_KNOX = {"TOKEN_TTL": timedelta(days=API_TOKEN_TTL_DAYS), "AUTH_HEADER_PREFIX": "Token"}


# Requests per token: a sustained rate and a burst rate, "N/second|minute|hour|day".
# The defaults sit well above what one integration needs (and what
# bench/ingest.py sends from one token: some 10,000 requests in a minute);
# they stop a runaway client, not real work. Counted in the cache (CACHE_URL):
# with the per-process default each process counts alone, so share a Redis
# cache wherever several processes serve the API.
def _rate(name: str, default: str) -> str:
    value = env.str(name, default=default).strip()
    # DRF's form: a count, a slash and a period it reads by its first letter.
    if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", value):
        raise ImproperlyConfigured(
            f"{name} must look like 100000/hour (second, minute, hour or day)."
        )
    return value


API_RATE_LIMIT = _rate("API_RATE_LIMIT", "100000/hour")
API_RATE_LIMIT_BURST = _rate("API_RATE_LIMIT_BURST", "20000/minute")

# --- The buyer's side (buyers/: public forms, visits, the portal) ------------
# Posts of public forms per client address; over it, 429 with Retry-After.
BUYER_FORM_RATE_LIMIT = _rate("BUYER_FORM_RATE_LIMIT", "20/hour")
# A person takes a few seconds to fill in a form; a bot posts at once.
BUYER_FORM_MIN_SECONDS = env.float("BUYER_FORM_MIN_SECONDS", default=3.0)
# A form sends a few fields of short text; anything bigger is not a person's answer.
BUYER_FORM_MAX_BYTES = env.int("BUYER_FORM_MAX_BYTES", default=32 * 1024)
# Which sites may show the form in an iframe (CSP frame-ancestors).
BUYER_FRAME_ANCESTORS = env.str("BUYER_FRAME_ANCESTORS", default="*")
# Page views the visit collector takes per client address (a busy office shares one).
VISIT_RATE_LIMIT = _rate("VISIT_RATE_LIMIT", "2000/hour")
# Portal sign-in links asked for per client address (the answer never says whether
# an address is known, so this is what stops a flood of mail).
PORTAL_LINK_RATE_LIMIT = _rate("PORTAL_LINK_RATE_LIMIT", "10/hour")
# How long a person stays signed in to their portal after using a link.
PORTAL_SESSION_MINUTES = env.int("PORTAL_SESSION_MINUTES", default=60)

# --- Outgoing mail (the portal's sign-in links) ------------------------------
# EMAIL_URL as django-environ reads it: smtp://user:pass@host:587 (smtp+tls://,
# smtp+ssl://), consolemail:// (the default: printed, as the embedded setup wants).
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="LeadRecord <no-reply@localhost>")

SPECTACULAR_SETTINGS = {
    "TITLE": "LeadRecord API",
    "DESCRIPTION": (
        "The lead-lifecycle system of record. Authenticate with "
        "`Authorization: Token <key>` (get a key with `manage.py issue_token NAME`; it is "
        "shown once and expires). Each token is rate limited: 429 with `Retry-After`. "
        "Times are ISO-8601 with a UTC offset; money is a decimal string in the "
        "reporting currency. Errors follow drf-standardized-errors."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # docs/api.md: nothing but health/ is open to anonymous callers, the schema included.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SCHEMA_PATH_PREFIX": "/api/v1/",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # drf-standardized-errors' error codes as named enums (its documented setup).
    "ENUM_NAME_OVERRIDES": {
        name: f"drf_standardized_errors.openapi_serializers.{name}.choices"
        for name in (
            "ValidationErrorEnum",
            "ClientErrorEnum",
            "ServerErrorEnum",
            *(f"ErrorCode{status}Enum" for status in (401, 403, 404, 405, 406, 415, 429, 500)),
        )
    }
    | {
        "ConsentPurposeEnum": "contacts.models.ConsentPurpose",
        "DisclosurePurposeEnum": "contacts.models.DisclosurePurpose",
        "DisclosureSourceEnum": "contacts.models.DisclosureSource",
        "TouchKindEnum": "contacts.models.TouchKind",
        "DealSourceEnum": "handoff.models.DealSource",
        "SaleKindEnum": "handoff.models.SaleKind",
    },
    "POSTPROCESSING_HOOKS": ["drf_standardized_errors.openapi_hooks.postprocess_schema_enums"],
}

# --- Cache --------------------------------------------------------------------

# Reports are cached per state of the record (reports/report_cache.py); any
# Django cache URL, e.g. redis://host:6379/1 to share one between processes.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://leadrecord")}
REPORT_CACHE_SECONDS = env.int("REPORT_CACHE_SECONDS", default=3600)

# --- Celery -------------------------------------------------------------------

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
# Without a broker, tasks run in process (the embedded default).
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL or "")
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
# A worker killed mid-task leaves the message on the broker for another worker;
# tasks are written to be safe to run twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 25 * 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "verify-ledger-nightly": {
        "task": "leadrecord.ledger_verify",
        "schedule": 24 * 60 * 60,
    },
    "attribution-nightly": {
        "task": "reports.attribution_nightly",
        "schedule": crontab(hour=2, minute=30),
    },
    "forget-abandoned-touch-imports-hourly": {
        "task": "contacts.touch_imports_forget_abandoned",
        "schedule": 60 * 60,
    },
    "forget-idempotency-keys-hourly": {
        "task": "contacts.idempotency_records_expire",
        "schedule": 60 * 60,
    },
    # An outside copy of the head at most this old bounds what a rewrite could hide.
    "ledger-checkpoint-every-15-minutes": {
        "task": "leadrecord.ledger_checkpoint",
        "schedule": 15 * 60,
    },
    "expire-handoffs-past-sla": {
        "task": "handoff.handoffs_expire",
        "schedule": 5 * 60,
    },
    # Brings the report aggregates and daily rollups up to the ledger (reports/aggregates.py).
    # Often: a report counts what they do not know yet live, on every read, and an update
    # costs about what it adds (docs/reports-at-scale.md).
    "report-rollups": {
        "task": "reports.rollups_update",
        "schedule": env.int("LEADRECORD_ROLLUP_SECONDS", default=3),
    },
    # Checks for changes since the latest run; runs at most once per refresh interval.
    # Retries fall due between changes; a run finds them (webhooks.delivery).
    "webhooks-deliver": {
        "task": "webhooks.deliveries_send",
        "schedule": env.int("WEBHOOKS_DELIVERY_CHECK_SECONDS", default=5),
    },
    "attribution-fresh": {
        "task": "reports.attribution_freshen",
        "schedule": env.int("LEADRECORD_ATTRIBUTION_CHECK_SECONDS", default=60),
    },
}
# Without a broker no beat runs: the web processes run due periodic jobs themselves, after
# responses, checking at most every PERIODIC_CHECK_SECONDS (leadrecord/periodic.py).
PERIODIC_IN_WEB = env.bool("LEADRECORD_PERIODIC_IN_WEB", default=not CELERY_BROKER_URL)
PERIODIC_CHECK_SECONDS = env.int("LEADRECORD_PERIODIC_CHECK_SECONDS", default=20)
# The debounce of the attribution run that follows changes: at most one per this interval.
ATTRIBUTION_REFRESH_MINUTES = env.int("LEADRECORD_ATTRIBUTION_REFRESH_MINUTES", default=2)
# Complete attribution runs whose credits are kept (older runs' credits are dropped whole).
ATTRIBUTION_RUNS_KEPT = max(1, env.int("LEADRECORD_ATTRIBUTION_RUNS_KEPT", default=5))
# Conversions per partition of a run: each partition is read, computed and written on its
# own, so a run's memory follows this, not the size of the record.
ATTRIBUTION_PARTITION_CONVERSIONS = max(
    1, env.int("LEADRECORD_ATTRIBUTION_PARTITION_CONVERSIONS", default=25_000)
)
# With a broker: a run's partitions as a Celery chord over the workers (the process that
# carries out the run waits for it, so give the workers more than one process).
ATTRIBUTION_CHORD = env.bool("LEADRECORD_ATTRIBUTION_CHORD", default=False)

# --- Ledger checkpoints ---------------------------------------------------------

# The Ed25519 key that signs checkpoints of the ledger's head (make one with
# ``manage.py ledger_keygen PATH``); unset, checkpoints are skipped with a warning.
LEDGER_SIGNING_KEY = env.str("LEDGER_SIGNING_KEY", default="").strip()
LEDGER_CHECKPOINT_DIR = Path(
    env.str("LEDGER_CHECKPOINT_DIR", default=str(DATA_DIR / "checkpoints"))
)

# --- Webhooks -------------------------------------------------------------------

# Endpoints on loopback addresses (tests, the demo); private, link-local and metadata
# addresses stay refused whatever this says (webhooks/addresses.py).
WEBHOOKS_ALLOW_LOOPBACK = env.bool("WEBHOOKS_ALLOW_LOOPBACK", default=False)
# How long a receiver has to answer one delivery.
WEBHOOKS_TIMEOUT_SECONDS = env.float("WEBHOOKS_TIMEOUT_SECONDS", default=15.0)

# --- Logging ------------------------------------------------------------------

# Query strings carry searches (emails, names), so no request line is logged
# with one: runserver's log (`django.server`, configured as Django's default
# plus the filter) here, gunicorn's access log in leadrecord/gunicorn_config.py.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"without_query_strings": {"()": "leadrecord.logs.WithoutQueryStrings"}},
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["without_query_strings"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "axes": {"level": "WARNING"},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
    },
}
