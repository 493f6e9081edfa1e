"""The merchant journey: create, capture and cancel payments through the REST API."""

import pytest

from audit.models import AuditEntry
from gateways.models import SimulatorCharge
from payments.models import PaymentAttempt, Transaction

pytestmark = pytest.mark.django_db

URL = "/payment/transactions"


def create(client, **overrides):
    body = {"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa", **overrides}
    return client.post(URL, body, format="json")


def test_automatic_payment_completes_and_is_audited(merchant_a):
    response = create(merchant_a.client, metadata={"order_id": "A-1"}, description="Order A-1")

    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("txn_")
    assert body["status"] == "completed"
    assert (body["amount"], body["currency"], body["amountCaptured"], body["amountRefunded"]) == (1999, "USD", 1999, 0)
    assert body["gateway"] == "simulator"
    assert body["createdAt"].endswith("Z")
    assert body["metadata"] == {"order_id": "A-1"}  # merchant keys come back exactly as sent
    txn = Transaction.objects.get(public_id=body["id"])
    assert txn.attempts.get().outcome == PaymentAttempt.Outcome.SUCCEEDED
    actions = list(AuditEntry.objects.filter(object_id=txn.public_id).order_by("id").values_list("action", flat=True))
    assert actions == ["transaction.create", "transaction.processing", "transaction.completed"]
    assert AuditEntry.objects.filter(object_id=txn.public_id, actor_type="api", merchant=merchant_a.merchant).count() == 3


def test_declined_card_answers_402_with_the_failed_transaction_recorded(merchant_a):
    response = create(merchant_a.client, paymentMethod="pm_card_chargeDeclinedInsufficientFunds")

    assert response.status_code == 402
    error = response.json()["error"]
    assert (error["type"], error["code"], error["declineCode"]) == ("card_error", "card_declined", "insufficient_funds")
    txn = Transaction.objects.get(public_id=error["transaction"]["id"])
    assert txn.status == "failed" and txn.failure_code == "insufficient_funds"
    assert AuditEntry.objects.filter(object_id=txn.public_id, action="transaction.failed", result="failure").exists()


@pytest.mark.parametrize("token", ["pm_card_visa_chargeDeclined", "pm_card_chargeCustomerFail"])
def test_stripe_decline_tokens_are_card_declined(merchant_a, token):
    response = create(merchant_a.client, paymentMethod=token)
    assert response.status_code == 402
    assert response.json()["error"]["declineCode"] == "card_declined"


def test_three_d_secure_card_requires_action(merchant_a):
    response = create(merchant_a.client, paymentMethod="pm_card_threeDSecure2Required")
    assert response.status_code == 201
    assert response.json()["status"] == "requires_action"
    assert response.json()["nextAction"]["type"] == "redirect_to_url"


def test_unknown_payment_method_token_is_a_clear_400(merchant_a):
    response = create(merchant_a.client, paymentMethod="pm_does_not_exist")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "paymentMethod"


def test_manual_capture_then_partial_capture(merchant_a):
    txn = create(merchant_a.client, captureMethod="manual").json()
    assert txn["status"] == "authorized" and txn["amountCaptured"] == 0

    response = merchant_a.client.post(f"{URL}/{txn['id']}/capture", {"amount": 1500}, format="json")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["amountCaptured"]) == ("completed", 1500)
    assert SimulatorCharge.objects.get(reference=response.json()["gatewayReference"]).amount_captured == 1500
    assert AuditEntry.objects.filter(object_id=txn["id"], action="transaction.capture", result="success").exists()


def test_capture_more_than_authorized_is_refused_and_changes_nothing(merchant_a):
    txn = create(merchant_a.client, captureMethod="manual").json()
    response = merchant_a.client.post(f"{URL}/{txn['id']}/capture", {"amount": 2000}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "amount_too_large"
    assert Transaction.objects.get(public_id=txn["id"]).status == "authorized"


def test_cancel_voids_an_authorized_payment(merchant_a):
    txn = create(merchant_a.client, captureMethod="manual").json()
    response = merchant_a.client.post(f"{URL}/{txn['id']}/cancel", {}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    assert SimulatorCharge.objects.get(reference=txn["gatewayReference"]).status == "canceled"


@pytest.mark.parametrize(
    "payment_method, capture_method, operation, expected_state",
    [
        ("pm_card_chargeDeclinedInsufficientFunds", "automatic", "capture", "failed"),
        ("pm_card_visa", "automatic", "capture", "completed"),
        ("pm_card_visa", "automatic", "cancel", "completed"),
        ("pm_card_chargeDeclinedInsufficientFunds", "automatic", "cancel", "failed"),
    ],
)
def test_state_machine_refuses_illegal_transitions_with_409(merchant_a, make_payment, payment_method, capture_method, operation, expected_state):
    txn = make_payment(merchant_a, payment_method=payment_method, capture_method=capture_method)
    audit_before = AuditEntry.objects.count()

    response = merchant_a.client.post(f"{URL}/{txn.public_id}/{operation}", {}, format="json")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "invalid_state"
    assert f"Cannot {operation} a {expected_state} transaction" in error["message"]
    txn.refresh_from_db()
    assert txn.status == expected_state
    assert AuditEntry.objects.count() == audit_before


def test_capturing_twice_is_refused(merchant_a, make_payment):
    txn = make_payment(merchant_a, capture_method="manual")
    assert merchant_a.client.post(f"{URL}/{txn.public_id}/capture", {}, format="json").status_code == 200
    second = merchant_a.client.post(f"{URL}/{txn.public_id}/capture", {}, format="json")
    assert second.status_code == 409
    assert txn.attempts.filter(operation="capture").count() == 1


def test_retrieve_and_list_with_filters_and_cursor_pagination(merchant_a, make_payment):
    completed = [make_payment(merchant_a) for _ in range(12)]
    failed = make_payment(merchant_a, payment_method="pm_card_chargeDeclinedInsufficientFunds")

    detail = merchant_a.client.get(f"{URL}/{failed.public_id}")
    assert detail.status_code == 200 and detail.json()["status"] == "failed"

    first = merchant_a.client.get(URL).json()
    assert len(first["data"]) == 10 and first["hasMore"] is True
    assert first["data"][0]["id"] == failed.public_id  # newest first
    second = merchant_a.client.get(URL, {"cursor": first["nextCursor"]}).json()
    assert len(second["data"]) == 3 and second["hasMore"] is False
    seen = {t["id"] for t in first["data"] + second["data"]}
    assert seen == {t.public_id for t in completed + [failed]}

    only_failed = merchant_a.client.get(URL, {"status": "failed"}).json()["data"]
    assert [t["id"] for t in only_failed] == [failed.public_id]
    both = merchant_a.client.get(URL, {"status": "failed,completed", "limit": 100}).json()["data"]
    assert len(both) == 13
    assert merchant_a.client.get(URL, {"gateway": "simulator", "limit": 5}).json()["hasMore"] is True
    after = failed.created_at.isoformat()
    assert [t["id"] for t in merchant_a.client.get(URL, {"createdGte": after}).json()["data"]] == [failed.public_id]


@pytest.mark.parametrize(
    "params, param",
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
        ({"status": "bogus"}, "status"),
        ({"gateway": "nope"}, "gateway"),
        ({"createdGte": "yesterday"}, "createdGte"),
        ({"createdGte": "2026-01-02T00:00:00Z", "createdLte": "2026-01-01T00:00:00Z"}, "createdGte"),
        ({"sort": "amount"}, "sort"),
    ],
)
def test_bad_list_parameters_are_400_with_the_parameter_named(merchant_a, params, param):
    response = merchant_a.client.get(URL, params)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_customer_with_saved_payment_method_pays(merchant_a):
    customer = merchant_a.client.post("/payment/customers", {"email": "ann@example.com", "name": "Ann"}, format="json").json()
    assert customer["id"].startswith("cus_")
    method = merchant_a.client.post(
        f"/payment/customers/{customer['id']}/payment-methods", {"token": "pm_card_visa", "brand": "visa", "last4": "4242"}, format="json"
    )
    assert method.status_code == 201
    pm = method.json()
    assert pm["token"] == "pm_card_visa" and pm["last4"] == "4242"

    payment = create(merchant_a.client, paymentMethod=pm["id"])

    assert payment.status_code == 201
    assert payment.json()["customer"] == customer["id"]
    assert Transaction.objects.get(public_id=payment.json()["id"]).payment_method_token == "pm_card_visa"
    detail = merchant_a.client.get(f"/payment/customers/{customer['id']}").json()
    assert [m["id"] for m in detail["paymentMethods"]] == [pm["id"]]
    listed = merchant_a.client.get("/payment/customers", {"email": "ann@example.com"}).json()["data"]
    assert [c["id"] for c in listed] == [customer["id"]]
    assert merchant_a.client.get("/payment/transactions", {"customer": customer["id"]}).json()["data"][0]["id"] == payment.json()["id"]


def test_unknown_routes_and_methods_answer_in_the_error_shape(merchant_a):
    missing = merchant_a.client.get("/payment/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "resource_missing"
    not_allowed = merchant_a.client.delete(URL)
    assert not_allowed.status_code == 405
    assert not_allowed.json()["error"]["code"] == "method_not_allowed"
    unknown_txn = merchant_a.client.get(f"{URL}/txn_doesnotexist")
    assert unknown_txn.status_code == 404 and unknown_txn.json()["error"]["param"] == "id"
