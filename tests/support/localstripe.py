"""A real localstripe server for the Stripe adapter's tests (real HTTP, real SDK).

`localstripe_url` starts one `localstripe` per test session, and so one per pytest-xdist
worker, on a free port. It always runs with `--from-scratch`: localstripe pickles its store
to the fixed path /tmp/localstripe.pickle and would otherwise load whatever another server
left there. `stripe_gateway` points FlowPay's Stripe credentials at it for one test.

A pytest plugin: tests/conftest.py loads it (`pytest_plugins`), so every test may request
these fixtures.
"""

import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

STARTUP_SECONDS = 20
ATTEMPTS = 3


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    request = urllib.request.Request(f"{url}/v1/balance", headers={"Authorization": "Bearer sk_test_readiness"})
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _start(executable: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    """Start localstripe and wait until it answers. The port is free when chosen but another
    worker may take it first, so a server that exits early is retried on a new port."""
    last_error = ""
    for _ in range(ATTEMPTS):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with open(log_path, "ab") as log:  # the child keeps its own descriptor
            process = subprocess.Popen(
                [str(executable), "--port", str(port), "--from-scratch"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                last_error = f"localstripe exited with {process.returncode} on port {port}"
                break
            if _answers(url):
                return process, url
            time.sleep(0.1)
        else:
            last_error = f"localstripe did not answer on port {port} within {STARTUP_SECONDS}s"
        _stop(process)
    raise RuntimeError(f"{last_error}; see {log_path}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory):
    executable = Path(sys.executable).parent / "localstripe"
    if not executable.exists():
        pytest.fail(f"localstripe is not installed next to {sys.executable} (pip install localstripe==1.15.10)")
    log_path = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    process, url = _start(executable, log_path)
    try:
        yield url
    finally:
        _stop(process)


def _gateway_at(url: str):
    from gateways.credentials import credentials_reload
    from gateways.stripe.adapter import StripeGateway

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STRIPE_API_KEY", f"sk_test_{secrets.token_hex(12)}")
        patch.setenv("STRIPE_API_BASE", url)
        patch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_test")
        patch.delenv("FLOWPAY_SECRETS_FILE", raising=False)
        credentials_reload()
        yield StripeGateway()
    credentials_reload()  # back to the credentials of the real environment


@pytest.fixture
def stripe_gateway(localstripe_url, db):
    """A StripeGateway whose credentials (read per call) point at localstripe. Needs the
    database: reading credentials checks the shared reload counter (core.runtime)."""
    yield from _gateway_at(localstripe_url)


@pytest.fixture
def private_stripe_gateway(tmp_path, db):
    """A StripeGateway on a localstripe of its own, started for this test: its balance
    history holds this test's transactions only (reconciliation's golden days)."""
    executable = Path(sys.executable).parent / "localstripe"
    process, url = _start(executable, tmp_path / "localstripe.log")
    try:
        yield from _gateway_at(url)
    finally:
        _stop(process)
