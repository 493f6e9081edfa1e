"""FlowPay settings, read from the environment (django-environ).

Defaults are for `make run` on a laptop: SQLite in WAL mode, a filesystem Celery broker
under .run/, DEBUG on. Production sets DATABASE_URL, REDIS_URL and SECRET_KEY; with DEBUG
off a missing SECRET_KEY is an error, never a default.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
RUN_DIR = Path(environ.Env().str("FLOWPAY_RUN_DIR", default=str(BASE_DIR / ".run")))

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["127.0.0.1", "localhost", "[::1]", "testserver"]),
    SECURE_SSL_REDIRECT=(bool, False),
)

DEBUG = env("DEBUG")
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-dev-only-key-do-not-use-in-production"  # DEBUG only

ALLOWED_HOSTS = env("ALLOWED_HOSTS")
# TLS usually ends at the load balancer, which tells us the original scheme.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env("SECURE_SSL_REDIRECT")
# Probes and Prometheus reach the pods over plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = SECURE_SSL_REDIRECT
CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "auditlog",
    # Local apps, from the shared kernel down to the back office (the layers of `make lint`).
    "core",
    "audit",
    "accounts",
    "webhooks",
    "gateways",
    "payments",
    "refunds",
    "subscriptions",
    "gateway_events",
    "backoffice",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "core.middleware.CorrelationIdMiddleware",
    "core.middleware.RuntimeSwitchesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "audit.middleware.CardDataGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "flowpay.urls"
WSGI_APPLICATION = "flowpay.wsgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# Default: SQLite in WAL mode so that the web server, the worker and beat can share it.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{RUN_DIR / 'flowpay.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
            # Take the write lock when a transaction starts: no lock upgrades, no deadlocks.
            "transaction_mode": "IMMEDIATE",
        }
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache, Celery ------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env.str("CACHE_URL", default=REDIS_URL),
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="flowpay"),
        }
    }
else:
    # Shared by the web server, worker and beat of `make run` without a Redis server.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(RUN_DIR / "cache"),
        }
    }

BROKER_DIR = RUN_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# Queues: default, payments (money tasks), webhooks (merchant deliveries), rebill.daily|weekly|
# monthly|yearly (rebill drains, sent explicitly per plan frequency), reconciliation.
CELERY_TASK_ROUTES = {
    "refunds.execute": {"queue": "payments"},
    "refunds.requeue_stalled": {"queue": "payments"},
    "subscriptions.rebill_schedule": {"queue": "default"},
    "subscriptions.rebill_reap": {"queue": "default"},
}
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Keep our JSON logging (with correlation ids) in workers instead of Celery's plain text.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(RUN_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "purge-idempotency-keys": {
        "task": "payments.purge_idempotency_keys",
        "schedule": timedelta(hours=1),
    },
    # Payments processing for too long are asked about at their gateway.
    "check-stuck-transactions": {
        "task": "payments.check_stuck_transactions",
        "schedule": timedelta(seconds=env.int("FLOWPAY_STUCK_CHECK_INTERVAL_SECONDS", default=60)),
    },
    # Refunds and inbound gateway events whose task was lost (broker outage, killed worker).
    "refunds-requeue-stalled": {"task": "refunds.requeue_stalled", "schedule": timedelta(minutes=5)},
    "inbound-events-requeue-stalled": {"task": "payments.requeue_stalled_inbound_events", "schedule": timedelta(minutes=5)},
    # Invoice due periods, queue due dunning retries, dispatch drains per billing frequency;
    # the reaper re-queues rebill jobs whose worker stopped heartbeating.
    "rebill-schedule": {
        "task": "subscriptions.rebill_schedule",
        "schedule": timedelta(seconds=env.int("FLOWPAY_REBILL_SCHEDULE_INTERVAL_SECONDS", default=60)),
    },
    "rebill-reap-stale-leases": {
        "task": "subscriptions.rebill_reap",
        "schedule": timedelta(seconds=env.int("FLOWPAY_REBILL_REAP_INTERVAL_SECONDS", default=30)),
    },
    # Seal audit entries old enough into the hash chain (verify_audit_log checks it).
    "audit-seal": {"task": "audit.seal", "schedule": timedelta(seconds=env.int("FLOWPAY_AUDIT_SEAL_INTERVAL_SECONDS", default=60))},
    # Relay outbox events a lost kick left behind; send due webhook retries.
    "webhooks-sweep": {
        "task": "webhooks.sweep",
        "schedule": timedelta(seconds=env.int("FLOWPAY_WEBHOOK_SWEEP_INTERVAL_SECONDS", default=10)),
    },
}

# --- Auth -----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/admin/login/"

# --- i18n / static --------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Without collectstatic (tests, a fresh checkout) fall back to unhashed names.
WHITENOISE_MANIFEST_STRICT = False

# --- REST framework -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["djangorestframework_camel_case.render.CamelCaseJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.StrictCamelCaseJSONParser"],
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["core.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": env.str("FLOWPAY_API_RATE_LIMIT", default="6000/min")},
}
JSON_CAMEL_CASE = {
    # Merchant metadata is returned exactly as sent: its keys are never re-cased.
    "JSON_UNDERSCOREIZE": {"no_underscore_before_number": True, "ignore_fields": ("metadata",)},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "FlowPay API",
    "DESCRIPTION": "Merchant payments API. Amounts are integers in minor units of the currency.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "CAMELIZE_NAMES": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.contrib.djangorestframework_camel_case.camelize_serializer_fields",
        "drf_spectacular.hooks.postprocess_schema_enums",
    ],
    "APPEND_COMPONENTS": {
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
    },
    "SECURITY": [{"bearerAuth": []}],
}

# --- FlowPay --------------------------------------------------------------------------
# Gateways in priority order; the router fails over along this list.
FLOWPAY_GATEWAYS = env.list("FLOWPAY_GATEWAYS", default=["simulator"])
# Idempotency keys are kept at least this long, then purged by beat.
FLOWPAY_IDEMPOTENCY_TTL = timedelta(hours=env.int("FLOWPAY_IDEMPOTENCY_TTL_HOURS", default=24))
# An in-flight idempotent request older than this is presumed dead and may be taken over.
FLOWPAY_IDEMPOTENCY_LOCK_TIMEOUT = timedelta(seconds=env.int("FLOWPAY_IDEMPOTENCY_LOCK_SECONDS", default=120))
FLOWPAY_API_KEY_ENVIRONMENT = env.str("FLOWPAY_API_KEY_ENVIRONMENT", default="test")  # test | live
# Operator switches (primary gateway, fallback/simplified modes) are re-read this often.
FLOWPAY_RUNTIME_REFRESH_SECONDS = env.float("FLOWPAY_RUNTIME_REFRESH_SECONDS", default=2.0)
# Circuit breaker per gateway: open after N failures within the window, probe after the cooldown.
FLOWPAY_BREAKER_FAILURE_THRESHOLD = env.int("FLOWPAY_BREAKER_FAILURE_THRESHOLD", default=5)
FLOWPAY_BREAKER_WINDOW_SECONDS = env.int("FLOWPAY_BREAKER_WINDOW_SECONDS", default=60)
FLOWPAY_BREAKER_COOLDOWN_SECONDS = env.float("FLOWPAY_BREAKER_COOLDOWN_SECONDS", default=30.0)
# Retries of calls that provably did nothing at the gateway, with exponential backoff and jitter.
FLOWPAY_GATEWAY_RETRIES = env.int("FLOWPAY_GATEWAY_RETRIES", default=2)
FLOWPAY_GATEWAY_BACKOFF_BASE_SECONDS = env.float("FLOWPAY_GATEWAY_BACKOFF_BASE_SECONDS", default=0.2)
FLOWPAY_GATEWAY_BACKOFF_CAP_SECONDS = env.float("FLOWPAY_GATEWAY_BACKOFF_CAP_SECONDS", default=2.0)
# A payment processing for longer than this is stuck; beat asks its gateway.
FLOWPAY_STUCK_AFTER_SECONDS = env.int("FLOWPAY_STUCK_AFTER_SECONDS", default=120)
# "No record at the gateway" fails a payment only once its last call is this old: sooner it
# may mean "not visible yet" (search lag, a request still running at the gateway).
FLOWPAY_STUCK_NO_RECORD_GRACE_SECONDS = env.int("FLOWPAY_STUCK_NO_RECORD_GRACE_SECONDS", default=900)
# Audit entries are sealed into the hash chain once this old (longer than any transaction).
FLOWPAY_AUDIT_SEAL_MIN_AGE_SECONDS = env.int("FLOWPAY_AUDIT_SEAL_MIN_AGE_SECONDS", default=300)
# Gateway keys older than this are due for rotation (check_api_key_rotation).
FLOWPAY_KEY_ROTATION_DAYS = env.int("FLOWPAY_KEY_ROTATION_DAYS", default=90)

# --- Logging: JSON lines with the correlation id --------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "core.observability.logging.CorrelationIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
            "rename_fields": {"asctime": "timestamp", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["correlation"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The Stripe SDK logs every request at INFO; our gateway calls are logged and measured already.
        "stripe": {"level": "WARNING"},
        "celery": {"level": LOG_LEVEL},
    },
}

# Prometheus: with several gunicorn workers set PROMETHEUS_MULTIPROC_DIR (see README).
PROMETHEUS_EXPORT_MIGRATIONS = False

# --- Admin theme (django-unfold) --------------------------------------------------------
UNFOLD = {
    "SITE_TITLE": "FlowPay",
    "SITE_HEADER": "FlowPay back-office",
}

# --- Refunds ---------------------------------------------------------
# Largest refund (minor units of the transaction's currency) support may issue alone; above
# it a finance or admin user must approve (four-eyes).
FLOWPAY_SUPPORT_REFUND_LIMIT = env.int("FLOWPAY_SUPPORT_REFUND_LIMIT", default=10000)
# One run at a time sends a refund: its claim lasts this long (longer than the task's time
# limit and the gateway timeouts) before another run may take over with the same key.
FLOWPAY_REFUND_CLAIM_SECONDS = env.float("FLOWPAY_REFUND_CLAIM_SECONDS", default=300.0)
# Gateways keep idempotency keys this long (Stripe: 24 h): an unknown-outcome refund whose key
# is older is looked up at the gateway instead of being sent again.
FLOWPAY_REFUND_KEY_RETENTION_SECONDS = env.float("FLOWPAY_REFUND_KEY_RETENTION_SECONDS", default=86400.0)

# --- Inbound gateway webhooks ---------------------------------------------------
# A failed inbound event is retried this many times (with backoff), then waits for replay_webhook_events.
FLOWPAY_INBOUND_EVENT_MAX_ATTEMPTS = env.int("FLOWPAY_INBOUND_EVENT_MAX_ATTEMPTS", default=5)
# An event left processing by a dead worker is claimable again after this long (> the task time limit).
FLOWPAY_INBOUND_EVENT_LEASE_SECONDS = env.int("FLOWPAY_INBOUND_EVENT_LEASE_SECONDS", default=600)

# --- Subscriptions and the rebill scheduler ------------------------
# Dunning: retries of a declined invoice, in days after its first failed charge.
FLOWPAY_DUNNING_SCHEDULE_DAYS = env.str("FLOWPAY_DUNNING_SCHEDULE_DAYS", default="1,3,5,7")
# Decline codes not retried with the same payment method (closed account, lost card, ...).
FLOWPAY_DUNNING_HARD_DECLINE_CODES = env.list(
    "FLOWPAY_DUNNING_HARD_DECLINE_CODES",
    default=[
        "card_declined", "expired_card", "fraudulent", "incorrect_number", "incorrect_cvc", "invalid_account",
        "lost_card", "stolen_card", "pickup_card", "restricted_card", "do_not_honor", "account_closed",
        "card_not_supported", "currency_not_supported", "transaction_not_allowed", "new_account_information_available",
    ],
)
# A leased job whose worker has not heartbeated for this long is re-queued by the reaper.
FLOWPAY_REBILL_LEASE_SECONDS = env.float("FLOWPAY_REBILL_LEASE_SECONDS", default=60.0)
FLOWPAY_REBILL_HEARTBEAT_SECONDS = env.float("FLOWPAY_REBILL_HEARTBEAT_SECONDS", default=10.0)
# Subscriptions invoiced and jobs leased per batch.
FLOWPAY_REBILL_BATCH_SIZE = env.int("FLOWPAY_REBILL_BATCH_SIZE", default=100)
# Non-payment failures (exceptions, bad data, stale leases) before a job is dead-lettered.
FLOWPAY_REBILL_MAX_ATTEMPTS = env.int("FLOWPAY_REBILL_MAX_ATTEMPTS", default=5)
# Backoff after a non-payment failure: this many seconds, doubled each time, at most an hour.
FLOWPAY_REBILL_RETRY_SECONDS = env.float("FLOWPAY_REBILL_RETRY_SECONDS", default=60.0)
# Drain messages sent at most per (queue, merchant) shard in one dispatch.
FLOWPAY_REBILL_MAX_PARALLEL_PER_SHARD = env.int("FLOWPAY_REBILL_MAX_PARALLEL_PER_SHARD", default=4)
# Prefix of the rebill queue names (tests use private queues; empty in production).
FLOWPAY_REBILL_QUEUE_PREFIX = env.str("FLOWPAY_REBILL_QUEUE_PREFIX", default="")

# --- Merchant webhooks ------------------------------------------------
# Deliveries retry with exponential backoff (base, doubling, capped) and jitter for about
# three days, then are dead-lettered (re-sendable through the API or webhook_deliveries).
FLOWPAY_WEBHOOK_BACKOFF_BASE_SECONDS = env.float("FLOWPAY_WEBHOOK_BACKOFF_BASE_SECONDS", default=60.0)
FLOWPAY_WEBHOOK_BACKOFF_CAP_SECONDS = env.float("FLOWPAY_WEBHOOK_BACKOFF_CAP_SECONDS", default=12 * 3600.0)
FLOWPAY_WEBHOOK_RETRY_WINDOW_SECONDS = env.int("FLOWPAY_WEBHOOK_RETRY_WINDOW_SECONDS", default=3 * 24 * 3600)
FLOWPAY_WEBHOOK_TIMEOUT_SECONDS = env.float("FLOWPAY_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Endpoints on private, loopback or plain-http addresses are refused unless this is on
# (it is in DEBUG, for make run and local tests).
FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS = env.bool("FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS", default=DEBUG)
