"""The review queue: approve captures the held payment exactly once, reject cancels it (or
refunds it when it was captured meanwhile), two reviewers at once: one wins, the other 409."""

import threading

import pytest
import requests

from audit.models import AuditEntry
from fraud.models import Review
from gateways.models import SimulatorCharge
from gateways.simulator.adapter import SimulatorFaults, simulator_faults_clear, simulator_faults_set
from payments.models import PaymentAttempt, Transaction
from refunds.models import Refund
from tests.support.fraud import add_rule, pay
from tests.support.refunds import run_queued


@pytest.fixture
def held(merchant_a):
    """A 75.00 USD payment held for review by the merchant's rule."""
    add_rule(merchant_a, "review if :amount: > 5000")
    body = pay(merchant_a, amount=7500).json()
    assert body["status"] == "authorized", body
    return Review.objects.get(transaction__public_id=body["id"])


def _decide(account, review, decision: str, **body):
    return account.client.post(f"/payment/fraud/reviews/{review.public_id}/{decision}", body, format="json")


def captures_of(review) -> int:
    return PaymentAttempt.objects.filter(transaction_id=review.transaction_id, operation="capture", outcome="succeeded").count()


@pytest.mark.django_db
def test_approve_captures_the_held_payment_exactly_once(merchant_a, held):
    response = _decide(merchant_a, held, "approve", note="known customer")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "approved" and body["result"] == "captured" and body["transactionStatus"] == "completed"
    assert body["closedBy"] and body["note"] == "known customer"
    assert SimulatorCharge.objects.get().status == "succeeded" and captures_of(held) == 1
    entry = AuditEntry.objects.get(action="fraud_review.approve")
    assert entry.object_id == held.public_id and entry.actor_type == "api"
    assert entry.details["result"] == "captured" and entry.details["note"] == "known customer"
    # approving again: 409, nothing captured twice
    again = _decide(merchant_a, held, "approve")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"
    assert captures_of(held) == 1


@pytest.mark.django_db
def test_approve_after_the_merchant_captured_it_does_not_capture_again(merchant_a, held):
    txn = Transaction.objects.get(pk=held.transaction_id)
    assert merchant_a.client.post(f"/payment/transactions/{txn.public_id}/capture", {}, format="json").status_code == 200
    body = _decide(merchant_a, held, "approve").json()
    assert body["status"] == "approved" and body["result"] == "already_captured"
    assert captures_of(held) == 1


@pytest.mark.django_db
def test_reject_cancels_the_held_payment(merchant_a, held):
    body = _decide(merchant_a, held, "reject", note="stolen card").json()
    assert body["status"] == "rejected" and body["result"] == "canceled" and body["transactionStatus"] == "canceled"
    assert SimulatorCharge.objects.get().status == "canceled"
    assert AuditEntry.objects.filter(action="fraud_review.reject", object_id=held.public_id).exists()
    assert captures_of(held) == 0


@pytest.mark.django_db
def test_reject_refunds_a_held_payment_that_was_captured(merchant_a, held, queued_refunds,
                                                         django_capture_on_commit_callbacks):
    txn = Transaction.objects.get(pk=held.transaction_id)
    merchant_a.client.post(f"/payment/transactions/{txn.public_id}/capture", {}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        body = _decide(merchant_a, held, "reject").json()
    assert body["status"] == "rejected" and body["result"] == "refunded"
    refund = Refund.objects.get()
    assert body["refund"] == refund.public_id and refund.amount == 7500
    run_queued(queued_refunds)
    txn.refresh_from_db()
    assert txn.status == "refunded" and txn.amount_refunded == 7500


@pytest.mark.django_db
def test_a_capture_that_fails_leaves_the_review_open(merchant_a, held, settings):
    settings.FLOWPAY_GATEWAY_RETRIES = 0
    simulator_faults_set(SimulatorFaults(error_rate=1.0))
    try:
        response = _decide(merchant_a, held, "approve")
    finally:
        simulator_faults_clear()
    assert response.status_code == 503
    held.refresh_from_db()
    assert held.status == "open" and held.claim_expires_at is None
    assert AuditEntry.objects.filter(action="fraud_review.failed", object_id=held.public_id, result="failure").exists()
    assert _decide(merchant_a, held, "approve").json()["status"] == "approved"


@pytest.mark.django_db
def test_reviews_are_the_merchants_own_and_staff_decide_with_the_review_capability(merchant_a, merchant_b, held, staff_client):
    assert _decide(merchant_b, held, "approve").status_code == 404
    assert merchant_b.client.get(f"/payment/fraud/reviews/{held.public_id}").status_code == 404
    auditor = staff_client("auditor")
    assert auditor.get(f"/payment/fraud/reviews/{held.public_id}").status_code == 200
    assert auditor.post(f"/payment/fraud/reviews/{held.public_id}/reject", {}, format="json").status_code == 403
    finance = staff_client("finance")
    body = finance.post(f"/payment/fraud/reviews/{held.public_id}/reject", {"note": "chargeback risk"}, format="json").json()
    assert body["status"] == "rejected" and body["closedBy"] == "finance-user"
    assert AuditEntry.objects.get(action="fraud_review.reject").actor_type == "staff"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("decisions", [("approve", "approve"), ("approve", "reject")])
def test_two_reviewers_deciding_at_once_one_wins_and_the_other_gets_409(live_server, merchant_a, decisions):
    add_rule(merchant_a, "review if :amount: > 5000")
    txn_id = pay(merchant_a, amount=7500).json()["id"]
    review = Review.objects.get(transaction__public_id=txn_id)
    barrier, answers, lock = threading.Barrier(2), [], threading.Lock()

    def decide(decision: str):
        barrier.wait()
        response = requests.post(f"{live_server.url}/payment/fraud/reviews/{review.public_id}/{decision}", json={},
                                 headers={"Authorization": f"Bearer {merchant_a.api_key}"}, timeout=30)
        with lock:
            answers.append((decision, response.status_code, response.json()))

    threads = [threading.Thread(target=decide, args=(decision,)) for decision in decisions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(status for _, status, _ in answers)
    assert codes == [200, 409], answers
    (winner,) = [a for a in answers if a[1] == 200]
    (loser,) = [a for a in answers if a[1] == 409]
    assert loser[2]["error"]["code"] == "invalid_state"
    review.refresh_from_db()
    charge = SimulatorCharge.objects.get()
    if winner[0] == "approve":
        assert review.status == "approved" and charge.status == "succeeded" and captures_of(review) == 1
    else:
        assert review.status == "rejected" and charge.status == "canceled" and captures_of(review) == 0
    assert AuditEntry.objects.filter(action__in=["fraud_review.approve", "fraud_review.reject"]).count() == 1


@pytest.mark.django_db
def test_the_merchant_is_told_when_a_review_opens_and_when_it_is_decided(merchant_a, held, settings):
    from webhooks.models import OutboxEvent

    settings.FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS = True  # the endpoint below is local

    (opened,) = OutboxEvent.objects.filter(type="review.opened")
    assert opened.merchant_id == merchant_a.merchant.pk and opened.livemode is False
    assert opened.payload["id"] == held.public_id and opened.payload["status"] == "open"
    assert opened.payload["transactionStatus"] == "authorized" and opened.payload["closedAt"] is None
    assert not OutboxEvent.objects.filter(type="review.closed").exists()
    # a merchant may subscribe to them like to any event
    endpoint = merchant_a.client.post("/payment/webhook-endpoints", {
        "url": "http://127.0.0.1:9/hooks", "enabledEvents": ["review.opened", "review.closed"]}, format="json")
    assert endpoint.status_code == 201, endpoint.content

    decided = _decide(merchant_a, held, "approve", note="known customer").json()

    (closed,) = OutboxEvent.objects.filter(type="review.closed")
    assert closed.payload == decided  # the review as the API answered the decision
    assert closed.payload["status"] == "approved" and closed.payload["result"] == "captured"
    assert closed.payload["transactionStatus"] == "completed"
    # the API's own rendering of the review now is the same object
    assert merchant_a.client.get(f"/payment/fraud/reviews/{held.public_id}").json() == closed.payload
