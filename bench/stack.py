"""The processes a benchmark run starts, all on 127.0.0.1 and all its own: gunicorn serving
bench.settings (FlowPay plus the bare endpoints) and real Celery workers, each with the
environment of bench_env(). Every process started here is stopped by the object that
started it (by pid, never by name).

The environment: DEBUG=0, PostgreSQL database BENCH_DATABASE_URL (default flowpay_bench),
Redis BENCH_REDIS_URL (default DB 11), FLOWPAY_GATEWAYS=simulator without injected faults.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/flowpay_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
GUNICORN_CONF = ROOT / "docker" / "gunicorn.conf.py"


def bench_env(**overrides: str) -> dict[str, str]:
    """The environment of every process of the run (servers, workers, manage.py, the harness)."""
    env = {
        **os.environ,
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-only-secret-key-not-for-production",
        "FLOWPAY_GATEWAYS": "simulator",
        "LOG_LEVEL": "WARNING",  # the access log still records every request, as in production
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    for name in ("CACHE_URL", "CELERY_BROKER_URL", "CACHE_KEY_PREFIX", "FLOWPAY_API_RATE_LIMIT"):
        env.pop(name, None)  # the bench's Redis and production's rate limit, whatever the shell says
    env.update(overrides)
    return env


def configure_harness() -> None:
    """Point this process at the bench database and Redis and set Django up."""
    env = bench_env()
    for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY", "FLOWPAY_GATEWAYS", "LOG_LEVEL"):
        os.environ[name] = env[name]
    for name in ("CACHE_URL", "CELERY_BROKER_URL", "CACHE_KEY_PREFIX", "FLOWPAY_API_RATE_LIMIT"):
        os.environ.pop(name, None)
    import django

    django.setup()


def _admin_connection():
    """A connection to the server's maintenance database (postgres)."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    if "bench" not in db["NAME"]:
        raise RuntimeError(f"the benchmark runs only on a database named *bench*, not {db['NAME']!r}")
    return psycopg.connect(host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"] or None,
                           dbname="postgres", autocommit=True)


@contextmanager
def run_lock(*, wait_seconds: float = 900, log=print):
    """One benchmark run at a time per bench database (two runs would wipe each other's data
    and flush each other's Redis DB): a session advisory lock on the maintenance database,
    keyed by the bench database's name, held until the run ends. A second run waits for it,
    then gives up; runs side by side need their own BENCH_DATABASE_URL and BENCH_REDIS_URL."""
    from django.conf import settings

    name = settings.DATABASES["default"]["NAME"]
    key = zlib.crc32(f"flowpay-bench:{name}".encode())
    admin = _admin_connection()
    try:
        deadline = time.monotonic() + wait_seconds
        waiting = False
        while not admin.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"another benchmark run has held database {name!r} for over {wait_seconds:.0f} s")
            if not waiting:
                log(f"another benchmark run is using database {name!r}; waiting for it to finish")
                waiting = True
            time.sleep(2)
        yield
    finally:
        admin.close()  # releases the lock


def ensure_database() -> None:
    """Create the bench database if it is missing, then apply the migrations it lacks."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    db = settings.DATABASES["default"]
    admin = _admin_connection()
    with admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone() is None:
            admin.execute(f'CREATE DATABASE "{db["NAME"]}"')
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        call_command("migrate", interactive=False, verbosity=0)


def redis_flush() -> None:
    """Empty the bench's Redis database: broker queues (outbox kicks, deliveries), cache,
    simulator faults, rate-limit histories. Only ever the bench's own database number."""
    import redis
    from django.conf import settings

    if settings.REDIS_URL != bench_env()["REDIS_URL"]:
        raise RuntimeError("refusing to flush a Redis database that is not the bench's")
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen, *, timeout: float = 20) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class Gunicorn:
    """gunicorn with docker/gunicorn.conf.py (the production configuration), bound to
    127.0.0.1 on a free port, `workers` sync processes × `threads` (gthread when > 1)."""

    def __init__(self, *, workers: int, threads: int, log_dir: Path, settings_module: str = "bench.settings"):
        self.workers, self.threads, self.settings_module = workers, threads, settings_module
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        suffix = "" if settings_module == "bench.settings" else "-" + settings_module.rsplit(".", 1)[-1]
        self.log_path = log_dir / f"gunicorn-{workers}w{threads}t{suffix}.log"
        self.process: subprocess.Popen | None = None
        self._metrics_dir = tempfile.TemporaryDirectory(prefix="bench-metrics-")

    def start(self, *, timeout: float = 60) -> Gunicorn:
        return self.launch().wait_ready(timeout=timeout)

    def launch(self) -> Gunicorn:
        env = bench_env(WEB_CONCURRENCY=str(self.workers), GUNICORN_THREADS=str(self.threads),
                        PROMETHEUS_MULTIPROC_DIR=self._metrics_dir.name, DJANGO_SETTINGS_MODULE=self.settings_module)
        command = [PYTHON, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--bind", f"127.0.0.1:{self.port}", "flowpay.wsgi:application"]
        log = open(self.log_path, "ab")  # noqa: SIM115 (the process holds it; closed when it exits)
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def wait_ready(self, *, timeout: float = 60) -> Gunicorn:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /healthz within {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None
        self._metrics_dir.cleanup()

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


class CeleryWorker:
    """A real `celery -A flowpay worker` (solo pool: one task at a time, one process)
    consuming `queues`, under bench.settings."""

    def __init__(self, *, queues: str, name: str, log_dir: Path, **env: str):
        self.queues, self.name, self.env = queues, name, env
        self.hostname = f"{name}@bench"
        self.log_path = log_dir / f"celery-{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self, *, timeout: float = 60) -> CeleryWorker:
        return self.launch().wait_ready(timeout=timeout)

    def launch(self) -> CeleryWorker:
        command = [PYTHON, "-m", "celery", "-A", "flowpay", "worker", "--pool=solo", "-Q", self.queues, "-n", self.hostname,
                   "--loglevel=WARNING", "--without-heartbeat", "--without-mingle", "--without-gossip"]
        log = open(self.log_path, "ab")  # noqa: SIM115 (the process holds it)
        self.process = subprocess.Popen(command, cwd=ROOT, env=bench_env(**self.env), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    def wait_ready(self, *, timeout: float = 60) -> CeleryWorker:
        from flowpay.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker {self.name} exited with {self.process.returncode}; see {self.log_path}")
            if app.control.ping(destination=[self.hostname], timeout=0.5):
                return self
        raise RuntimeError(f"celery worker {self.name} did not answer a ping within {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process, timeout=30)
            self.process = None

    def restart(self) -> None:
        """Kill (a drain may run for minutes; its leases are wiped with the tables) and start again."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
        self.start()


@contextmanager
def celery_workers(count: int, *, queues: str, log_dir: Path, prefix: str = "worker", **env: str):
    workers = [CeleryWorker(queues=queues, name=f"{prefix}{i + 1}", log_dir=log_dir, **env) for i in range(count)]
    try:
        for worker in workers:
            worker.launch()
        for worker in workers:
            worker.wait_ready()
        yield workers
    finally:
        for worker in workers:
            worker.stop()


def purge_queues(*queues: str) -> None:
    """Drop the messages left in broker queues (outbox kicks and deliveries no worker of the
    row consumes), so that they neither pile up nor get run by a later row's worker."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    for queue in queues:
        # kombu's Redis transport keeps a queue in a list per priority: "q", "q\x06\x163", …
        client.delete(queue, *[f"{queue}\x06\x16{p}" for p in range(1, 10)])
