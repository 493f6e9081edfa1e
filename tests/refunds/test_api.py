"""The refunds API: the runbook's POST /payment/transactions/{id}/refund, the refund lists,
partial and multiple refunds, the refundable amount, states, idempotency, off-gateway
credits, merchant isolation and staff roles."""

import pytest
from django.db.models import Sum

from audit.models import AuditEntry
from payments.models import Transaction
from refunds.models import Refund
from tests.support.refunds import charge_of, refund_url, run_queued, simulator_refund_records

pytestmark = pytest.mark.django_db


def post_refund(client, txn, body=None, **headers):
    return client.post(refund_url(txn), body if body is not None else {}, format="json", **headers)


def test_merchant_refund_is_created_pending_then_executed_by_the_task(merchant_a, make_payment, queued_refunds,
                                                                      django_capture_on_commit_callbacks):
    # given a completed 19.99 USD payment
    txn = make_payment(merchant_a, amount=1999)

    # when the merchant refunds 5.00 with the runbook's body
    with django_capture_on_commit_callbacks(execute=True):
        response = post_refund(merchant_a.client, txn, {"amount": 500, "reason": "Customer service request",
                                                        "refundToOriginalMethod": True})

    # then it answers 201 with a pending refund, queued for the worker
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"].startswith("re_") and body["object"] == "refund"
    assert (body["status"], body["amount"], body["currency"], body["transaction"]) == ("pending", 500, "USD", txn.public_id)
    assert body["reason"] == "Customer service request" and body["refundToOriginalMethod"] is True
    assert body["method"] == "original_payment_method"
    assert body["initiatedBy"] == {"type": "api", "id": merchant_a.merchant.api_keys.get().prefix}
    assert queued_refunds == [Refund.objects.get(public_id=body["id"]).pk]

    # when the worker runs it
    run_queued(queued_refunds)

    # then the gateway refunded it once and the payment is partially refunded
    refund = merchant_a.client.get(f"/payment/refunds/{body['id']}").json()
    assert refund["status"] == "succeeded" and refund["gatewayReference"] and refund["attempts"] == 1
    payment = merchant_a.client.get(f"/payment/transactions/{txn.public_id}").json()
    assert (payment["status"], payment["amountRefunded"], payment["amountRefundable"]) == ("partially_refunded", 500, 1499)
    assert payment["disputed"] is False and payment["amountDisputed"] == 0
    assert charge_of(txn).amount_refunded == 500
    actions = list(AuditEntry.objects.filter(object_id__in=[body["id"], txn.public_id]).order_by("id")
                   .values_list("action", "actor_type"))
    assert actions[-4:] == [
        ("refund.create", "api"), ("refund.processing", "worker"), ("refund.succeeded", "worker"),
        ("transaction.partially_refunded", "worker"),
    ]


def test_partial_and_multiple_refunds_end_fully_refunded(merchant_a, make_payment, tasks_run_on_commit,
                                                         django_capture_on_commit_callbacks):
    txn = make_payment(merchant_a, amount=1000)

    with django_capture_on_commit_callbacks(execute=True):
        first = post_refund(merchant_a.client, txn, {"amount": 300})
    txn.refresh_from_db()
    assert (txn.status, txn.amount_refunded, txn.amount_refund_reserved) == ("partially_refunded", 300, 300)

    with django_capture_on_commit_callbacks(execute=True):
        second = post_refund(merchant_a.client, txn, {"amount": 200})
    # amount omitted: refunds what remains
    with django_capture_on_commit_callbacks(execute=True):
        rest = post_refund(merchant_a.client, txn, {"reason": "rest"})

    assert first.status_code == second.status_code == rest.status_code == 201
    assert rest.json()["amount"] == 500
    assert set(Refund.objects.values_list("status", flat=True)) == {"succeeded"}
    txn.refresh_from_db()
    assert (txn.status, txn.amount_refunded, txn.amount_refund_reserved) == ("refunded", 1000, 1000)
    assert charge_of(txn).amount_refunded == 1000 and simulator_refund_records(txn).count() == 3
    listed = merchant_a.client.get(f"/payment/transactions/{txn.public_id}/refunds").json()
    assert [r["amount"] for r in listed["data"]] == [500, 200, 300]  # newest first
    assert AuditEntry.objects.filter(action="transaction.refunded", object_id=txn.public_id).count() == 1


def test_over_refund_is_400_amount_too_large_with_the_remaining_amount(merchant_a, make_payment, queued_refunds):
    txn = make_payment(merchant_a, amount=1999)
    assert post_refund(merchant_a.client, txn, {"amount": 1500}).status_code == 201  # in flight: counts

    response = post_refund(merchant_a.client, txn, {"amount": 500})

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "amount_too_large", "amount")
    assert "499" in error["message"] and "4.99 USD" in error["message"]
    assert Refund.objects.count() == 1
    txn.refresh_from_db()
    assert txn.amount_refund_reserved == 1500


def test_refund_of_a_fully_refunded_payment_is_amount_too_large(merchant_a, make_payment, tasks_run_on_commit,
                                                                django_capture_on_commit_callbacks):
    txn = make_payment(merchant_a, amount=700)
    with django_capture_on_commit_callbacks(execute=True):
        assert post_refund(merchant_a.client, txn).status_code == 201

    response = post_refund(merchant_a.client, txn)

    assert response.status_code == 400 and response.json()["error"]["code"] == "amount_too_large"
    assert "0" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "payment", [
        {"capture_method": "manual"},  # authorized
        {"payment_method": "pm_card_chargeDeclinedInsufficientFunds"},  # failed
        {"payment_method": "pm_card_threeDSecure2Required"},  # requires_action
    ], ids=["authorized", "failed", "requires_action"],
)
def test_refund_of_a_payment_that_is_not_completed_is_409(merchant_a, make_payment, payment, queued_refunds):
    txn = make_payment(merchant_a, **payment)

    response = post_refund(merchant_a.client, txn, {"amount": 100, "reason": "x"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_state"
    assert not Refund.objects.exists() and queued_refunds == []


def test_idempotency_key_replays_the_refund_and_never_refunds_twice(merchant_a, make_payment, tasks_run_on_commit,
                                                                    django_capture_on_commit_callbacks):
    txn = make_payment(merchant_a, amount=1999)
    body = {"amount": 400, "reason": "Customer service request", "refundToOriginalMethod": True}

    with django_capture_on_commit_callbacks(execute=True):
        first = post_refund(merchant_a.client, txn, body, HTTP_IDEMPOTENCY_KEY="refund-order-42")
    with django_capture_on_commit_callbacks(execute=True):
        again = post_refund(merchant_a.client, txn, body, HTTP_IDEMPOTENCY_KEY="refund-order-42")
    other = post_refund(merchant_a.client, txn, {**body, "amount": 401}, HTTP_IDEMPOTENCY_KEY="refund-order-42")

    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert Refund.objects.count() == 1
    txn.refresh_from_db()
    assert txn.amount_refunded == 400 and charge_of(txn).amount_refunded == 400


def test_refund_to_another_method_is_an_off_gateway_credit_without_gateway_call(merchant_a, make_payment, queued_refunds,
                                                                                monkeypatch):
    from gateways.simulator.adapter import SimulatorGateway

    def no_call(self, **kwargs):
        raise AssertionError("an off-gateway credit must not call the gateway")

    monkeypatch.setattr(SimulatorGateway, "refund", no_call)
    txn = make_payment(merchant_a, amount=2500)

    response = post_refund(merchant_a.client, txn, {"amount": 1000, "reason": "Store credit",
                                                    "refundToOriginalMethod": False})

    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["method"], body["refundToOriginalMethod"]) == ("succeeded", "off_gateway_credit", False)
    assert body["gateway"] is None and body["gatewayReference"] is None
    assert queued_refunds == []
    txn.refresh_from_db()
    assert (txn.status, txn.amount_refunded) == ("partially_refunded", 1000)
    assert charge_of(txn).amount_refunded == 0  # the PSP was not asked
    entry = AuditEntry.objects.get(action="refund.succeeded", object_id=body["id"])
    assert entry.details["settlement"] == "off_gateway_credit"


def test_merchants_see_and_refund_only_their_own(merchant_a, merchant_b, make_payment, queued_refunds):
    theirs = make_payment(merchant_b, amount=1000)
    refund_b = post_refund(merchant_b.client, theirs, {"amount": 100}).json()

    assert post_refund(merchant_a.client, theirs, {"amount": 100}).status_code == 404
    assert merchant_a.client.get(f"/payment/refunds/{refund_b['id']}").status_code == 404
    assert merchant_a.client.get(f"/payment/transactions/{theirs.public_id}/refunds").status_code == 404
    assert merchant_a.client.get("/payment/refunds").json()["data"] == []
    assert [r["id"] for r in merchant_b.client.get("/payment/refunds").json()["data"]] == [refund_b["id"]]
    assert Refund.objects.count() == 1


@pytest.mark.parametrize("role,expected", [
    ("support", 201), ("finance", 201), ("admin", 201), ("operator", 403), ("auditor", 403),
])
def test_staff_roles_that_may_refund(merchant_a, make_payment, staff_api, queued_refunds, role, expected):
    txn = make_payment(merchant_a, amount=1000)

    response = post_refund(staff_api(role), txn, {"amount": 100, "reason": "Customer service request"})

    assert response.status_code == expected, response.json()
    if expected == 403:
        assert response.json()["error"]["code"] == "permission_denied" and not Refund.objects.exists()
    else:
        refund = Refund.objects.get()
        assert (refund.initiated_by_type, refund.initiated_by_id) == ("staff", f"{role}-api")
        assert response.json()["initiatedBy"] == {"type": "staff", "id": f"{role}-api"}
        # merchants see that staff acted, not who
        seen = merchant_a.client.get(f"/payment/refunds/{refund.public_id}").json()
        assert seen["initiatedBy"] == {"type": "staff", "id": None}


def test_staff_must_give_a_reason_merchants_need_not(merchant_a, make_payment, staff_api, queued_refunds):
    txn = make_payment(merchant_a, amount=1000)

    missing = post_refund(staff_api("support"), txn, {"amount": 100})
    blank = post_refund(staff_api("support"), txn, {"amount": 100, "reason": "   "})
    merchant = post_refund(merchant_a.client, txn, {"amount": 100})

    assert missing.status_code == blank.status_code == 400
    assert missing.json()["error"]["param"] == "reason"
    assert merchant.status_code == 201 and merchant.json()["reason"] == ""


@pytest.mark.parametrize("body,param", [
    ({"amount": 0}, "amount"),
    ({"amount": 10.5}, "amount"),
    ({"amount": "100"}, "amount"),
    ({"amount": True}, "amount"),
    ({"refundToOriginalMethod": "yes"}, "refundToOriginalMethod"),
    ({"reason": "x" * 501}, "reason"),
    ({"amountRefunded": 5}, "amountRefunded"),
])
def test_invalid_refund_requests_are_400_and_create_nothing(merchant_a, make_payment, queued_refunds, body, param):
    txn = make_payment(merchant_a, amount=1000)

    response = post_refund(merchant_a.client, txn, body)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert not Refund.objects.exists()


def test_refund_list_filters_and_pagination(merchant_a, make_payment, queued_refunds, staff_api):
    one, two = make_payment(merchant_a, amount=1000), make_payment(merchant_a, amount=1000)
    for _ in range(3):
        post_refund(merchant_a.client, one, {"amount": 100})
    post_refund(merchant_a.client, two, {"amount": 100, "refundToOriginalMethod": False})

    page = merchant_a.client.get("/payment/refunds?limit=2").json()
    assert len(page["data"]) == 2 and page["hasMore"] is True
    rest = merchant_a.client.get(f"/payment/refunds?limit=2&cursor={page['nextCursor']}").json()
    assert len(rest["data"]) == 2 and rest["hasMore"] is False
    assert {r["status"] for r in merchant_a.client.get("/payment/refunds?status=pending").json()["data"]} == {"pending"}
    assert len(merchant_a.client.get(f"/payment/refunds?transaction={two.public_id}").json()["data"]) == 1
    assert len(merchant_a.client.get("/payment/refunds?status=succeeded,pending").json()["data"]) == 4
    assert merchant_a.client.get("/payment/refunds?status=teleported").status_code == 400
    assert merchant_a.client.get("/payment/refunds?colour=blue").status_code == 400
    # staff read across merchants
    assert len(staff_api("auditor").get("/payment/refunds").json()["data"]) == 4


def test_refund_is_blocked_while_a_chargeback_is_open(merchant_a, make_payment, staff_api, queued_refunds):
    txn = make_payment(merchant_a, amount=1000)
    staff = staff_api("support")
    assert staff.post(f"/payment/transactions/{txn.public_id}/chargeback",
                      {"chargebackReference": "CB1", "amount": 1000, "reason": "Fraud"}, format="json").status_code == 201

    response = post_refund(merchant_a.client, txn, {"amount": 100})

    assert response.status_code == 409 and response.json()["error"]["code"] == "charge_disputed"
    assert not Refund.objects.exists()


def test_the_database_refuses_a_reservation_beyond_the_captured_amount(merchant_a, make_payment):
    from django.db import IntegrityError, transaction
    from django.db.models import F

    txn = make_payment(merchant_a, amount=1000)
    for changes in ({"amount_refund_reserved": F("amount_captured") + 1}, {"amount_refunded": 10},
                    {"amount_disputed": 5}, {"disputed": True}, {"amount_refund_reserved": -1}):
        with pytest.raises(IntegrityError):
            with transaction.atomic():
                Transaction.objects.filter(pk=txn.pk).update(**changes)
    assert Refund.objects.aggregate(total=Sum("amount"))["total"] is None
