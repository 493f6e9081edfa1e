"""The ledger end to end, through HTTP as a merchant and its finance staff would use it: pay
100.00 (fee 3.20), refund 30.00, lose a 20.00 chargeback (dispute fee 15.00), let the funds
become available, pay out the rest. The balance and the balance transactions add up to the
cent, and verify_ledger finds the books sound."""

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from ledger.models import Payout
from ledger.services.availability import ledger_release_due
from ledger.tasks import ledger_sweep_payouts_task

pytestmark = pytest.mark.django_db(transaction=True)


def balance(client) -> dict:
    response = client.get("/payment/balance")
    assert response.status_code == 200, response.json()
    body = response.json()
    return {key: {row["currency"]: row["amount"] for row in body[key]} for key in ("available", "pending", "reserved")}


def test_pay_refund_lose_a_chargeback_release_and_pay_out_to_the_cent(merchant_a, staff_api, tasks_run_on_commit,
                                                                       celery_eager):
    client = merchant_a.client
    finance = staff_api("finance", "fiona")

    # pay 100.00: 3.20 of fees (2.9 % + 0.30), 96.80 pending for two days
    payment = client.post("/payment/transactions", {"amount": 10000, "currency": "usd", "paymentMethod": "pm_card_visa"},
                          format="json", HTTP_IDEMPOTENCY_KEY="pay-1")
    assert payment.status_code == 201 and payment.json()["status"] == "completed", payment.json()
    txn_id = payment.json()["id"]
    assert balance(client) == {"available": {"USD": 0}, "pending": {"USD": 9680}, "reserved": {"USD": 0}}

    # refund 30.00 (sent to the gateway when the request commits)
    refund = client.post(f"/payment/transactions/{txn_id}/refund", {"amount": 3000, "reason": "damaged"}, format="json")
    assert refund.status_code == 201, refund.json()
    assert client.get(f"/payment/refunds/{refund.json()['id']}").json()["status"] == "succeeded"

    # a 20.00 chargeback: held in reserve, with the 15.00 dispute fee; then lost
    chargeback = client.post(f"/payment/transactions/{txn_id}/chargeback",
                             {"chargebackReference": "CB-E2E", "amount": 2000, "reason": "fraudulent"}, format="json")
    assert chargeback.status_code == 201, chargeback.json()
    assert balance(client) == {"available": {"USD": -3000 - 3500}, "pending": {"USD": 9680}, "reserved": {"USD": 2000}}
    lost = finance.post(f"/payment/chargebacks/{chargeback.json()['id']}/outcome", {"outcome": "lost"}, format="json")
    assert lost.status_code == 200 and lost.json()["status"] == "lost", lost.json()

    # two days later the funds are available: 96.80 - 30.00 - 20.00 - 15.00 = 31.80
    assert ledger_release_due(now=timezone.now() + dt.timedelta(days=2, minutes=1)) == 1
    assert balance(client) == {"available": {"USD": 3180}, "pending": {"USD": 0}, "reserved": {"USD": 0}}

    # pay out the rest: in transit at once, paid when the beat follows it up
    payout = client.post("/payment/payouts", {"amount": 3180, "currency": "usd", "description": "all of it"}, format="json",
                         HTTP_IDEMPOTENCY_KEY="payout-1")
    assert payout.status_code == 201, payout.json()
    assert (payout.json()["status"], payout.json()["amount"], payout.json()["gateway"]) == ("in_transit", 3180, "simulator")
    ledger_sweep_payouts_task.apply()
    assert client.get(f"/payment/payouts/{payout.json()['id']}").json()["status"] == "paid"
    assert balance(client) == {"available": {"USD": 0}, "pending": {"USD": 0}, "reserved": {"USD": 0}}

    # the balance transactions, newest first, to the cent
    listed = client.get("/payment/balance-transactions", {"limit": 100}).json()
    rows = [(row["type"], row["amount"], row["fee"], row["net"], row["status"]) for row in listed["data"]]
    assert rows == [
        ("payout", -3180, 0, -3180, "available"),
        ("chargeback", -2000, 1500, -3500, "available"),
        ("refund", -3000, 0, -3000, "available"),
        ("payment", 10000, 320, 9680, "available"),
    ]
    assert sum(row["net"] for row in listed["data"]) == 0  # = available + pending
    sources = [row["source"] for row in listed["data"]]
    assert sources == [payout.json()["id"], chargeback.json()["id"], refund.json()["id"], txn_id]
    assert listed["data"][0]["payout"] == payout.json()["id"]
    assert Payout.objects.get(public_id=payout.json()["id"]).status == "paid"

    # staff see the same from their side
    staff_view = staff_api("auditor", "ann").get("/payment/balance", {"merchant": merchant_a.merchant.public_id}).json()
    assert staff_view["available"] == [{"amount": 0, "currency": "USD"}]

    # and verify_ledger proves the books balance (exit 0)
    out = StringIO()
    call_command("verify_ledger", "--format", "json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["ok"] is True and report["problems"] == []
    assert report["currencies"] == [{"currency": "USD", "debits": report["currencies"][0]["debits"],
                                     "credits": report["currencies"][0]["debits"], "imbalance": 0}]
