"""Child processes for tests that need a second Django process, a real Celery worker or the
production web server (gunicorn with docker/gunicorn.conf.py): they see this test's
database, Redis and cache namespace."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.db import connection


def sibling_env(**overrides: str) -> dict:
    """The environment of a child process sharing this test's database (committed data:
    use transaction=True tests), Redis and cache key prefix."""
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "DEBUG": "0",
        "SECRET_KEY": "test",
        **overrides,
    }


def start_celery_worker(queues: str, *, name: str | None = None, log=None, **env: str) -> subprocess.Popen:
    """A real Celery worker (solo pool) consuming only `queues` (use private queue names)."""
    command = [sys.executable, "-m", "celery", "-A", "flowpay", "worker", "--pool=solo", "-Q", queues,
               "--loglevel=WARNING", "--without-heartbeat", "--without-mingle", "--without-gossip"]
    if name:
        command += ["-n", f"{name}@%h"]
    return subprocess.Popen(
        command, cwd=Path(settings.BASE_DIR), env=sibling_env(**env),
        stdout=log if log is not None else subprocess.DEVNULL, stderr=subprocess.STDOUT if log is not None else subprocess.PIPE,
    )


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, *, workers: int = 1, ready_seconds: float = 60, **env: str) -> subprocess.Popen:
    """gunicorn serving FlowPay on 127.0.0.1:`port` with the image's configuration, once it
    answers /healthz (stop it with stop_process)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "flowpay.wsgi:application", "-c", "docker/gunicorn.conf.py"],
        cwd=Path(settings.BASE_DIR), env=sibling_env(PORT=str(port), WEB_CONCURRENCY=str(workers), **env),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + ready_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}: {process.stderr.read().decode()[-2000:]}")
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    stop_process(process)
    raise RuntimeError("gunicorn did not answer /healthz in time")
