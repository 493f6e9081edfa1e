"""Carries the correlation id from the publisher to the task through message headers, and
starts tracing in worker and beat processes (core/observability/tracing.py)."""

from celery.signals import beat_init, before_task_publish, task_postrun, task_prerun, worker_init, worker_process_init

from core.observability.context import correlation_id
from core.observability.tracing import tracing_start
from core.runtime import follow_db_connection_refresh

HEADER = "correlation_id"


@before_task_publish.connect
def _attach_correlation_id(headers: dict | None = None, **_: object) -> None:
    value = correlation_id.get()
    if value and headers is not None:
        headers.setdefault(HEADER, value)


@task_prerun.connect
def _restore_correlation_id(task=None, task_id: str | None = None, **_: object) -> None:
    value = getattr(task.request, HEADER, None) if task is not None else None
    task.request._flowpay_cid_token = correlation_id.set(value or task_id)


@task_prerun.connect
def _follow_runtime_switches(**_: object) -> None:
    # Workers follow refresh-db-connections between tasks, like web processes between requests.
    follow_db_connection_refresh()


@task_postrun.connect
def _clear_correlation_id(task=None, **_: object) -> None:
    token = getattr(task.request, "_flowpay_cid_token", None) if task is not None else None
    if token is not None:
        correlation_id.reset(token)


# Tracing starts after the fork: in each prefork child, or in the worker's own process for
# pools that do not fork (solo, threads). It does nothing unless an OTLP endpoint is set.
@worker_process_init.connect
def _start_tracing_in_pool_process(**_: object) -> None:
    tracing_start(process="worker")


@worker_init.connect
def _start_tracing_in_non_forking_worker(sender=None, **_: object) -> None:
    pool = getattr(sender, "pool_cls", None)
    module = pool if isinstance(pool, str) else getattr(pool, "__module__", "")
    if "prefork" not in str(module):
        tracing_start(process="worker")


@beat_init.connect
def _start_tracing_in_beat(**_: object) -> None:
    tracing_start(process="beat")
