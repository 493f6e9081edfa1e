"""Reconciliation against the ledger's books (reconciliation/ledger_link.py): the fee a payment
cost in the ledger is compared with the gateway's when the gateway reported one at capture,
and an approved ledger adjustment corrects the books so that the next run agrees."""

import dataclasses
import datetime as dt

import pytest
from django.db import connection

from core.actors import Actor
from gateways.simulator.adapter import SimulatorGateway
from gateways.simulator.settlements import ExtraCharge, SettlementDiscrepancies, settlement_discrepancies_set, simulator_fee
from ledger.models import LedgerTransaction
from reconciliation.ledger_link import recorded_fees_sql
from reconciliation.models import ItemState, ReconciliationItem
from reconciliation.services.runs import reconciliation_run
from tests.support.reconciliation import today

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("simulator_only", "away_from_midnight")]

ITEMS = "/payment/reconciliation/items"
REPORTED_LESS = 10  # the fee the simulator "reports at capture" is this much below its settlement report's


@pytest.fixture
def fee_reported_at_capture(monkeypatch):
    """The simulator answers captures with a fee, REPORTED_LESS below the one its report will show."""
    authorize = SimulatorGateway.authorize

    def with_fee(self, *, payment, idempotency_key):
        result = authorize(self, payment=payment, idempotency_key=idempotency_key)
        return dataclasses.replace(result, fee=simulator_fee(payment.amount) - REPORTED_LESS)

    monkeypatch.setattr(SimulatorGateway, "authorize", with_fee)


def recorded_fees() -> dict[int, int]:
    sql, params = recorded_fees_sql(gateway="simulator")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


def test_only_fees_the_gateway_reported_are_recorded(merchant_a, make_payment, monkeypatch, fee_reported_at_capture):
    with_fee = make_payment(merchant_a, amount=4000)
    monkeypatch.undo()  # the next capture reports no fee: FlowPay applies the merchant's schedule
    without_fee = make_payment(merchant_a, amount=3000)

    assert recorded_fees() == {with_fee.pk: simulator_fee(4000) - REPORTED_LESS}
    assert without_fee.pk not in recorded_fees()


def test_a_fee_mismatch_adjusted_in_the_ledger_is_matched_by_the_next_run(merchant_a, make_payment, staff_client,
                                                                           fee_reported_at_capture):
    txn = make_payment(merchant_a, amount=4000)
    reconciliation_run(gateway="simulator", settlement_date=today(), actor=Actor.system("test"))
    item = ReconciliationItem.objects.get(category="fee_mismatch")
    assert (item.transaction_id, item.flowpay_fee, item.gateway_fee) == (
        txn.pk, simulator_fee(4000) - REPORTED_LESS, simulator_fee(4000))

    finance, admin = staff_client("finance", "fiona"), staff_client("admin", "adam")
    requested = finance.post(f"{ITEMS}/{item.public_id}/resolve",
                             {"resolution": "ledger_adjustment", "reason": "the gateway's fee is 10 more"}, format="json")
    assert requested.status_code == 202, requested.json()
    approved = admin.post(f"{ITEMS}/{item.public_id}/approve", {}, format="json")
    assert approved.status_code == 200, approved.json()

    ltx = LedgerTransaction.objects.get(public_id=approved.json()["ledgerReference"])
    entries = {(e.account.code, e.account.gateway, e.side): e.amount for e in ltx.entries.select_related("account")}
    # the platform bears the difference: the merchant's funds do not move
    assert entries == {("fees", "", "debit"): REPORTED_LESS, ("gateway_clearing", "simulator", "credit"): REPORTED_LESS}
    assert (ltx.balance_type, ltx.amount, ltx.net) == (None, 0, 0)
    assert recorded_fees()[txn.pk] == simulator_fee(4000)

    reconciliation_run(gateway="simulator", settlement_date=today(), actor=Actor.system("test"))
    item.refresh_from_db()
    assert item.state == ItemState.RESOLVED
    assert not ReconciliationItem.objects.filter(category="fee_mismatch", state=ItemState.OPEN).exists()


def test_an_item_with_nothing_to_post_is_refused_and_changes_nothing(merchant_a, staff_client):
    settlement_discrepancies_set(SettlementDiscrepancies(extra_charges=(
        ExtraCharge(reference="sim_ch_nobody", amount=500, currency="USD", created=dt.datetime.now(dt.UTC)),)))
    reconciliation_run(gateway="simulator", settlement_date=today(), actor=Actor.system("test"))
    item = ReconciliationItem.objects.get(category="missing_locally")
    finance, admin = staff_client("finance", "fiona"), staff_client("admin", "adam")
    finance.post(f"{ITEMS}/{item.public_id}/resolve", {"resolution": "ledger_adjustment", "reason": "book it"},
                 format="json")

    refused = admin.post(f"{ITEMS}/{item.public_id}/approve", {}, format="json")

    # a charge nobody at FlowPay made belongs to no merchant's books
    assert refused.status_code == 400 and "names no merchant" in refused.json()["error"]["message"]
    item.refresh_from_db()
    assert (item.state, item.pending_resolution, item.ledger_reference) == (ItemState.INVESTIGATING, "ledger_adjustment", "")
    assert not LedgerTransaction.objects.filter(source_id=item.public_id).exists()
