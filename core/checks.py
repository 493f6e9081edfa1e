"""System checks of the settings: what production cannot run with, and values no process can
work with. They run with `manage.py check`, `migrate` and `runserver`; production runs
`migrate` before starting gunicorn, the worker and beat, which run no checks themselves
(hence base.py also refuses to load without SECRET_KEY when DEBUG is off).

Ids flowpay.E100 and up (the gateway checks in gateways/registry.py use E001-E003).
"""

import re

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from core.network import parse_networks

# Counts and periods that make no sense at 0 (a batch of nothing, a beat task every 0 s).
AT_LEAST_ONE = (
    "FLOWPAY_BREAKER_FAILURE_THRESHOLD",
    "FLOWPAY_BREAKER_WINDOW_SECONDS",
    "FLOWPAY_INBOUND_EVENT_MAX_ATTEMPTS",
    "FLOWPAY_KEY_ROTATION_DAYS",
    "FLOWPAY_REBILL_BATCH_SIZE",
    "FLOWPAY_REBILL_MAX_ATTEMPTS",
    "FLOWPAY_REBILL_MAX_PARALLEL_PER_SHARD",
)
API_KEY_ENVIRONMENTS = ("test", "live")
# CIDR lists: one bad entry would make every request's client address unreadable.
NETWORK_LISTS = ("FLOWPAY_TRUSTED_PROXIES", "FLOWPAY_METRICS_ALLOWED_NETWORKS")
# Staff sign-in settings and the bounds PCI DSS v4.0 sets them (8.3.4, 8.2.8), or the
# database does (a staff token lives 30 days at most): (setting, lowest, highest).
STAFF_SIGN_IN_BOUNDS = (
    ("FLOWPAY_STAFF_LOCKOUT_FAILURES", 1, 10),
    ("FLOWPAY_STAFF_LOCKOUT_MINUTES", 30, None),
    ("FLOWPAY_STAFF_SESSION_IDLE_SECONDS", 60, 900),
    ("FLOWPAY_STAFF_TOKEN_MAX_DAYS", 1, 30),
    ("FLOWPAY_STAFF_TOKEN_DEFAULT_HOURS", 1, 30 * 24),
)
# DRF's rate syntax: requests per second, minute, hour or day (100/s, 6000/min).
RATE = re.compile(r"^\d+/[smhd]")


@register()
def check_production_settings(app_configs, **kwargs) -> list[Error]:
    """With DEBUG off: a real SECRET_KEY, a PostgreSQL database from DATABASE_URL, hosts."""
    if settings.DEBUG:
        return []
    errors = []
    try:
        secret_key = settings.SECRET_KEY
    except ImproperlyConfigured:  # Django refuses to read an empty key
        secret_key = ""
    if not secret_key or secret_key.startswith(("insecure-", "django-insecure-")):
        errors.append(Error(
            "SECRET_KEY is not set, or is a development key, while DEBUG is off.",
            hint="Set SECRET_KEY to a long random string: python -c 'import secrets; print(secrets.token_urlsafe(50))'",
            id="flowpay.E100",
        ))
    database = settings.DATABASES.get("default") or {}
    if not str(database.get("ENGINE", "")).endswith(".postgresql") or not database.get("NAME"):
        errors.append(Error(
            "DATABASES['default'] is not a PostgreSQL database while DEBUG is off "
            f"(engine {database.get('ENGINE') or 'none'!r}).",
            hint="Set DATABASE_URL, e.g. postgres://user:password@host:5432/flowpay (SQLite is for `make run`, with DEBUG on).",
            id="flowpay.E101",
        ))
    if not settings.ALLOWED_HOSTS:
        errors.append(Error(
            "ALLOWED_HOSTS is empty while DEBUG is off: every request would be refused.",
            hint="Set ALLOWED_HOSTS to the comma-separated host names FlowPay is served on.",
            id="flowpay.E102",
        ))
    return errors


@register()
def check_setting_values(app_configs, **kwargs) -> list[Error]:
    """Values FlowPay cannot work with, whatever DEBUG is."""
    errors = []
    for name in sorted(n for n in dir(settings) if n.startswith("FLOWPAY_")):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        minimum = 1 if name in AT_LEAST_ONE or name.endswith("_INTERVAL_SECONDS") else 0
        if value < minimum:
            errors.append(Error(f"{name} is {value}; it must be at least {minimum}.", id="flowpay.E103"))
    # The active beat renews its lock once per loop: a lock that expires sooner lets a standby
    # take over while the active one still sends, and every periodic task would go out twice.
    if settings.FLOWPAY_BEAT_LOCK_TIMEOUT_SECONDS <= 2 * settings.CELERY_BEAT_MAX_LOOP_INTERVAL:
        errors.append(Error(
            f"FLOWPAY_BEAT_LOCK_TIMEOUT_SECONDS ({settings.FLOWPAY_BEAT_LOCK_TIMEOUT_SECONDS}) must be more than twice "
            f"FLOWPAY_BEAT_MAX_LOOP_INTERVAL_SECONDS ({settings.CELERY_BEAT_MAX_LOOP_INTERVAL}).", id="flowpay.E108",
        ))
    days = settings.FLOWPAY_DUNNING_SCHEDULE_DAYS
    if not days or any(not isinstance(day, int) or day < 0 for day in days):
        errors.append(Error(
            f"FLOWPAY_DUNNING_SCHEDULE_DAYS is {days!r}; it must list non-negative days.",
            hint="e.g. FLOWPAY_DUNNING_SCHEDULE_DAYS=1,3,5,7",
            id="flowpay.E104",
        ))
    if settings.FLOWPAY_API_KEY_ENVIRONMENT not in API_KEY_ENVIRONMENTS:
        errors.append(Error(
            f"FLOWPAY_API_KEY_ENVIRONMENT is {settings.FLOWPAY_API_KEY_ENVIRONMENT!r}; it must be test or live.",
            id="flowpay.E105",
        ))
    if not RATE.match(str(settings.FLOWPAY_API_RATE_LIMIT)):
        errors.append(Error(
            f"FLOWPAY_API_RATE_LIMIT is {settings.FLOWPAY_API_RATE_LIMIT!r}; it must be requests per period.",
            hint="e.g. 100/s or 6000/min",
            id="flowpay.E106",
        ))
    for name in NETWORK_LISTS:
        try:
            parse_networks(tuple(getattr(settings, name)))
        except (TypeError, ValueError) as exc:
            errors.append(Error(f"{name} is {getattr(settings, name)!r}: {exc}.", hint="a comma-separated list of CIDRs, "
                                "e.g. 10.0.0.0/8,fd00::/8", id="flowpay.E107"))
    return errors


@register()
def check_staff_sign_in(app_configs, **kwargs) -> list[Error]:
    """Staff sign-in settings that would break a PCI DSS rule, or leave the admin without
    its second factor."""
    errors = []
    for name, lowest, highest in STAFF_SIGN_IN_BOUNDS:
        value = getattr(settings, name)
        if value < lowest or (highest is not None and value > highest):
            bounds = f"at least {lowest}" if highest is None else f"between {lowest} and {highest}"
            errors.append(Error(f"{name} is {value}; it must be {bounds}.", id="flowpay.E108"))
    if settings.FLOWPAY_STAFF_TOKEN_DEFAULT_HOURS > settings.FLOWPAY_STAFF_TOKEN_MAX_DAYS * 24:
        errors.append(Error("FLOWPAY_STAFF_TOKEN_DEFAULT_HOURS is longer than FLOWPAY_STAFF_TOKEN_MAX_DAYS allows.", id="flowpay.E108"))
    if not any(path.rstrip("/") == "/admin" for path in settings.FLOWPAY_STAFF_MFA_PATHS):
        errors.append(Error("FLOWPAY_STAFF_MFA_PATHS must include /admin/: the admin needs the second factor.", id="flowpay.E108"))
    return errors
