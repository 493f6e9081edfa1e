"""Reconciling the simulator's settlement day (its report built from its charge store, with
discrepancies injected at runtime): a golden day per category, a clean day, re-runs, dry
runs and a gateway that is down, through the runbook command."""

import json

import pytest

from core.actors import Actor
from gateways.models import SimulatorCharge
from gateways.simulator.adapter import SimulatorFaults, simulator_faults_set
from gateways.simulator.settlements import (
    ExtraCharge,
    SettlementDiscrepancies,
    settlement_discrepancies_set,
    simulator_fee,
)
from reconciliation.models import ItemState, ReconciliationItem, ReconciliationRun
from refunds.services.create import refund_create
from tests.support.reconciliation import (
    by_category,
    discrepancy_counts,
    net_by_currency,
    reconcile,
    reconcile_failing,
    row_counts,
    today,
)
from tests.support.refunds import run_queued

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("simulator_only", "away_from_midnight")]


def charge_of(txn) -> SimulatorCharge:
    return SimulatorCharge.objects.get(reference=txn.gateway_reference)


@pytest.fixture
def day_of_payments(merchant_a, make_payment, queued_refunds, recorded_fees, django_capture_on_commit_callbacks):
    """Eight completed payments and one refund of 5.00, all settled today; the ledger's fees
    are the simulator's."""
    payments = [make_payment(merchant_a, amount=1000 * (n + 1)) for n in range(8)]
    with django_capture_on_commit_callbacks(execute=True):
        refund_create(transaction_id=payments[0].pk, amount=500, reason="damaged", actor=Actor.system("test"))
    run_queued(queued_refunds)
    recorded_fees({txn.pk: simulator_fee(txn.amount) for txn in payments})
    return payments


def test_a_clean_day_matches_everything_and_exits_0(day_of_payments):
    document = reconcile("simulator", today())

    assert document["ok"] is True and document["items"] == []
    assert document["counts"] == {"matched": 9, **{c: 0 for c in document["counts"] if c != "matched"}}
    assert document["gatewayRows"] == 9 and document["localRecords"] == 9
    assert document["totals"]["difference"] == {"USD": 0}
    run = ReconciliationRun.objects.get(public_id=document["runId"])
    assert (run.gateway, run.attempt, run.source, run.discrepancies) == ("simulator", 1, "api", 0)


def test_a_golden_day_puts_each_discrepancy_in_its_category(day_of_payments, merchant_a):
    p = [charge_of(txn).reference for txn in day_of_payments]
    settlement_discrepancies_set(SettlementDiscrepancies(
        missing=(p[1],), amount_delta={p[2]: -100}, currency={p[3]: "EUR"}, refunded=(p[4],), fee={p[5]: 999},
        duplicate=(p[6],),
        extra_charges=(ExtraCharge(reference="sim_ch_stranger", amount=4200, currency="USD",
                                   created=day_of_payments[0].created_at),),
    ))

    document = reconcile("simulator", today(), expect=1)

    found = by_category(document)
    assert discrepancy_counts(document) == {"missing_at_gateway": 1, "missing_locally": 1, "amount_mismatch": 1,
                                            "currency_mismatch": 1, "status_mismatch": 1, "fee_mismatch": 1,
                                            "duplicate_at_gateway": 1}
    # p0 and its refund, p4 (its extra refund is the status item), p6 (its second row is the duplicate), p7
    assert document["counts"]["matched"] == 5
    txn = day_of_payments
    (missing,) = found["missing_at_gateway"]
    assert (missing["localReference"], missing["gatewayReference"], missing["flowpayAmount"]) == (txn[1].public_id, None, 2000)
    (stranger,) = found["missing_locally"]
    assert (stranger["gatewayReference"], stranger["gatewayAmount"], stranger["localReference"]) == ("sim_ch_stranger", 4200, None)
    assert found["amount_mismatch"][0]["diff"] == [{"field": "amount", "flowpay": 3000, "gateway": 2900}]
    assert found["currency_mismatch"][0]["diff"][0] == {"field": "currency", "flowpay": "USD", "gateway": "EUR"}
    status = found["status_mismatch"][0]
    assert (status["localReference"], status["kind"], status["gatewayAmount"]) == (txn[4].public_id, "refund", -5000)
    assert status["diff"][0] == {"field": "status", "flowpay": "completed", "gateway": "refunded"}
    assert found["fee_mismatch"][0]["diff"] == [{"field": "fee", "flowpay": simulator_fee(6000), "gateway": 999}]
    duplicate = found["duplicate_at_gateway"][0]
    assert (duplicate["localReference"], duplicate["gatewayAmount"], duplicate["flowpayAmount"]) == (txn[6].public_id, 7000, 0)
    assert duplicate["diff"] == [{"field": "count", "flowpay": 1, "gateway": 2}]
    assert all(item["state"] == "open" and item["merchant"] in (merchant_a.merchant.public_id, None)
               for item in document["items"])
    # the net difference of the day, per currency, is the sum of the items' differences
    assert net_by_currency(document["items"]) == {"USD": -2000 - 100 - 4000 - 5000 + 7000 + 4200, "EUR": 4000}
    assert document["totals"]["difference"] == net_by_currency(document["items"])


def test_reconciling_the_same_day_again_updates_the_same_items(day_of_payments):
    p = [charge_of(txn).reference for txn in day_of_payments]
    settlement_discrepancies_set(SettlementDiscrepancies(missing=(p[1],), amount_delta={p[2]: 50}))
    first = reconcile("simulator", today(), expect=1)

    again = reconcile("simulator", today(), "--rerun", expect=1)

    assert {i["id"] for i in again["items"]} == {i["id"] for i in first["items"]}
    assert ReconciliationItem.objects.count() == 2
    assert set(ReconciliationItem.objects.values_list("occurrences", flat=True)) == {2}
    assert list(ReconciliationRun.objects.order_by("attempt").values_list("attempt", flat=True)) == [1, 2]
    assert again["runId"] != first["runId"]


def test_without_rerun_a_day_already_reconciled_reports_its_last_run(day_of_payments):
    settlement_discrepancies_set(SettlementDiscrepancies(missing=(charge_of(day_of_payments[1]).reference,)))
    first = reconcile("simulator", today(), expect=1)

    shown = reconcile("simulator", today(), expect=1)

    assert shown["runId"] == first["runId"] and shown["alreadyReconciled"] is True
    assert ReconciliationRun.objects.count() == 1


def test_an_item_a_rerun_no_longer_finds_is_cleared_and_reopens_if_found_again(day_of_payments):
    p1 = charge_of(day_of_payments[1]).reference
    settlement_discrepancies_set(SettlementDiscrepancies(missing=(p1,)))
    reconcile("simulator", today(), expect=1)
    settlement_discrepancies_set(SettlementDiscrepancies())

    cleared = reconcile("simulator", today(), "--rerun")

    assert cleared["items"] == []
    item = ReconciliationItem.objects.get()
    assert (item.state, item.resolution, item.auto_cleared) == (ItemState.RESOLVED, "timing", True)
    settlement_discrepancies_set(SettlementDiscrepancies(missing=(p1,)))
    reopened = reconcile("simulator", today(), "--rerun", expect=1)
    item.refresh_from_db()
    assert (item.state, item.resolution, item.auto_cleared) == (ItemState.OPEN, "", False)
    assert [i["id"] for i in reopened["items"]] == [item.public_id]


def test_a_dry_run_writes_nothing(day_of_payments):
    settlement_discrepancies_set(SettlementDiscrepancies(missing=(charge_of(day_of_payments[1]).reference,)))
    before = row_counts()

    document = reconcile("simulator", today(), "--dry-run", expect=1)

    assert row_counts() == before
    assert document["runId"] is None and document["dryRun"] is True
    assert discrepancy_counts(document) == {"missing_at_gateway": 1}
    assert document["items"][0]["category"] == "missing_at_gateway"


def test_a_gateway_that_is_down_exits_2_and_leaves_no_run(day_of_payments):
    simulator_faults_set(SimulatorFaults(error_rate=1.0))
    before = row_counts()

    error = reconcile_failing("simulator", today())

    assert "injected outage" in str(error)
    assert row_counts() == before
    assert not ReconciliationRun.objects.exists()


def test_a_same_day_capture_is_awaiting_settlement_before_the_gateway_s_delay(day_of_payments, settings):
    settings.FLOWPAY_RECONCILIATION_SETTLEMENT_DELAYS = ["simulator=3600"]
    settlement_discrepancies_set(SettlementDiscrepancies(missing=(charge_of(day_of_payments[1]).reference,)))

    document = reconcile("simulator", today())

    assert document["items"] == [] and document["awaitingSettlement"] == 1
    assert not ReconciliationItem.objects.exists()


def test_bad_flags_are_usage_errors():
    reconcile_failing("nowhere", today())
    reconcile_failing("simulator", "15/05/2023")
    reconcile_failing("paypal", today(), "--file", "/dev/null")


def test_a_drill_injects_discrepancies_from_the_command_line(day_of_payments):
    from tests.support.commands import run

    p1, p2 = charge_of(day_of_payments[1]).reference, charge_of(day_of_payments[2]).reference
    run("simulator_settlements", "--missing", p1)
    shown = json.loads(run("simulator_settlements", "--amount-off", f"{p2}=-7", "--extra-charge", "300:EUR").out)

    assert shown["missing"] == [p1] and shown["amountOff"] == {p2: -7} and shown["extraCharges"][0]["currency"] == "EUR"
    assert discrepancy_counts(reconcile("simulator", today(), expect=1)) == {
        "missing_at_gateway": 1, "amount_mismatch": 1, "missing_locally": 1}
    assert json.loads(run("simulator_settlements", "--clear").out)["missing"] == []
    assert reconcile("simulator", today(), "--rerun")["items"] == []
