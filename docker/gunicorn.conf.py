"""gunicorn settings for FlowPay, from the environment.

PORT                  port to bind on 0.0.0.0 (3000, the runbook's localhost:3000)
WEB_CONCURRENCY       worker processes (4)
GUNICORN_THREADS      threads per worker (1)
GUNICORN_TIMEOUT      seconds before a silent worker is killed and restarted (30)
FORWARDED_ALLOW_IPS   addresses of the load balancers whose X-Forwarded-* headers are
                      trusted, comma-separated or "*" (127.0.0.1). TLS ends at the load
                      balancer; Django reads X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER).
OTEL_EXPORTER_OTLP_ENDPOINT  set it to trace requests (core/observability/tracing.py); each
                      worker starts tracing after the fork (post_fork).
PROMETHEUS_MULTIPROC_DIR  set it (to an empty, writable directory) whenever there is more
                      than one worker, so that /metrics adds up every worker's counters.
"""

import glob
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '3000')}"
# Workers and threads: 4 sync workers × 1 thread, two per core on the 2-core benchmark
# machine, chosen with make bench-sweep (bench/README.md: 2/4/8 workers × 1/2/4 threads,
# create payment then the bare endpoint for 10 s each on 16 connections, twice, with the
# two-transaction create path). A create request is mostly Python CPU (about 15 ms of it
# against 5 ms of PostgreSQL's and a few ms waiting on its three commits and 18 statements),
# so a second process per core fills the waits; threads do not help it (they share one
# GIL) while they do help the bare endpoint, which only waits: 4 × 1 gave create payment
# its best share of the bare endpoint's throughput in both sweeps (0.24 and 0.20, against
# 0.18–0.19 for 2 × 1 and 0.09–0.16 with threads) and create payment's throughput was
# within the machine's drift of the best. More processes add memory and PostgreSQL
# connections (8 × 4 is 32 of its default 100) without adding throughput. Scale with the
# cores: about two workers per core, more containers rather than more threads.
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Worker heartbeat files in memory, not on a possibly slow container filesystem.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# No gunicornc control socket: the orchestrator manages the processes, and the default
# path ($HOME/.gunicorn) is not writable for the image's non-root user.
control_socket_disable = True

# Access log on stdout. The request line is logged as method + path only (%(U)s), never
# with the query string (%(r)s or %(q)s): query strings are untrusted input and may carry
# personal or card data. The X-Request-ID response header joins it to the JSON app logs.
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s'

_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def on_starting(server):
    """Start from an empty metrics directory: files left by an earlier run would be summed in."""
    if _MULTIPROC_DIR:
        os.makedirs(_MULTIPROC_DIR, exist_ok=True)
        for path in glob.glob(os.path.join(_MULTIPROC_DIR, "*.db")):
            os.remove(path)


def child_exit(server, worker):
    """Let prometheus_client drop a dead worker's live gauges (its counters are kept)."""
    if _MULTIPROC_DIR:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_fork(server, worker):
    """Start OpenTelemetry tracing in each worker, after the fork: the span exporter's thread
    would not survive it. Without an OTLP endpoint nothing is imported or instrumented. It
    runs before the worker loads the application, so Django's tracing middleware is in place
    for the first request."""
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flowpay.settings")
        django.setup()
        from core.observability.tracing import tracing_start

        tracing_start(process="web")
