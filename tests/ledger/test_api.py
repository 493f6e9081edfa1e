"""The merchant API of the ledger: GET /payment/balance, /payment/balance-transactions (cursor
pagination, filters), POST/GET /payment/payouts (Idempotency-Key, 400 insufficient_funds
with nothing moved), merchant and mode isolation, staff read access by capability."""

import pytest
from rest_framework.test import APIClient

from accounts.services import api_key_create
from core.actors import Actor
from ledger.models import LedgerEntry, LedgerTransaction, Payout
from tests.support.ledger import release_all

pytestmark = pytest.mark.django_db


def pay(account, amount: int = 10000, currency: str = "usd", **extra) -> dict:
    response = account.client.post("/payment/transactions", {"amount": amount, "currency": currency,
                                                             "paymentMethod": "pm_card_visa", **extra}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_new_merchant_has_an_empty_balance(merchant_a):
    body = merchant_a.client.get("/payment/balance").json()
    assert body == {"object": "balance", "livemode": False, "merchant": merchant_a.merchant.public_id,
                    "available": [], "pending": [], "reserved": []}


def test_the_balance_is_per_currency_and_per_mode(merchant_a):
    pay(merchant_a, 10000, "usd")
    pay(merchant_a, 5000, "eur")
    live = APIClient()
    secret = api_key_create(merchant=merchant_a.merchant, environment="live", actor=Actor.system("test")).secret
    live.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    body = merchant_a.client.get("/payment/balance").json()
    assert body["pending"] == [{"amount": 4825, "currency": "EUR"}, {"amount": 9680, "currency": "USD"}]
    assert body["available"] == [{"amount": 0, "currency": "EUR"}, {"amount": 0, "currency": "USD"}]
    # the live key sees the live books: nothing yet
    assert live.get("/payment/balance").json()["pending"] == []


def test_balance_transactions_paginate_with_a_cursor_and_filter(merchant_a, make_payment):
    for amount in (1000, 2000, 3000):
        pay(merchant_a, amount)
    first = merchant_a.client.get("/payment/balance-transactions", {"limit": 2}).json()
    assert [row["amount"] for row in first["data"]] == [3000, 2000] and first["hasMore"] is True
    second = merchant_a.client.get("/payment/balance-transactions", {"limit": 2, "cursor": first["nextCursor"]}).json()
    assert [row["amount"] for row in second["data"]] == [1000] and second["hasMore"] is False

    row = first["data"][0]
    assert row["id"].startswith("bt_") and row["object"] == "balance_transaction"
    assert (row["type"], row["fee"], row["net"], row["currency"], row["status"]) == ("payment", 117, 2883, "USD", "pending")
    assert row["source"].startswith("txn_") and row["availableOn"] > row["createdAt"] and row["payout"] is None

    one = merchant_a.client.get("/payment/balance-transactions", {"source": row["source"]}).json()["data"]
    assert [r["id"] for r in one] == [row["id"]]
    assert merchant_a.client.get(f"/payment/balance-transactions/{row['id']}").json()["id"] == row["id"]
    assert merchant_a.client.get("/payment/balance-transactions", {"type": "refund,payout"}).json()["data"] == []
    assert len(merchant_a.client.get("/payment/balance-transactions", {"type": "payment", "currency": "usd"}).json()["data"]) == 3
    assert merchant_a.client.get("/payment/balance-transactions", {"currency": "eur"}).json()["data"] == []
    created = row["createdAt"]
    assert [r["amount"] for r in merchant_a.client.get(
        "/payment/balance-transactions", {"createdGte": created}).json()["data"]] == [3000]
    assert len(merchant_a.client.get("/payment/balance-transactions", {"createdLte": created}).json()["data"]) == 3

    release_all()
    assert merchant_a.client.get(f"/payment/balance-transactions/{row['id']}").json()["status"] == "available"


@pytest.mark.parametrize("params, param", [
    ({"type": "salary"}, "type"), ({"currency": "xyz"}, "currency"), ({"unknown": "1"}, "unknown"),
    ({"createdGte": "yesterday"}, "createdGte"), ({"limit": "0"}, "limit"),
])
def test_bad_balance_transaction_filters_are_400(merchant_a, params, param):
    response = merchant_a.client.get("/payment/balance-transactions", params)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_a_payout_moves_available_funds_and_its_balance_transactions_name_it(merchant_a):
    pay(merchant_a, 10000)
    release_all()
    response = merchant_a.client.post("/payment/payouts", {"amount": 5000, "currency": "usd"}, format="json")

    assert response.status_code == 201, response.json()
    payout = response.json()
    assert payout["id"].startswith("po_") and payout["object"] == "payout"
    assert (payout["status"], payout["amount"], payout["currency"], payout["automatic"]) == ("in_transit", 5000, "USD", False)
    assert payout["gatewayReference"].startswith("sim_po_") and payout["failureCode"] is None
    assert merchant_a.client.get("/payment/balance").json()["available"] == [{"amount": 4680, "currency": "USD"}]
    rows = merchant_a.client.get("/payment/balance-transactions", {"payout": payout["id"]}).json()["data"]
    assert [(r["type"], r["net"], r["source"]) for r in rows] == [("payout", -5000, payout["id"])]
    listed = merchant_a.client.get("/payment/payouts", {"status": "in_transit"}).json()["data"]
    assert [p["id"] for p in listed] == [payout["id"]]
    assert merchant_a.client.get("/payment/payouts", {"status": "paid"}).json()["data"] == []


def test_a_payout_larger_than_available_is_400_and_nothing_moves(merchant_a):
    pay(merchant_a, 10000)
    release_all()
    before = (LedgerTransaction.objects.count(), LedgerEntry.objects.count(), Payout.objects.count())

    response = merchant_a.client.post("/payment/payouts", {"amount": 9681, "currency": "usd"}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "insufficient_funds", "amount")
    assert "9680" in error["message"]
    assert (LedgerTransaction.objects.count(), LedgerEntry.objects.count(), Payout.objects.count()) == before
    assert merchant_a.client.get("/payment/balance").json()["available"] == [{"amount": 9680, "currency": "USD"}]
    # pending funds are not available: nothing can be paid out of them
    pay(merchant_a, 10000)
    assert merchant_a.client.post("/payment/payouts", {"amount": 9681, "currency": "usd"}, format="json").status_code == 400


def test_a_payout_retried_with_its_idempotency_key_is_made_once(merchant_a):
    pay(merchant_a, 10000)
    release_all()
    body = {"amount": 1000, "currency": "usd", "description": "weekly"}
    first = merchant_a.client.post("/payment/payouts", body, format="json", HTTP_IDEMPOTENCY_KEY="po-key")
    again = merchant_a.client.post("/payment/payouts", body, format="json", HTTP_IDEMPOTENCY_KEY="po-key")
    other = merchant_a.client.post("/payment/payouts", {**body, "amount": 2000}, format="json", HTTP_IDEMPOTENCY_KEY="po-key")

    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again["Idempotent-Replayed"] == "true"
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert Payout.objects.count() == 1
    assert merchant_a.client.get("/payment/balance").json()["available"] == [{"amount": 8680, "currency": "USD"}]


@pytest.mark.parametrize("body, param", [
    ({"amount": 10.5, "currency": "usd"}, "amount"), ({"amount": "100", "currency": "usd"}, "amount"),
    ({"amount": 0, "currency": "usd"}, "amount"), ({"currency": "usd"}, "amount"), ({"amount": 100}, "currency"),
    ({"amount": 100, "currency": "zzz"}, "currency"), ({"amount": 100, "currency": "usd", "status": "paid"}, "status"),
])
def test_bad_payout_requests_are_400_and_make_nothing(merchant_a, body, param):
    response = merchant_a.client.post("/payment/payouts", body, format="json")
    assert response.status_code == 400 and response.json()["error"]["param"] == param
    assert not Payout.objects.exists()


def test_merchants_see_only_their_own_ledger(merchant_a, merchant_b):
    pay(merchant_a, 10000)
    release_all()
    payout = merchant_a.client.post("/payment/payouts", {"amount": 100, "currency": "usd"}, format="json").json()
    bt = merchant_a.client.get("/payment/balance-transactions").json()["data"][0]

    assert merchant_b.client.get(f"/payment/payouts/{payout['id']}").status_code == 404
    assert merchant_b.client.get(f"/payment/balance-transactions/{bt['id']}").status_code == 404
    assert merchant_b.client.get("/payment/balance-transactions").json()["data"] == []
    assert merchant_b.client.get("/payment/payouts").json()["data"] == []
    assert merchant_b.client.get("/payment/balance").json()["available"] == []
    # ?merchant= is ignored for an API key
    assert merchant_b.client.get("/payment/payouts", {"merchant": merchant_a.merchant.public_id}).json()["data"] == []


@pytest.mark.parametrize("role", ["finance", "support", "auditor", "admin"])
def test_staff_who_may_read_merchant_money_read_the_ledger(merchant_a, staff_client, role):
    pay(merchant_a, 10000)
    client = staff_client(role)
    merchant = merchant_a.merchant.public_id
    balance = client.get("/payment/balance", {"merchant": merchant})
    assert balance.status_code == 200 and balance.json()["pending"] == [{"amount": 9680, "currency": "USD"}]
    listed = client.get("/payment/balance-transactions", {"merchant": merchant, "livemode": "false"}).json()["data"]
    assert [row["type"] for row in listed] == ["payment"]
    assert client.get("/payment/payouts").status_code == 200
    # staff read, merchants pay out
    assert client.post("/payment/payouts", {"amount": 100, "currency": "usd"}, format="json").status_code == 403


def test_operators_do_not_read_merchant_money_and_staff_name_the_merchant(merchant_a, staff_client):
    operator = staff_client("operator")
    for path in ("/payment/balance", "/payment/balance-transactions", "/payment/payouts"):
        assert operator.get(path).status_code == 403
    finance = staff_client("finance")
    missing = finance.get("/payment/balance")
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "parameter_missing"
    unknown = finance.get("/payment/balance", {"merchant": "mer_nope"})
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "merchant"
    assert finance.get("/payment/balance", {"merchant": merchant_a.merchant.public_id, "livemode": "yes"}).status_code == 400
