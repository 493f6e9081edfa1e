import logging

from flowpay.observability.context import get_correlation_id


class CorrelationIdFilter(logging.Filter):
    """Adds `correlation_id` to every record so JSON log lines can be joined across web,
    Celery and gateway calls, and reduces a logged request to its method and path: query
    strings and bodies are untrusted input and never reach the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if request is not None and hasattr(request, "path"):
            if not getattr(record, "correlation_id", None):
                record.correlation_id = getattr(request, "correlation_id", None)
            record.request = f"{request.method} {request.path}"
        if not getattr(record, "correlation_id", None):
            record.correlation_id = get_correlation_id()
        return True
