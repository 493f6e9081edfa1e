"""Paths, environment, secret key, debug, apps, middleware, templates, static files, i18n.

Defaults are for `make run` on a laptop: SQLite in WAL mode, a filesystem Celery broker
under .run/, DEBUG on. Production sets DATABASE_URL, REDIS_URL and SECRET_KEY; with DEBUG
off a missing SECRET_KEY is an error, never a default (core/checks.py checks the rest of
what production needs). Every setting is listed in docs/configuration.md.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

# Defaults live at each call site (not in Env(...) schemes) so each one is written once.
env = environ.Env()

# Local state of `make run`: SQLite database, filesystem broker, file cache, beat schedule.
RUN_DIR = Path(env.str("FLOWPAY_RUN_DIR", default=str(BASE_DIR / ".run")))

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        # Raised here rather than by a system check: gunicorn and Celery run no checks, and
        # no process may start with a guessable key.
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (a long random string).")
    SECRET_KEY = "insecure-dev-only-key-do-not-use-in-production"  # DEBUG only

INSTALLED_APPS = [
    # unfold's basic config: the admin site is FlowPay's own (backoffice.admin_site), which is
    # both unfold's and django-otp's, installed as the default site by FlowPayAdminConfig.
    "unfold.apps.BasicAppConfig",
    "unfold.contrib.filters",
    "backoffice.admin_config.FlowPayAdminConfig",
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
    "audit.field_history.FieldHistoryConfig",  # django-auditlog, named apart from FlowPay's audit log
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    # Local apps, from the shared kernel down to the back office (the layers of `make lint`).
    "core",
    "audit",
    "accounts",
    "webhooks",
    "gateways",
    "ledger",
    "fraud",
    "payments",
    "refunds",
    "subscriptions",
    "reconciliation",
    "gateway_events",
    "backoffice",
    "backoffice.dashboard",
    "backoffice.dashboard.exports",
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
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): signed in with a second factor
    "backoffice.staff.middleware.StaffMfaRequiredMiddleware",  # FLOWPAY_STAFF_MFA_PATHS need a verified session
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.ModelChangeLogMiddleware",  # django-auditlog's, with the real client address
    "axes.middleware.AxesMiddleware",  # lockouts (django-axes); the sign-in page renders them itself
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

# --- Admin theme (django-unfold) --------------------------------------------------------
UNFOLD = {
    "SITE_TITLE": "FlowPay",
    "SITE_HEADER": "FlowPay back-office",
    # The account menu: personal staff API tokens (issued after a fresh second factor).
    "ACCOUNT": {"navigation": [{"title": "Staff tokens", "link": "/admin/staff/tokens/"}]},
    # The home page: the overview for finance, operators, auditors and admins (backoffice.dashboard).
    "DASHBOARD_CALLBACK": "backoffice.dashboard.overview_views.dashboard_callback",
    # Grouped by what staff do (Money, Customers, Subscriptions, Operations, Compliance), each
    # link shown only to who may open it (backoffice.dashboard.sidebar).
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": False,
        "navigation": "backoffice.dashboard.sidebar.sidebar_navigation",
    },
}
