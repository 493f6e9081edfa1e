"""Two beat processes at once (celery-redbeat, its schedule and lock in Redis): exactly one
sends, every periodic task goes out once per period, and when the active beat is killed the
standby takes over within the lock timeout and carries on the same schedule, without a burst
of catch-up sends.

The schedule is accelerated through the interval settings (seconds instead of minutes). The
beats publish to an in-memory broker (they only send; no worker is needed to count sends)
and keep their schedule and lock under a key prefix of this test's own in the real Redis.
Sends are read from each beat's log ("Sending due task <entry>"), stamped as they arrive."""

import json
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings

from tests.support.processes import sibling_env, stop_process

LOCK_TIMEOUT = 8
LOOP_INTERVAL = 1
INTERVALS = {  # seconds, per setting: every periodic task runs every few seconds
    "FLOWPAY_AUDIT_SEAL_INTERVAL_SECONDS": 2,
    "FLOWPAY_WEBHOOK_SWEEP_INTERVAL_SECONDS": 3,
    "FLOWPAY_STUCK_CHECK_INTERVAL_SECONDS": 3,
    "FLOWPAY_REFUND_REQUEUE_INTERVAL_SECONDS": 4,
    "FLOWPAY_REBILL_REAP_INTERVAL_SECONDS": 4,
    "FLOWPAY_REBILL_SCHEDULE_INTERVAL_SECONDS": 5,
    "FLOWPAY_IDEMPOTENCY_PURGE_INTERVAL_SECONDS": 5,
    "FLOWPAY_INBOUND_EVENT_REQUEUE_INTERVAL_SECONDS": 5,
    "FLOWPAY_LEDGER_RELEASE_INTERVAL_SECONDS": 4,
    "FLOWPAY_PAYOUT_CHECK_INTERVAL_SECONDS": 5,
    "FLOWPAY_DASHBOARD_ROLLUP_INTERVAL_SECONDS": 4,
}
STEADY_SECONDS = 30
AFTER_HANDOVER_SECONDS = 20
SENDING = re.compile(r"Sending due task (\S+) \(")


class Beat:
    """A `celery beat` process whose log lines are read, and time-stamped, as they come."""

    def __init__(self, name: str, env: dict):
        self.name = name
        self.lines: list[tuple[float, str]] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "flowpay", "beat", "--loglevel=INFO"],
            cwd=Path(settings.BASE_DIR), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append((time.monotonic(), line))

    def sends(self, since: float = 0.0, until: float = float("inf")) -> list[tuple[float, str]]:
        return [(at, match.group(1)) for at, line in list(self.lines) if since <= at <= until
                and (match := SENDING.search(line))]

    def holds_lock_since(self) -> float | None:
        return next((at for at, line in list(self.lines) if "Acquired lock" in line), None)


def _schedule(env: dict) -> dict[str, float]:
    """The beat schedule the beat processes load (entry → period in seconds)."""
    code = ("import django, json; django.setup(); from django.conf import settings; from celery.schedules import crontab;"
            "print(json.dumps({name: entry['schedule'].total_seconds() for name, entry in "
            "settings.CELERY_BEAT_SCHEDULE.items() if hasattr(entry['schedule'], 'total_seconds')}),"
            "json.dumps(sorted(name for name, entry in settings.CELERY_BEAT_SCHEDULE.items() "
            "if not isinstance(entry['schedule'], crontab))), settings.CELERY_BEAT_SCHEDULER, sep='\\n')")
    result = subprocess.run([sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True,
                            timeout=120, check=True)
    periods, names, scheduler = result.stdout.strip().splitlines()[-3:]
    assert scheduler == "redbeat.RedBeatScheduler"
    periods = json.loads(periods)
    # every entry but the daily crontab ones (payouts, ledger verification, reconciliation: the
    # same lock sends them) runs on an interval the test can accelerate
    assert sorted(periods) == json.loads(names)
    return periods


def _wait_for(predicate, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def _assert_once_per_period(sends: list[tuple[float, str]], periods: dict[str, float], window: float, where: str):
    for entry, period in periods.items():
        times = [at for at, name in sends if name == entry]
        expected = window / period
        assert expected - 2 <= len(times) <= expected + 1.5, (where, entry, len(times), expected)
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        # never twice in one period (a second beat sending, or a catch-up burst)
        assert all(gap >= period * 0.5 for gap in gaps), (where, entry, gaps)


@pytest.fixture
def beat_env():
    prefix = f"test-beat-{uuid.uuid4().hex[:10]}:"
    env = sibling_env(
        CELERY_BROKER_URL="memory://", FLOWPAY_BEAT_KEY_PREFIX=prefix,
        FLOWPAY_BEAT_LOCK_TIMEOUT_SECONDS=str(LOCK_TIMEOUT), FLOWPAY_BEAT_MAX_LOOP_INTERVAL_SECONDS=str(LOOP_INTERVAL),
        **{name: str(seconds) for name, seconds in INTERVALS.items()},
    )
    yield env
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)


@pytest.mark.django_db(transaction=True)
def test_two_beats_send_each_periodic_task_once_per_period_and_the_standby_takes_over(beat_env):
    periods = _schedule(beat_env)
    assert len(periods) >= len(INTERVALS)

    # given two beats, the second started once the first holds the lock
    active = Beat("a", beat_env)
    standby = None
    try:
        _wait_for(lambda: active.holds_lock_since() is not None, 60)
        standby = Beat("b", beat_env)
        _wait_for(lambda: any("beat: Starting" in line for _, line in standby.lines), 60)
        started = time.monotonic()

        # when they run side by side
        time.sleep(STEADY_SECONDS)
        steady_end = time.monotonic()

        # then only the lock holder sends, each task once per period
        assert standby.sends() == [] and standby.holds_lock_since() is None
        _assert_once_per_period(active.sends(started, steady_end), periods, steady_end - started, "steady")

        # when the active beat is killed (no chance to release its lock)
        active.process.send_signal(signal.SIGKILL)
        active.process.wait(timeout=10)
        killed = time.monotonic()
        last_active_send = max(at for at, _ in active.sends())

        # then the standby takes the lock within the lock timeout (plus its retry interval)
        _wait_for(lambda: standby.holds_lock_since() is not None, LOCK_TIMEOUT + LOOP_INTERVAL + 10)
        handover = standby.holds_lock_since() - killed
        assert handover <= LOCK_TIMEOUT + LOOP_INTERVAL + 2, handover

        # and sends every task again, once per period: overdue ones once, not a burst
        took_over = standby.holds_lock_since()
        time.sleep(AFTER_HANDOVER_SECONDS)
        after = standby.sends(took_over, time.monotonic())
        assert {name for _, name in after} == set(periods)
        _assert_once_per_period(after, periods, time.monotonic() - took_over, "after handover")
        # nothing was sent twice across the handover: the standby's first send of an entry
        # comes at least half a period after the active beat's last one
        for entry, period in periods.items():
            last = max((at for at, name in active.sends() if name == entry), default=None)
            first = min(at for at, name in after if name == entry)
            assert last is None or first - last >= period * 0.5, (entry, last, first)
        assert last_active_send <= killed
    finally:
        for beat in (active, standby):
            if beat is not None:
                stop_process(beat.process)
