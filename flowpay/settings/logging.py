"""Logging (JSON lines with the correlation id) and Prometheus metrics."""

from flowpay.settings.base import env

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
