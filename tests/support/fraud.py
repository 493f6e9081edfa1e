"""Fraud screening in tests (a pytest plugin tests/conftest.py loads): each test gets its
own prefix for the velocity counters' Redis keys (the suite's workers share one Redis
database, and counters live 7 days), and the per-process caches of card look-ups and of
Redis outages start empty. Helpers for the fraud tests are imported by name."""

import uuid

import pytest

URL = "/payment/transactions"


@pytest.fixture(autouse=True)
def _isolated_fraud_counters(settings):
    from fraud.screening import signals, velocity

    settings.FLOWPAY_FRAUD_KEY_PREFIX = f"flowpay-test-fraud-{uuid.uuid4().hex[:12]}"
    velocity._unavailable_until.clear()
    signals._cards.clear()
    yield
    velocity._unavailable_until.clear()


def pay(account, *, key: str | None = None, **body):
    """POST /payment/transactions as the merchant, with `body` over a 19.99 USD visa payment."""
    payload = {"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa", **body}
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return account.client.post(URL, payload, format="json", **headers)


def add_rule(account, rule: str, *, mode: str = "active"):
    response = account.client.post("/payment/fraud/rules", {"rule": rule, "mode": mode}, format="json")
    assert response.status_code == 201, response.content
    return response.json()
