"""The correlation id of the work in progress (an HTTP request, a Celery task)."""

import contextvars

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)


def get_correlation_id() -> str | None:
    return correlation_id.get()
