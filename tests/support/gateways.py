"""Two gateways for the router and breaker tests: `two_gateways` (a pytest plugin that
tests/conftest.py loads) enables `simulator` (primary) and `backup`, two independent
simulators with a small breaker threshold and fast retries; `attempts_of` lists a
payment's attempts as (gateway, outcome)."""

import pytest

from gateways import registry
from gateways.simulator.adapter import SimulatorGateway, simulator_faults_clear
from payments.models import Transaction

URL = "/payment/transactions"
BODY = {"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa"}


@pytest.fixture
def two_gateways(settings, monkeypatch):
    """Gateways `simulator` (primary) and `backup`: two independent simulators."""
    settings.FLOWPAY_GATEWAYS = ["simulator", "backup"]
    settings.FLOWPAY_BREAKER_FAILURE_THRESHOLD = 3
    settings.FLOWPAY_BREAKER_COOLDOWN_SECONDS = 1
    settings.FLOWPAY_GATEWAY_RETRIES = 1
    settings.FLOWPAY_GATEWAY_BACKOFF_BASE_SECONDS = 0.01
    monkeypatch.setitem(registry.GATEWAY_CLASSES, "backup", lambda: SimulatorGateway("backup"))
    registry.gateway_named.cache_clear()
    yield
    simulator_faults_clear("simulator")
    simulator_faults_clear("backup")


def attempts_of(payment_id: str) -> list[tuple[str, str]]:
    return list(Transaction.objects.get(public_id=payment_id).attempts.values_list("gateway", "outcome"))
