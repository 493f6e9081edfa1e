import logging

from core.carddata import contains_card_number, mask_card_numbers
from core.observability.context import get_correlation_id
from core.observability.tracing import current_trace_id


class CorrelationIdFilter(logging.Filter):
    """Adds `correlation_id` to every record so JSON log lines can be joined across web,
    Celery and gateway calls (and, while tracing is on, `trace_id`, joining them to the
    trace), and reduces a logged request to its method and path: query
    strings and bodies are untrusted input and never reach the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if request is not None and hasattr(request, "path"):
            if not getattr(record, "correlation_id", None):
                record.correlation_id = getattr(request, "correlation_id", None)
            record.request = f"{request.method} {request.path}"
        if not getattr(record, "correlation_id", None):
            record.correlation_id = get_correlation_id()
        trace_id = current_trace_id()
        if trace_id:
            record.trace_id = trace_id
        # Last line of defence: a card number that reached a log call (e.g. in a URL of the
        # development server's access log) is masked before the line is written.
        message = record.getMessage()
        if contains_card_number(message):
            record.msg, record.args = mask_card_numbers(message), ()
        return True
