"""Fixtures and helpers shared by the refund and chargeback tests.

A pytest plugin: tests/conftest.py loads it (`pytest_plugins`), so every test may request
the fixtures; import the helper functions by name (`from tests.support.refunds import run_queued`).

- `queued_refunds`: `refunds.execute` is recorded instead of published; run the recorded
  ids with `run_queued(queued_refunds)` (as a worker would).
- `tasks_run_on_commit`: `refunds.execute` runs at once, in the committing thread.
- `staff_user`, `staff_api`: a staff user in role groups (admin site), a staff-token API client.

The cache namespace of the test's own (the breaker, call statistics and simulator faults
these tests provoke never reach tests running in parallel) is tests/conftest.py's
`_isolated_shared_state`, which every test gets.
"""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from accounts.services import staff_token_create
from core.actors import Actor
from gateways.models import SimulatorCharge
from payments.models import Transaction
from refunds.tasks import refund_execute_task


@pytest.fixture
def queued_refunds(monkeypatch) -> list[int]:
    queued: list[int] = []
    monkeypatch.setattr(refund_execute_task, "delay", lambda refund_id: queued.append(refund_id))
    return queued


@pytest.fixture
def tasks_run_on_commit(monkeypatch) -> None:
    monkeypatch.setattr(refund_execute_task, "delay", lambda refund_id: refund_execute_task.apply(args=[refund_id]))


def run_queued(queued: list[int], *, retries: int = 0):
    """Run the queued executions (each once) as a worker would; returns their results."""
    results = []
    while queued:
        results.append(refund_execute_task.apply(args=[queued.pop(0)], retries=retries))
    return results


@pytest.fixture
def staff_user(db):
    """A staff user (admin-site access) in the given role groups, with a personal API token."""

    def make(username: str, *role_names: str):
        user, _ = get_user_model().objects.get_or_create(username=username, defaults={"is_staff": True})
        user.is_staff = True
        user.set_password("correct horse battery staple")
        user.save()
        for role in role_names:
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        return user

    return make


@pytest.fixture
def staff_api(db):
    """An API client with a staff token for `username` in `role`."""

    def make(role: str, username: str | None = None) -> APIClient:
        issued = staff_token_create(username=username or f"{role}-api", role=role, actor=Actor.system("test"))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
        return client

    return make


def refund_url(txn: Transaction) -> str:
    return f"/payment/transactions/{txn.public_id}/refund"


def charge_of(txn: Transaction) -> SimulatorCharge:
    """What the simulator gateway (the "PSP") recorded for this payment."""
    return SimulatorCharge.objects.get(reference=txn.gateway_reference)


def simulator_refund_records(txn: Transaction):
    """The simulator's refund records of this payment (one per distinct idempotency key)."""
    return SimulatorCharge.objects.filter(status="refund", flowpay_reference=txn.gateway_reference)


def fail_gateway_refunds(monkeypatch, error_factory, times: int | None = None) -> dict:
    """Make the simulator's refund raise `error_factory()` for the next `times` calls (every
    call when None); returns a counter of the calls that reached it."""
    from gateways.simulator.adapter import SimulatorGateway

    original = SimulatorGateway.refund
    calls = {"total": 0, "failed": 0}

    def refund(self, **kwargs):
        calls["total"] += 1
        if times is None or calls["failed"] < times:
            calls["failed"] += 1
            raise error_factory()
        return original(self, **kwargs)

    monkeypatch.setattr(SimulatorGateway, "refund", refund)
    return calls
