"""The payments' runbook commands: query_failed_transactions, payment_method_success_rates,
find_stuck_transactions, check_gateway_transaction, resolve_stuck_transaction.

Like every runbook command: a readable table by default, one JSON document with --format
json, exit status 1 when it finds the problem it looks for and 0 when there is none,
usage errors as CommandError (tests/support/commands.py runs them)."""

import datetime as dt

import pytest
from django.core.management import CommandError
from django.utils import timezone

from audit.models import AuditEntry
from gateways.models import SimulatorCharge
from gateways.simulator.adapter import SimulatorFaults, simulator_faults_clear, simulator_faults_set
from payments.models import PaymentAttempt, Transaction
from tests.support.commands import run, run_json

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("simulator_only")]


@pytest.fixture
def stuck_payment(merchant_a, make_payment):
    """A payment charged at the simulator whose response was lost: processing, 15 min old."""

    def make(amount: int = 1999) -> Transaction:
        simulator_faults_set(SimulatorFaults(timeout_after_charge=True))
        txn = make_payment(merchant_a, amount=amount)
        simulator_faults_clear()
        assert txn.status == "processing"
        long_ago = timezone.now() - dt.timedelta(minutes=16)  # past the stuck threshold and the no-record grace
        Transaction.objects.filter(pk=txn.pk).update(processing_started_at=long_ago)
        PaymentAttempt.objects.filter(transaction_id=txn.pk).update(started_at=long_ago)
        return Transaction.objects.get(pk=txn.pk)

    return make


# --- query_failed_transactions --------------------------------------------------------------
def test_query_failed_transactions_finds_nothing_and_exits_zero():
    assert "OK: no failed transactions" in run("query_failed_transactions", "--last-hour").out
    document = run_json("query_failed_transactions", "--last-hour")
    assert document["failedTotal"] == 0 and document["byFailureCode"] == [] and document["latest"] == []
    assert document["windowSeconds"] == 3600


def test_query_failed_transactions_groups_by_failure_code_and_gateway(merchant_a, make_payment):
    make_payment(merchant_a, amount=1999, payment_method="pm_card_chargeDeclinedInsufficientFunds")
    make_payment(merchant_a, amount=500, payment_method="pm_card_chargeDeclinedInsufficientFunds")
    make_payment(merchant_a, amount=1000, currency="JPY", payment_method="pm_card_visa_chargeDeclined")
    make_payment(merchant_a, payment_method="pm_card_visa")  # succeeded: not listed
    old = make_payment(merchant_a, payment_method="pm_card_chargeDeclinedExpiredCard")
    Transaction.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(hours=2))

    text = run("query_failed_transactions", "--last-hour", expect=1).out
    assert "FAILURE CODE" in text and "insufficient_funds" in text and "card_declined" in text
    assert "19.99 USD" in text and "1000 JPY" in text and merchant_a.merchant.public_id in text
    assert "expired_card" not in text  # outside the window
    assert "PROBLEM: 3 failed transaction(s)" in text

    document = run_json("query_failed_transactions", "--last-hour", expect=1)
    assert document["failedTotal"] == 3
    assert document["byFailureCode"] == [
        {"failureCode": "insufficient_funds", "gateway": "simulator", "count": 2, "sharePercent": 66.7},
        {"failureCode": "card_declined", "gateway": "simulator", "count": 1, "sharePercent": 33.3},
    ]
    assert [row["failureCode"] for row in document["latest"]] == ["card_declined", "insufficient_funds", "insufficient_funds"]
    assert document["latest"][1] | {"created": None} == {
        "id": document["latest"][1]["id"], "merchant": merchant_a.merchant.public_id, "merchantName": "Merchant A",
        "amount": 500, "currency": "USD", "amountDisplay": "5.00 USD", "gateway": "simulator",
        "failureCode": "insufficient_funds", "failureMessage": "Your card has insufficient funds.", "created": None,
    }

    assert len(run_json("query_failed_transactions", "--limit", "1", expect=1)["latest"]) == 1
    assert run_json("query_failed_transactions", "--since", "3h", expect=1)["failedTotal"] == 4
    Transaction.objects.filter(status="failed").update(created_at=timezone.now() - dt.timedelta(minutes=45))
    run_json("query_failed_transactions", "--since", "30m")


# --- payment_method_success_rates -----------------------------------------------------------
def test_payment_method_success_rates_with_no_payments_exits_zero():
    assert "(no payments in the window)" in run("payment_method_success_rates").out
    document = run_json("payment_method_success_rates")
    assert document["byMethod"] == [] and document["minRatePercent"] == 90.0 and document["minVolume"] == 10


def test_payment_method_success_rates_flags_a_method_below_90_percent(merchant_a, make_payment):
    for _ in range(8):
        make_payment(merchant_a, payment_method="pm_card_visa")
    for _ in range(2):
        make_payment(merchant_a, payment_method="pm_card_visa_chargeDeclined")  # a visa card, declined
    make_payment(merchant_a, payment_method="pm_card_mastercard")
    make_payment(merchant_a, payment_method="pm_card_chargeDeclined")  # a card of no named brand: "card"

    text = run("payment_method_success_rates", expect=1).out
    assert "By payment method" in text and "By payment method and gateway" in text and "SUCCESS %" in text
    assert "PROBLEM: visa: success rate 80.0% over 10 attempts is below 90%" in text

    document = run_json("payment_method_success_rates", "--since", "24h", expect=1)
    by_method = {row["method"]: row for row in document["byMethod"]}
    assert set(by_method) == {"visa", "mastercard", "card"}
    assert by_method["visa"] == {
        "method": "visa", "attempts": 10, "succeeded": 8, "failed": 2, "inFlight": 0, "successRatePercent": 80.0,
        "belowThreshold": True,
    }
    assert by_method["mastercard"]["successRatePercent"] == 100.0 and not by_method["mastercard"]["belowThreshold"]
    # 0% but only one attempt: below the volume that is judged
    assert by_method["card"]["successRatePercent"] == 0.0 and not by_method["card"]["belowThreshold"]
    assert {(r["method"], r["gateway"], r["attempts"]) for r in document["byMethodAndGateway"]} == {
        ("visa", "simulator", 10), ("mastercard", "simulator", 1), ("card", "simulator", 1),
    }

    run_json("payment_method_success_rates", "--min-volume", "11")
    run_json("payment_method_success_rates", "--min-rate", "75")
    Transaction.objects.update(created_at=timezone.now() - dt.timedelta(days=2))
    assert run_json("payment_method_success_rates", "--since", "1d")["byMethod"] == []


# --- find_stuck_transactions, check_gateway_transaction, resolve_stuck_transaction ---------------
def test_find_stuck_transactions_finds_none(merchant_a, make_payment):
    make_payment(merchant_a)
    assert "OK: no transaction processing" in run("find_stuck_transactions").out
    assert run_json("find_stuck_transactions")["transactions"] == []


def test_find_stuck_transactions_lists_the_processing_ones(stuck_payment, merchant_a, make_payment):
    make_payment(merchant_a)  # completed: not stuck
    txn = stuck_payment(amount=2500)
    fresh = stuck_payment()
    Transaction.objects.filter(pk=fresh.pk).update(processing_started_at=timezone.now())  # processing, but young
    PaymentAttempt.objects.filter(transaction_id=fresh.pk).update(started_at=timezone.now())

    text = run("find_stuck_transactions", "--older-than", "10m", expect=1).out
    assert txn.public_id in text and fresh.public_id not in text
    assert "25.00 USD" in text and "16m" in text and "#1 authorize unknown (gateway_timeout)" in text

    document = run_json("find_stuck_transactions", "--older-than", "10m", expect=1)
    assert document["count"] == 1 and document["olderThanSeconds"] == 600
    [row] = document["transactions"]
    assert (row["id"], row["merchant"], row["amount"], row["gateway"]) == (txn.public_id, merchant_a.merchant.public_id, 2500, "simulator")
    assert row["lastAttempt"] == {"number": 1, "operation": "authorize", "outcome": "unknown", "errorCode": "gateway_timeout"}
    assert 890 <= row["ageSeconds"] <= 960

    run_json("find_stuck_transactions", "--older-than", "1h")
    assert run_json("find_stuck_transactions", expect=1)["olderThanSeconds"] == 120  # FLOWPAY_STUCK_AFTER_SECONDS


def test_a_stuck_transaction_is_checked_then_resolved_completed(stuck_payment):
    txn = stuck_payment()

    text = run("check_gateway_transaction", f"--transaction-id={txn.public_id}", expect=1).out
    assert "succeeded (→ completed)" in text and "MISMATCH" in text and "--status=completed" in text
    document = run_json("check_gateway_transaction", "--transaction-id", txn.public_id, expect=1)
    assert document["verdict"] == "mismatch" and document["flowpay"]["status"] == "processing"
    assert document["gateway"] == "simulator" and document["atGateway"]["status"] == "succeeded"
    assert document["atGateway"]["impliedStatus"] == "completed"
    assert document["atGateway"]["amount"] == 1999 and document["atGateway"]["flowpayReference"] == txn.public_id

    # the gateway says it succeeded: marking it failed is refused, and nothing changes
    refused = run("resolve_stuck_transaction", f"--transaction-id={txn.public_id}", "--status=failed", expect=1)
    assert "Refused" in refused.err and "succeeded" in refused.err and "--force" in refused.err
    assert Transaction.objects.get(pk=txn.pk).status == "processing"
    assert not AuditEntry.objects.filter(object_id=txn.public_id, action__startswith="transaction.resolved").exists()

    resolved = run_json("resolve_stuck_transaction", f"--transaction-id={txn.public_id}", "--status=completed")
    assert resolved["result"][0]["previousStatus"] == "processing" and resolved["result"][0]["status"] == "completed"
    txn.refresh_from_db()
    assert txn.status == "completed" and txn.amount_captured == 1999 and txn.gateway_reference.startswith("sim_ch")
    entry = AuditEntry.objects.get(object_id=txn.public_id, action="transaction.resolved")
    assert (entry.actor_type, entry.actor_id) == ("system", "manage.py resolve_stuck_transaction")
    assert entry.details["gateway_status"] == "succeeded"
    assert SimulatorCharge.objects.filter(flowpay_reference=txn.public_id).count() == 1  # charged once

    assert "consistent" in run("check_gateway_transaction", f"--transaction-id={txn.public_id}").out
    assert run_json("check_gateway_transaction", f"--transaction-id={txn.public_id}")["verdict"] == "consistent"
    # nothing left to resolve
    again = run("resolve_stuck_transaction", f"--transaction-id={txn.public_id}", "--status=completed", expect=1)
    assert "not processing" in again.err


def test_resolve_stuck_transaction_table_output(stuck_payment):
    txn = stuck_payment()
    text = run("resolve_stuck_transaction", f"--transaction-id={txn.public_id}", "--status=completed").out
    assert "BEFORE" in text and "processing" in text and "completed" in text and f"Resolved: {txn.public_id}" in text


def test_resolve_stuck_transaction_force_against_the_gateway_needs_a_reason(stuck_payment):
    txn = stuck_payment()
    missing = run("resolve_stuck_transaction", f"--transaction-id={txn.public_id}", "--status=failed", "--force", expect=1)
    assert "--reason" in missing.err and Transaction.objects.get(pk=txn.pk).status == "processing"
    refused = run_json("resolve_stuck_transaction", f"--transaction-id={txn.public_id}", "--status=failed", "--force", expect=1)
    assert refused["refused"] is True and refused["status"] == "processing"

    run("resolve_stuck_transaction", f"--transaction-id={txn.public_id}", "--status=failed", "--force",
        "--reason", "refunded at the gateway by hand")
    txn.refresh_from_db()
    assert txn.status == "failed"
    entry = AuditEntry.objects.get(object_id=txn.public_id, action="transaction.resolved_forced")
    assert entry.details["reason"] == "refunded at the gateway by hand" and entry.details["gateway_status"] == "succeeded"
    assert entry.actor_id == "manage.py resolve_stuck_transaction"


def test_check_gateway_transaction_no_record_and_unreachable(stuck_payment, gateway_env):
    txn = stuck_payment()
    SimulatorCharge.objects.filter(flowpay_reference=txn.public_id).delete()
    document = run_json("check_gateway_transaction", f"--transaction-id={txn.public_id}", expect=1)
    assert document["verdict"] == "no_record_at_gateway" and document["atGateway"] is None
    assert "no record at gateway" in run("check_gateway_transaction", f"--transaction-id={txn.public_id}", expect=1).out

    Transaction.objects.filter(pk=txn.pk).update(gateway="stripe")  # no Stripe key configured: cannot ask
    document = run_json("check_gateway_transaction", f"--transaction-id={txn.public_id}", expect=1)
    assert document["verdict"] == "gateway_unreachable" and "gateway_not_configured" in document["problems"][0]


def test_check_gateway_transaction_on_settled_payments(merchant_a, make_payment):
    completed = make_payment(merchant_a)
    declined = make_payment(merchant_a, payment_method="pm_card_visa_chargeDeclined")
    assert run_json("check_gateway_transaction", f"--transaction-id={completed.public_id}")["verdict"] == "consistent"
    document = run_json("check_gateway_transaction", f"--transaction-id={declined.public_id}")
    assert document["verdict"] == "consistent" and document["atGateway"]["status"] == "failed"


def test_unknown_transaction_ids_are_usage_errors():
    with pytest.raises(CommandError, match="No such transaction"):
        run("check_gateway_transaction", "--transaction-id=txn_doesnotexist")
    with pytest.raises(CommandError, match="No such transaction"):
        run("resolve_stuck_transaction", "--transaction-id=txn_doesnotexist", "--status=completed")
    with pytest.raises(CommandError):
        run("resolve_stuck_transaction", "--transaction-id=txn_x", "--status=refunded")


def test_a_payment_failed_here_but_completed_at_the_gateway_is_recovered(stuck_payment):
    # given a payment forced to failed (say, before the gateway's record showed up)
    txn = stuck_payment()
    run("resolve_stuck_transaction", f"--transaction-id={txn.public_id}", "--status=failed", "--force",
        "--reason", "gateway had no record yet")
    assert Transaction.objects.get(pk=txn.pk).status == "failed"
    run("check_gateway_transaction", f"--transaction-id={txn.public_id}", expect=1)  # MISMATCH

    # when the operator resolves it as completed, which the gateway confirms
    run("resolve_stuck_transaction", f"--transaction-id={txn.public_id}", "--status=completed")

    # then it is completed, audited as a recovery, and the gateway still has one charge
    recovered = Transaction.objects.get(pk=txn.pk)
    assert (recovered.status, recovered.amount_captured, recovered.failure_code) == ("completed", 1999, "")
    assert AuditEntry.objects.filter(object_id=txn.public_id, action="transaction.recovered").exists()
    assert SimulatorCharge.objects.filter(flowpay_reference=txn.public_id).count() == 1
    run("check_gateway_transaction", f"--transaction-id={txn.public_id}")
    # a failed payment the gateway never charged cannot be "recovered"
    other = stuck_payment(amount=500)
    SimulatorCharge.objects.filter(flowpay_reference=other.public_id).update(status="failed")
    run("resolve_stuck_transaction", f"--transaction-id={other.public_id}", "--status=failed")
    run("resolve_stuck_transaction", f"--transaction-id={other.public_id}", "--status=completed", expect=1)
    assert Transaction.objects.get(pk=other.pk).status == "failed"
