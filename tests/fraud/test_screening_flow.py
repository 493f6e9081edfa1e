"""Screening in the payment flow, through the API: the decision's actions (block, review,
request_3ds), Radar's precedence, shadow rules, and the `risk` every screened payment
carries."""

import pytest

from audit.models import AuditEntry
from fraud.models import Decision, Review
from fraud.screening.language import Action
from fraud.screening.rules import CompiledRule
from fraud.screening.screen import precedence
from gateways.models import SimulatorCharge
from payments.models import PaymentAttempt, Transaction
from tests.support.fraud import add_rule, pay


@pytest.mark.django_db
def test_an_ordinary_payment_is_allowed_and_its_risk_is_explained(merchant_a):
    response = pay(merchant_a)
    assert response.status_code == 201, response.content
    risk = response.json()["risk"]
    assert risk["decision"] == "allow" and risk["level"] == "normal"
    assert risk["score"] == 10 and risk["reasons"] == [
        {"signal": "is_new_customer", "points": 10, "detail": "a new customer: no successful payment yet"}]
    assert risk["rules"] == [] and risk["shadowRules"] == [] and risk["review"] is None
    assert risk["simplified"] is False and risk["degraded"] is False
    # the same risk when the payment is retrieved or listed
    assert merchant_a.client.get(f"/payment/transactions/{response.json()['id']}").json()["risk"] == risk
    assert merchant_a.client.get("/payment/transactions").json()["data"][0]["risk"] == risk
    decision = Decision.objects.get()
    assert decision.signals["card_fingerprint"] and decision.signals["card_brand"] == "visa"
    assert decision.signals["total_charges_per_card_fingerprint_hourly"] == 1


@pytest.mark.django_db
def test_a_blocked_payment_fails_fraud_blocked_with_402_and_nothing_reaches_a_gateway(merchant_a):
    rule = add_rule(merchant_a, "block if :amount: > 500000")
    response = pay(merchant_a, amount=600000)
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "fraud_blocked" and error["declineCode"] == "fraud_blocked" and error["type"] == "card_error"
    txn = error["transaction"]
    assert txn["status"] == "failed" and txn["failureCode"] == "fraud_blocked"
    assert txn["risk"]["decision"] == "block"
    assert txn["risk"]["rules"] == [{"rule": rule["id"], "version": 1, "action": "block", "predicate": "block if :amount: > 500000",
                                     "mode": "active", "platform": False}]
    # nothing was sent to a gateway
    assert SimulatorCharge.objects.count() == 0
    # its first attempt, recorded before screening, is closed as never sent (nothing left for the stuck checker)
    (attempt,) = PaymentAttempt.objects.all()
    assert (attempt.outcome, attempt.error_code) == ("error", "fraud_blocked") and attempt.finished_at is not None
    # audited, with the rule that blocked it
    entry = AuditEntry.objects.get(action="transaction.fraud_blocked")
    assert entry.object_id == txn["id"] and entry.details["rules"] == ["block if :amount: > 500000"]
    # a payment under the threshold goes through
    assert pay(merchant_a, amount=500000).status_code == 201


@pytest.mark.django_db
def test_a_payment_held_for_review_is_authorized_without_capture_and_queued(merchant_a):
    add_rule(merchant_a, "review if :amount: > 5000")
    response = pay(merchant_a, amount=7500)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "authorized" and body["amountCaptured"] == 0
    assert body["captureMethod"] == "manual"  # the hold: nothing captures it automatically
    assert body["risk"]["decision"] == "review"
    review = Review.objects.get()
    assert body["risk"]["review"] == review.public_id and review.status == "open"
    assert SimulatorCharge.objects.get().status == "requires_capture"
    assert AuditEntry.objects.filter(action="transaction.review_hold", object_id=body["id"]).exists()
    assert AuditEntry.objects.filter(action="fraud_review.open", object_id=review.public_id).exists()
    listed = merchant_a.client.get("/payment/fraud/reviews?status=open").json()["data"]
    assert [r["id"] for r in listed] == [review.public_id] and listed[0]["transaction"] == body["id"]


@pytest.mark.django_db
def test_a_declined_held_payment_opens_no_review(merchant_a):
    add_rule(merchant_a, "review if :amount: > 5000")
    response = pay(merchant_a, amount=7500, paymentMethod="pm_card_visa_chargeDeclined")
    assert response.status_code == 402 and response.json()["error"]["code"] == "card_declined"
    assert Review.objects.count() == 0


@pytest.mark.django_db
def test_request_3ds_asks_the_gateway_for_3d_secure(merchant_a):
    add_rule(merchant_a, "request_3ds if :amount: > 5000")
    response = pay(merchant_a, amount=6000)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "requires_action" and body["nextAction"]["type"] == "redirect_to_url"
    assert body["risk"]["decision"] == "request_3ds" and body["risk"]["threeDSecure"] is True
    assert pay(merchant_a, amount=4000).json()["status"] == "completed"


def _compiled(action: Action) -> CompiledRule:
    return CompiledRule(rule=f"rule_{action}", version=1, action=action, mode="active", source="", platform=False, tree=None)


@pytest.mark.parametrize(("actions", "outcome", "three_d_secure"), [
    ([], Action.ALLOW, False),
    ([Action.REVIEW], Action.REVIEW, False),
    ([Action.BLOCK, Action.REVIEW], Action.BLOCK, False),
    ([Action.ALLOW, Action.BLOCK, Action.REVIEW], Action.ALLOW, False),
    ([Action.ALLOW, Action.BLOCK], Action.ALLOW, False),
    ([Action.REQUEST_3DS], Action.REQUEST_3DS, True),
    ([Action.REQUEST_3DS, Action.REVIEW], Action.REVIEW, True),  # 3-D Secure asked for, and held
    ([Action.REQUEST_3DS, Action.BLOCK], Action.BLOCK, True),
    ([Action.REQUEST_3DS, Action.ALLOW, Action.BLOCK], Action.ALLOW, True),
])
def test_precedence_allow_beats_block_beats_review_and_request_3ds_continues(actions, outcome, three_d_secure):
    assert precedence([_compiled(action) for action in actions]) == (outcome, three_d_secure)


@pytest.mark.django_db
def test_allow_beats_block_beats_review_in_the_payment_flow(merchant_a):
    add_rule(merchant_a, "review if :amount: > 1000")
    add_rule(merchant_a, "block if :amount: > 2000")
    add_rule(merchant_a, "allow if :amount: > 3000")
    assert pay(merchant_a, amount=1500).json()["risk"]["decision"] == "review"
    blocked = pay(merchant_a, amount=2500)
    assert blocked.status_code == 402 and blocked.json()["error"]["transaction"]["risk"]["decision"] == "block"
    allowed = pay(merchant_a, amount=3500).json()
    assert allowed["status"] == "completed" and allowed["risk"]["decision"] == "allow"
    assert {r["action"] for r in allowed["risk"]["rules"]} == {"allow", "block", "review"}  # all matched, allow won


@pytest.mark.django_db
def test_request_3ds_continues_to_the_other_rules(merchant_a):
    add_rule(merchant_a, "request_3ds if :amount: > 1000")
    add_rule(merchant_a, "block if :amount: > 2000")
    blocked = pay(merchant_a, amount=2500)
    assert blocked.status_code == 402 and SimulatorCharge.objects.count() == 0
    assert blocked.json()["error"]["transaction"]["risk"]["threeDSecure"] is True


@pytest.mark.django_db
def test_shadow_rules_are_recorded_and_never_change_the_outcome(merchant_a):
    shadow_block = add_rule(merchant_a, "block if :amount: > 1000", mode="shadow")
    add_rule(merchant_a, "review if :currency: = 'eur'", mode="shadow")
    response = pay(merchant_a, amount=5000, currency="eur")
    body = response.json()
    assert response.status_code == 201 and body["status"] == "completed"
    assert body["risk"]["decision"] == "allow" and body["risk"]["rules"] == []
    assert {r["predicate"] for r in body["risk"]["shadowRules"]} == {"block if :amount: > 1000", "review if :currency: = 'eur'"}
    assert body["risk"]["shadowRules"][0]["mode"] == "shadow"
    assert Review.objects.count() == 0
    # enabling it (a new version) acts on the next payment, and the decision names that version
    merchant_a.client.patch(f"/payment/fraud/rules/{shadow_block['id']}", {"mode": "active"}, format="json")
    blocked = pay(merchant_a, amount=5000).json()["error"]["transaction"]["risk"]["rules"]
    assert [(r["rule"], r["version"], r["mode"]) for r in blocked] == [(shadow_block["id"], 2, "active")]


@pytest.mark.django_db
def test_rules_see_metadata_email_country_and_the_converted_amount(merchant_a):
    add_rule(merchant_a, "block if ::segment:: = 'resale' and :email_domain: = 'example.net'")
    add_rule(merchant_a, "review if :ip_country: != :card_country:")
    add_rule(merchant_a, "block if :amount_in_usd: > 100000")
    blocked = pay(merchant_a, metadata={"segment": "resale"}, email="Buyer@Example.NET")
    assert blocked.status_code == 402
    assert pay(merchant_a, metadata={"segment": "resale"}, email="buyer@example.org").status_code == 201
    # 198.51.100.7 is GB in the built-in table; pm_card_visa is a US card
    held = pay(merchant_a, clientIp="198.51.100.7").json()
    assert held["risk"]["decision"] == "review"
    assert {"signal": "ip_country", "points": 20, "detail": "the client is in GB, the card is from US"} in held["risk"]["reasons"]
    # 1,000.00 EUR is 1,080.00 USD at the default table: blocked; 900.00 EUR (972.00 USD) is not
    assert pay(merchant_a, amount=100000, currency="eur").status_code == 402
    assert pay(merchant_a, amount=90000, currency="eur").status_code == 201
    assert Decision.objects.filter(signals__amount_in_usd=97200).count() == 1


@pytest.mark.django_db
def test_payments_not_created_through_the_api_are_not_screened(merchant_a, make_payment):
    txn = make_payment(merchant_a)
    assert not Decision.objects.filter(transaction=txn).exists()
    body = merchant_a.client.get(f"/payment/transactions/{txn.public_id}").json()
    assert body["risk"] is None


@pytest.mark.django_db
def test_screening_switched_off_screens_nothing(merchant_a, settings):
    settings.FLOWPAY_FRAUD_SCREENING_ENABLED = False
    add_rule(merchant_a, "block if :amount: > 1")
    response = pay(merchant_a)
    assert response.status_code == 201 and response.json()["risk"] is None
    assert Transaction.objects.get().status == "completed"


@pytest.mark.django_db
def test_the_risk_of_a_payment_renders_as_its_schema_says(merchant_a):
    from fraud.screening.representations import RiskOutput, risk_payload

    add_rule(merchant_a, "review if :amount: > 5000")
    add_rule(merchant_a, "request_3ds if :amount: > 5000")
    add_rule(merchant_a, "block if :currency: = 'eur'", mode="shadow")
    held = pay(merchant_a, amount=6000, currency="eur").json()
    assert held["status"] == "requires_action" and held["risk"]["review"] == Review.objects.get().public_id
    for decision in Decision.objects.all():
        assert risk_payload(decision) == RiskOutput(decision).data


@pytest.mark.django_db(transaction=True)
def test_a_decision_written_in_its_own_transaction_is_complete(merchant_a):
    # outside any atomic block the decision is one INSERT with a relaxed commit (screen.py)
    add_rule(merchant_a, "review if :amount: > 5000")
    body = pay(merchant_a, amount=7000, metadata={"segment": "vip"}).json()
    decision = Decision.objects.get(transaction__public_id=body["id"])
    assert decision.public_id.startswith("frd_") and decision.merchant_id == merchant_a.merchant.pk
    assert decision.outcome == "review" and decision.level == "normal" and decision.score == 10
    assert decision.signals["metadata"] == {"segment": "vip"} and decision.signals["amount"] == 7000
    assert decision.rules[0]["predicate"] == "review if :amount: > 5000" and decision.created_at is not None
    assert body["risk"]["review"] == Review.objects.get().public_id and body["risk"]["rules"] == decision.rules
