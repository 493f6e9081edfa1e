"""Logging (JSON lines with the correlation id), Prometheus metrics, and who may read them."""

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
        # django-axes logs each successful sign-in at INFO (the audit log has them); failures and lockouts are WARNING.
        "axes": {"level": "WARNING"},
    },
}

# Prometheus: with several gunicorn workers set PROMETHEUS_MULTIPROC_DIR (see README).
PROMETHEUS_EXPORT_MIGRATIONS = False

# Who may read /metrics and the detailed /payment/health (core/observability/access.py): a
# client in these networks (CIDRs; by default loopback and the private ranges, where
# Prometheus and the probes run), or a request with `Authorization: Bearer <token>`. Empty
# networks: the token only; empty token: no token is accepted.
FLOWPAY_METRICS_ALLOWED_NETWORKS = env.list(
    "FLOWPAY_METRICS_ALLOWED_NETWORKS",
    default=["127.0.0.0/8", "::1", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
)
FLOWPAY_METRICS_TOKEN = env.str("FLOWPAY_METRICS_TOKEN", default="")

# OpenTelemetry tracing (core/observability/tracing.py): on only when an OTLP endpoint is set
# (the exporter also reads OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TIMEOUT and the
# sampler's OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG from the environment itself).
OTEL_EXPORTER_OTLP_ENDPOINT = env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
OTEL_SERVICE_NAME = env.str("OTEL_SERVICE_NAME", default="payment-service")
