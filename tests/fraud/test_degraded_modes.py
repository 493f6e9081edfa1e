"""When screening cannot do everything: the velocity counters out of reach (the fraud
counters pointed at a refused connection, never Redis stopped) under the failure policy,
and the runbook's simplified flow, which skips velocity and scoring but keeps block lists."""

import socket

import pytest

from core import runtime
from core.actors import Actor
from fraud.models import Decision
from tests.support.fraud import add_rule, pay


def _refused_url() -> str:
    """A Redis URL on a local port nothing listens on: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def counters_unreachable(settings):
    settings.FLOWPAY_FRAUD_REDIS_URL = _refused_url()


@pytest.fixture
def simplified_flow(db):
    runtime.runtime_set(key=runtime.SIMPLIFIED_FLOW, value=True, actor=Actor.system("test"))
    yield
    runtime.runtime_set(key=runtime.SIMPLIFIED_FLOW, value=False, actor=Actor.system("test"))


@pytest.mark.django_db
def test_with_the_counters_unreachable_payments_go_through_degraded_under_fail_open(merchant_a, counters_unreachable):
    add_rule(merchant_a, "block if :total_charges_per_card_fingerprint_hourly: > 0")  # would block every payment
    for _ in range(3):
        response = pay(merchant_a)
        assert response.status_code == 201, response.content
        risk = response.json()["risk"]
        assert risk["decision"] == "allow" and risk["degraded"] is True
        assert risk["score"] is None and risk["level"] == "not_assessed"
    decision = Decision.objects.first()
    assert decision.degraded and "velocity counters unavailable" in decision.degraded_reason
    assert "total_charges_per_card_fingerprint_hourly" not in decision.signals


@pytest.mark.django_db
def test_with_the_counters_unreachable_lists_and_static_rules_still_decide(merchant_a, counters_unreachable):
    add_rule(merchant_a, "block if :amount: > 500000")
    assert merchant_a.client.post("/payment/fraud/lists/blocked_emails", {"value": "fraud@example.com"},
                                  format="json").status_code == 201
    assert pay(merchant_a, amount=600000).status_code == 402
    listed = pay(merchant_a, email="fraud@example.com")
    assert listed.status_code == 402 and listed.json()["error"]["transaction"]["risk"]["degraded"] is True
    assert pay(merchant_a, email="someone@example.com").status_code == 201


@pytest.mark.django_db
def test_fail_closed_blocks_what_no_allow_rule_lets_through(merchant_a, counters_unreachable, settings):
    settings.FLOWPAY_FRAUD_FAILURE_POLICY = "fail_closed"
    blocked = pay(merchant_a)
    assert blocked.status_code == 402 and blocked.json()["error"]["code"] == "fraud_blocked"
    assert "the failure policy" in blocked.json()["error"]["message"]
    merchant_a.client.post("/payment/fraud/lists/allowed_emails", {"value": "vip@example.com"}, format="json")
    assert pay(merchant_a, email="vip@example.com").status_code == 201


@pytest.mark.django_db
def test_without_a_redis_url_screening_is_degraded_too(merchant_a, settings):
    settings.FLOWPAY_FRAUD_REDIS_URL = ""
    response = pay(merchant_a)
    assert response.status_code == 201 and response.json()["risk"]["degraded"] is True
    assert "no Redis is configured" in Decision.objects.get().degraded_reason


@pytest.mark.django_db
def test_block_lists_hold_in_simplified_flow_and_scoring_is_skipped(merchant_a, simplified_flow):
    for list_name, value in [("blocked_emails", "fraud@example.com"), ("blocked_countries", "GB"),
                             ("blocked_ip_addresses", "203.0.113.9")]:
        response = merchant_a.client.post(f"/payment/fraud/lists/{list_name}", {"value": value}, format="json")
        assert response.status_code == 201, response.content
    add_rule(merchant_a, "block if :total_charges_per_card_fingerprint_hourly: > 0")
    assert pay(merchant_a, email="fraud@example.com").status_code == 402
    assert pay(merchant_a, paymentMethod="pm_card_gb").status_code == 402  # a GB card
    assert pay(merchant_a, clientIp="203.0.113.9").status_code == 402
    allowed = pay(merchant_a, email="someone@example.com")
    assert allowed.status_code == 201  # the velocity rule has nothing to count in simplified flow
    risk = allowed.json()["risk"]
    assert risk["simplified"] is True and risk["score"] is None and risk["level"] == "not_assessed" and risk["reasons"] == []
    decision = Decision.objects.get(transaction__public_id=allowed.json()["id"])
    assert "total_charges_per_card_fingerprint_hourly" not in decision.signals
    assert "is_new_customer" not in decision.signals  # no history read either
    assert decision.simplified and not decision.degraded


@pytest.mark.django_db
def test_leaving_simplified_flow_scores_again(merchant_a, simplified_flow):
    assert pay(merchant_a).json()["risk"]["simplified"] is True
    runtime.runtime_set(key=runtime.SIMPLIFIED_FLOW, value=False, actor=Actor.system("test"))
    risk = pay(merchant_a).json()["risk"]
    assert risk["simplified"] is False and risk["score"] == 10
