"""What the gateways report for the ledger: Stripe's fees (a charge's balance transaction, a
dispute's withdrawal), Stripe payout statuses, the simulator's payouts (idempotent, settled
when first asked, returned with the payout_failure fault)."""

import datetime as dt

import pytest

from gateways.base import PayoutState
from gateways.simulator.adapter import SimulatorFaults, SimulatorGateway, simulator_faults_clear, simulator_faults_get
from gateways.stripe.mapping import charge_fee, charge_result, payout_result
from tests.gateways.test_events import webhook_event
from tests.support.commands import run


def test_stripe_s_fee_is_read_from_the_charge_s_expanded_balance_transaction():
    intent = {"id": "pi_1", "status": "succeeded", "amount": 10000, "amount_received": 10000,
              "latest_charge": {"id": "ch_1", "balance_transaction": {"id": "txn_1", "fee": 320, "net": 9680}}}
    assert charge_fee(intent) == 320 and charge_result(intent, amount=10000).fee == 320
    # not expanded, or no charge yet: the fee is unknown (the merchant's schedule applies)
    assert charge_fee({**intent, "latest_charge": "ch_1"}) is None
    assert charge_fee({**intent, "latest_charge": {"id": "ch_1", "balance_transaction": "txn_1"}}) is None
    assert charge_fee({"id": "pi_2", "status": "requires_capture"}) is None


def test_stripe_s_dispute_fee_is_the_fee_of_its_withdrawal():
    from gateways.events import webhook_event_changes

    created = {"id": "dp_1", "status": "needs_response", "amount": 2000, "currency": "usd", "payment_intent": "pi_1",
               "balance_transactions": [{"id": "txn_w", "amount": -2000, "fee": 1500, "net": -3500}]}
    assert webhook_event_changes(webhook_event("stripe", "charge.dispute.created", created)).dispute.fee == 1500
    won = {**created, "status": "won", "balance_transactions": [
        {"id": "txn_w", "amount": -2000, "fee": 1500}, {"id": "txn_r", "amount": 2000, "fee": 0}]}
    assert webhook_event_changes(webhook_event("stripe", "charge.dispute.closed", won)).dispute.fee == 1500
    assert webhook_event_changes(webhook_event("stripe", "charge.dispute.created", {"id": "dp_2", "status": "needs_response"})).dispute.fee is None


@pytest.mark.parametrize("status, state", [
    ("pending", PayoutState.IN_TRANSIT), ("in_transit", PayoutState.IN_TRANSIT), ("paid", PayoutState.PAID),
    ("failed", PayoutState.FAILED), ("canceled", PayoutState.FAILED),
])
def test_stripe_payout_statuses(status, state):
    result = payout_result({"id": "po_1", "status": status, "amount": 500, "currency": "eur", "arrival_date": 1796000000,
                            "failure_code": "account_closed" if status == "failed" else None})
    assert (result.reference, result.state, result.amount, result.currency) == ("po_1", state, 500, "EUR")
    assert result.arrival_date is not None
    if state == PayoutState.FAILED:
        assert result.failure_code == ("account_closed" if status == "failed" else "payout_canceled")


@pytest.mark.django_db
def test_simulator_payouts_honour_their_key_and_settle_when_asked():
    gateway = SimulatorGateway()
    first = gateway.payout(amount=700, currency="USD", flowpay_reference="po_x", description="", idempotency_key="k-1")
    again = gateway.payout(amount=700, currency="USD", flowpay_reference="po_x", description="", idempotency_key="k-1")
    assert first.state == PayoutState.IN_TRANSIT and again.reference == first.reference
    assert gateway.fetch_payout(idempotency_key="k-1").state == PayoutState.PAID
    assert gateway.fetch_payout(reference=first.reference).state == PayoutState.PAID  # stays paid
    assert gateway.fetch_payout(reference="sim_po_unknown") is None
    # a payout record is not a settlement of a payment
    day = dt.datetime.combine(dt.datetime.now(dt.UTC).date(), dt.time.min, tzinfo=dt.UTC)
    assert list(gateway.settlement_records(start=day, end=day + dt.timedelta(days=1))) == []


@pytest.mark.django_db
def test_the_payout_failure_fault_returns_payouts_in_transit(settings):
    gateway = SimulatorGateway()
    made = gateway.payout(amount=700, currency="USD", flowpay_reference="po_y", description="", idempotency_key="k-2")
    run("simulator_faults", "--payout-failure", "account_closed")
    assert simulator_faults_get().payout_failure == "account_closed" and simulator_faults_get().active
    returned = gateway.fetch_payout(reference=made.reference)
    assert (returned.state, returned.failure_code) == (PayoutState.FAILED, "account_closed")
    run("simulator_faults", "--payout-failure", "")
    assert simulator_faults_get() == SimulatorFaults()
    simulator_faults_clear()
