"""Reconciling Stripe's balance transactions over real HTTP against a localstripe of the
test's own (real SDK, auto-pagination, the `created` filter refused and applied on FlowPay's
side): a golden day per category and a clean day. Payments and refunds go through FlowPay
and the Stripe adapter; the discrepancies are what a gateway and a ledger really drift into:
a payment made at Stripe behind FlowPay's back, a refund made there, a refund sent twice to a
peer that ignores idempotency keys (localstripe does), and FlowPay records that say otherwise."""

import pytest

from core.actors import Actor
from gateways import registry
from gateways.base import ChargeRequest
from gateways.stripe.adapter import StripeGateway
from payments.models import Transaction
from reconciliation.models import ReconciliationItem
from refunds.models import Refund
from refunds.services.create import refund_create
from tests.support.reconciliation import by_category, discrepancy_counts, net_by_currency, reconcile, today
from tests.support.refunds import run_queued

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("away_from_midnight")]


@pytest.fixture
def stripe_day(private_stripe_gateway, settings, monkeypatch):
    settings.FLOWPAY_GATEWAYS = ["stripe"]
    settings.FLOWPAY_RECONCILIATION_SETTLEMENT_DELAYS = ["stripe=0"]
    monkeypatch.setitem(registry.GATEWAY_CLASSES, "stripe", StripeGateway)
    monkeypatch.setattr("gateways.stripe.settlements.PAGE_SIZE", 3)  # several pages of balance history
    registry.gateway_named.cache_clear()
    yield private_stripe_gateway
    registry.gateway_named.cache_clear()


@pytest.fixture
def refunded(queued_refunds, django_capture_on_commit_callbacks):
    def refund(txn, amount: int) -> Refund:
        with django_capture_on_commit_callbacks(execute=True):
            created = refund_create(transaction_id=txn.pk, amount=amount, reason="returned", actor=Actor.system("test"))
        run_queued(queued_refunds)
        return Refund.objects.get(pk=created.pk)

    return refund


def test_a_clean_stripe_day_matches_payments_and_refunds_and_exits_0(stripe_day, merchant_a, make_payment, refunded):
    payments = [make_payment(merchant_a, amount=1500 + n) for n in range(5)]
    refund = refunded(payments[0], 500)
    assert refund.status == "succeeded" and refund.gateway_reference.startswith("re_")

    document = reconcile("stripe", today())

    assert document["items"] == [] and document["counts"]["matched"] == 6
    assert (document["gatewayRows"], document["localRecords"]) == (6, 6)
    assert document["totals"]["gateway"]["USD"]["charge"]["gross"] == sum(1500 + n for n in range(5))
    assert document["totals"]["difference"] == {"USD": 0}


def test_a_golden_stripe_day_puts_each_discrepancy_in_its_category(stripe_day, merchant_a, make_payment, refunded,
                                                                   recorded_fees):
    txn = [make_payment(merchant_a, amount=2000 + 100 * n) for n in range(7)]
    refund = refunded(txn[0], 700)
    # a refund FlowPay sent once, made twice by a peer that ignores idempotency keys
    stripe_day.refund(reference=txn[0].gateway_reference, amount=700, idempotency_key=refund.idempotency_key)
    # a payment and a refund made at Stripe, not through FlowPay
    stranger = stripe_day.authorize(payment=ChargeRequest(amount=4242, currency="USD", payment_method="pm_card_visa",
                                                          capture=True, flowpay_reference="txn_elsewhere"),
                                    idempotency_key="outside:flowpay:1")
    outside_refund = stripe_day.refund(reference=txn[1].gateway_reference, amount=300, idempotency_key="outside:refund:1")
    # FlowPay's records that disagree with Stripe
    Transaction.objects.filter(pk=txn[2].pk).update(amount_captured=txn[2].amount - 100, amount_refund_reserved=0)
    Transaction.objects.filter(pk=txn[3].pk).update(currency="EUR")
    Transaction.objects.filter(pk=txn[4].pk).update(gateway_reference="pi_never_settled")
    recorded_fees({txn[5].pk: 61})  # Stripe (localstripe) took no fee

    document = reconcile("stripe", today(), expect=1)

    found = by_category(document)
    assert discrepancy_counts(document) == {"missing_at_gateway": 1, "missing_locally": 2, "amount_mismatch": 1,
                                            "currency_mismatch": 1, "status_mismatch": 1, "fee_mismatch": 1,
                                            "duplicate_at_gateway": 1}
    assert document["counts"]["matched"] == 4  # txn 0 and its refund, txn 1, txn 6
    (missing,) = found["missing_at_gateway"]
    assert (missing["localReference"], missing["flowpayAmount"]) == (txn[4].public_id, 2400)
    assert {i["gatewayReference"] for i in found["missing_locally"]} == {stranger.reference, txn[4].gateway_reference}
    assert found["amount_mismatch"][0]["diff"] == [{"field": "amount", "flowpay": 2100, "gateway": 2200}]
    assert found["currency_mismatch"][0]["diff"][0] == {"field": "currency", "flowpay": "EUR", "gateway": "USD"}
    (status,) = found["status_mismatch"]
    assert (status["localReference"], status["gatewayReference"], status["gatewayAmount"]) == (
        txn[1].public_id, outside_refund.reference, -300)
    assert found["fee_mismatch"][0]["diff"] == [{"field": "fee", "flowpay": 61, "gateway": 0}]
    (duplicate,) = found["duplicate_at_gateway"]
    assert (duplicate["localReference"], duplicate["kind"], duplicate["gatewayAmount"]) == (refund.public_id, "refund", -700)
    assert document["totals"]["difference"] == net_by_currency(document["items"])
    assert ReconciliationItem.objects.count() == 8
