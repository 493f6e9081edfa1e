"""Child processes for tests that need a second Django process or a real Celery worker:
they see this test's database, Redis and cache namespace."""

import os
import subprocess
import sys
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
