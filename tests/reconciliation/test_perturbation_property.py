"""A property of the matcher: take a day that matches, perturb the gateway's side at random
(drop a row, report it twice, change its amount, currency or fee, refund it behind FlowPay's
back): every perturbation lands in its own category, nothing else is reported, and the
items' differences add up to the day's net difference, per currency (fees apart). Each
example is a dry run (everything rolled back), so the examples do not see each other."""

import datetime as dt
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.actors import Actor
from gateways.models import SimulatorCharge
from gateways.simulator.settlements import SettlementDiscrepancies, settlement_discrepancies_set, simulator_fee
from reconciliation.services.runs import reconciliation_run

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("simulator_only", "away_from_midnight")]

PAYMENTS = 6
CATEGORY = {"drop": "missing_at_gateway", "duplicate": "duplicate_at_gateway", "amount": "amount_mismatch",
            "currency": "currency_mismatch", "refunded": "status_mismatch", "fee": "fee_mismatch"}

perturbation = st.one_of(
    st.none(),
    st.just(("drop",)), st.just(("duplicate",)), st.just(("refunded",)),
    st.tuples(st.just("amount"), st.integers(min_value=-900, max_value=900).filter(bool)),
    st.tuples(st.just("currency"), st.sampled_from(["EUR", "GBP", "JPY"])),
    st.tuples(st.just("fee"), st.integers(min_value=0, max_value=5000)),
)


def discrepancies_for(changes: dict[str, tuple], base_fees: dict[str, int]) -> SettlementDiscrepancies:
    return SettlementDiscrepancies(
        missing=tuple(ref for ref, c in changes.items() if c[0] == "drop"),
        duplicate=tuple(ref for ref, c in changes.items() if c[0] == "duplicate"),
        refunded=tuple(ref for ref, c in changes.items() if c[0] == "refunded"),
        amount_delta={ref: c[1] for ref, c in changes.items() if c[0] == "amount"},
        currency={ref: c[1] for ref, c in changes.items() if c[0] == "currency"},
        fee={ref: c[1] for ref, c in changes.items() if c[0] == "fee" and c[1] != base_fees[ref]},
    )


def expected_net(changes: dict[str, tuple], amounts: dict[str, int]) -> dict[str, int]:
    net: dict[str, int] = defaultdict(int)
    for ref, change in changes.items():
        amount = amounts[ref]
        if change[0] == "drop" or change[0] == "refunded":
            net["USD"] -= amount
        elif change[0] == "duplicate":
            net["USD"] += amount
        elif change[0] == "amount":
            net["USD"] += change[1]
        elif change[0] == "currency":
            net["USD"] -= amount
            net[change[1]] += amount
    return {currency: n for currency, n in net.items() if n}


def test_random_perturbations_of_a_matched_day_land_in_their_categories(merchant_a, make_payment, recorded_fees):
    payments = [make_payment(merchant_a, amount=1000 * (n + 1) + n) for n in range(PAYMENTS)]
    charges = {txn.public_id: SimulatorCharge.objects.get(reference=txn.gateway_reference) for txn in payments}
    reference = {public_id: charge.reference for public_id, charge in charges.items()}
    amounts = {charge.reference: charge.amount_captured for charge in charges.values()}
    base_fees = {ref: simulator_fee(amount) for ref, amount in amounts.items()}
    recorded_fees({txn.pk: simulator_fee(txn.amount) for txn in payments})
    day = dt.datetime.now(dt.UTC).date()

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(perturbation, min_size=PAYMENTS, max_size=PAYMENTS))
    def check(drawn):
        changes = {reference[txn.public_id]: change for txn, change in zip(payments, drawn, strict=True) if change}
        changes = {ref: c for ref, c in changes.items() if not (c[0] == "fee" and c[1] == base_fees[ref])}
        settlement_discrepancies_set(discrepancies_for(changes, base_fees))

        report = reconciliation_run(gateway="simulator", settlement_date=day, actor=Actor.system("test"), dry_run=True)

        by_payment = {ref: public_id for public_id, ref in reference.items()}
        assert sorted((item.local_reference, item.category) for item in report.items) == sorted(
            (by_payment[ref], CATEGORY[change[0]]) for ref, change in changes.items())
        matched = PAYMENTS - sum(1 for c in changes.values() if c[0] not in ("duplicate", "refunded"))
        assert report.counts["matched"] == matched
        net: dict[str, int] = defaultdict(int)
        for item in report.items:
            if item.gateway_amount is not None:
                net[item.gateway_currency] += item.gateway_amount
            if item.flowpay_amount is not None:
                net[item.flowpay_currency] -= item.flowpay_amount
        assert {c: n for c, n in net.items() if n} == expected_net(changes, amounts)
        assert {c: n for c, n in report.totals["difference"].items() if n} == expected_net(changes, amounts)
        fee_diff = sum(item.gateway_fee - item.flowpay_fee for item in report.items if item.category == "fee_mismatch")
        assert fee_diff == sum(c[1] - base_fees[ref] for ref, c in changes.items() if c[0] == "fee")

    check()
