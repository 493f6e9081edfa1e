"""Load generators, bounded in count and time, only ever to 127.0.0.1.

- wrk (Debian's package) with bench/load.lua: closed-loop load on C connections for a fixed
  duration (the create-payment, replay and bare rows).
- pool_run: a Python load generator for a fixed list of distinct requests (capture and
  refund of given payments), for rows where each request targets its own URL.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import shutil
import statistics
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

LUA_SCRIPT = Path(__file__).resolve().parent / "load.lua"


_DIGITS_TO_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def letter_key(prefix: str = "bench") -> str:
    """A unique Idempotency-Key without digits: a long digit run could pass the Luhn check,
    and the card-data guard refuses a request with a card number anywhere (headers too)."""
    return f"{prefix}-{uuid.uuid4().hex.translate(_DIGITS_TO_LETTERS)}"


def _check_local(url: str) -> urlsplit:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"load goes only to this machine's loopback, not {parts.hostname!r}")
    return parts


@dataclass
class HttpResult:
    """One measured arm of an HTTP row."""

    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def metrics(self) -> dict[str, float]:
        return {"rps": self.rps, "p50_ms": self.p50_ms, "p90_ms": self.p90_ms, "p99_ms": self.p99_ms,
                "mean_ms": self.mean_ms, "requests": self.requests, "non_2xx": self.non_2xx,
                "socket_errors": self.socket_errors}


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk_run(*, url: str, path: str, body: dict, api_keys: list[str], connections: int, seconds: float,
            idempotency: str = "unique", idempotency_key: str = "", timeout_s: int = 10) -> HttpResult:
    """wrk -t C -c C -d seconds (one connection and one API key per thread)."""
    _check_local(url)
    env = {
        **os.environ, "BENCH_API_KEYS": ",".join(api_keys), "BENCH_PATH": path, "BENCH_BODY": json.dumps(body),
        "BENCH_IDEMPOTENCY": idempotency, "BENCH_IDEMPOTENCY_KEY": idempotency_key, "BENCH_RUN_ID": letter_key("run")[4:16],
    }
    duration = max(1, round(seconds))
    command = ["wrk", "-t", str(connections), "-c", str(connections), "-d", f"{duration}s", "--timeout", f"{timeout_s}s",
               "-s", str(LUA_SCRIPT), url]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration + timeout_s + 30, check=False)
    line = next((row for row in completed.stdout.splitlines() if row.startswith("BENCH_RESULT ")), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stdout[-2000:]} {completed.stderr[-2000:]}")
    raw = json.loads(line.removeprefix("BENCH_RESULT "))
    return HttpResult(
        requests=raw["requests"], seconds=raw["duration_us"] / 1e6, non_2xx=raw["non_2xx"],
        socket_errors=raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"],
        p50_ms=raw["p50_us"] / 1000, p90_ms=raw["p90_us"] / 1000, p99_ms=raw["p99_us"] / 1000, mean_ms=raw["mean_us"] / 1000,
    )


@dataclass
class PoolRequest:
    path: str
    body: dict
    api_key: str
    idempotency_key: str = field(default_factory=letter_key)


@dataclass
class PoolResult:
    started: float  # time.monotonic() when the first request was sent
    finished: float
    latencies_ms: list[float]
    statuses: dict[int, int]
    bodies: list[dict | None]  # in the order of the requests

    def http_result(self, *, ok: tuple[int, ...] = (200, 201)) -> HttpResult:
        latencies = sorted(self.latencies_ms)
        return HttpResult(
            requests=len(latencies), seconds=self.finished - self.started,
            non_2xx=sum(count for status, count in self.statuses.items() if status not in ok), socket_errors=self.statuses.get(0, 0),
            p50_ms=_percentile(latencies, 50), p90_ms=_percentile(latencies, 90), p99_ms=_percentile(latencies, 99),
            mean_ms=statistics.fmean(latencies) if latencies else 0.0,
        )


def _percentile(ordered: list[float], pct: float) -> float:
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def pool_run(*, url: str, requests: list[PoolRequest], connections: int, timeout_s: float = 30,
             deadline_s: float = 300) -> PoolResult:
    """Send every request once over `connections` keep-alive connections (one thread each)
    and wait for every answer; stops early after `deadline_s` seconds."""
    parts = _check_local(url)
    todo: queue.Queue = queue.Queue()
    for index, request in enumerate(requests):
        todo.put((index, request))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    bodies: list[dict | None] = [None] * len(requests)
    lock = threading.Lock()
    stop_at = time.monotonic() + deadline_s

    def worker() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
        try:
            while time.monotonic() < stop_at:
                try:
                    index, request = todo.get_nowait()
                except queue.Empty:
                    return
                payload = json.dumps(request.body).encode()
                headers = {"Authorization": f"Bearer {request.api_key}", "Content-Type": "application/json",
                           "Idempotency-Key": request.idempotency_key}
                sent = time.perf_counter()
                try:
                    conn.request("POST", request.path, body=payload, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    status = response.status
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
                    status, data = 0, b""
                elapsed = (time.perf_counter() - sent) * 1000
                try:
                    body = json.loads(data) if data else None
                except ValueError:
                    body = None
                with lock:
                    latencies.append(elapsed)
                    statuses[status] = statuses.get(status, 0) + 1
                    bodies[index] = body
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, min(connections, len(requests))))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return PoolResult(started=started, finished=time.monotonic(), latencies_ms=latencies, statuses=statuses, bodies=bodies)
