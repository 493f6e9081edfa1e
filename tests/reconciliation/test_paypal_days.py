"""Reconciling PayPal's Transaction Search (served over local HTTP in PayPal's documented
shape, tests/support/paypal_fake.py): payments and refunds go through FlowPay and the PayPal
adapter; the search answers pages built from the documented example rows, more than one page
for each of its two reads (balance-affecting rows, then every row)."""

import copy
import datetime as dt
from decimal import Decimal

import pytest

from core.actors import Actor
from gateways import credentials, registry
from gateways.paypal.adapter import PayPalGateway, clear_token_cache
from payments.models import PaymentAttempt
from payments.services.transactions import PaymentInput, transaction_create
from refunds.models import Refund
from refunds.services.create import refund_create
from tests.support.paypal_fake import FakePayPal, fixture
from tests.support.reconciliation import by_category, discrepancy_counts, net_by_currency, reconcile, today
from tests.support.refunds import run_queued

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("away_from_midnight")]

CLIENT_ID, CLIENT_SECRET = "AdFlowPayReconClient", "EKflowpay-recon-secret-3v9t"
SEARCH = "/v1/reporting/transactions"
VAULT_TOKEN = "8kk8451t"


@pytest.fixture
def paypal(settings, monkeypatch):
    fake = FakePayPal(client_id=CLIENT_ID, client_secret=CLIENT_SECRET).start()
    monkeypatch.setenv("PAYPAL_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("PAYPAL_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("PAYPAL_API_BASE", fake.url)
    settings.FLOWPAY_GATEWAYS = ["paypal"]
    settings.FLOWPAY_RECONCILIATION_SETTLEMENT_DELAYS = ["paypal=0"]
    monkeypatch.setitem(registry.GATEWAY_CLASSES, "paypal", PayPalGateway)
    credentials.credentials_reload()
    clear_token_cache()
    registry.gateway_named.cache_clear()
    yield fake
    fake.stop()
    monkeypatch.undo()
    credentials.credentials_reload()
    clear_token_cache()
    registry.gateway_named.cache_clear()


def pay(merchant, amount: int):
    return transaction_create(merchant=merchant.merchant, actor=Actor.system("test"),
                              payment=PaymentInput(amount=amount, currency="USD", payment_method=VAULT_TOKEN))


@pytest.fixture
def refunded(queued_refunds, django_capture_on_commit_callbacks):
    def refund(txn, amount: int) -> Refund:
        with django_capture_on_commit_callbacks(execute=True):
            created = refund_create(transaction_id=txn.pk, amount=amount, reason="returned", actor=Actor.system("test"))
        run_queued(queued_refunds)
        return Refund.objects.get(pk=created.pk)

    return refund


def value(minor: int) -> str:
    return str(Decimal(minor).scaleb(-2))


def row(*, transaction_id: str, code: str, amount: int, currency: str = "USD", fee: int | None = None, status: str = "S",
        custom: str = "", invoice: str = "", parent: str = "") -> dict:
    """A transaction_details entry in the documented example's shape."""
    info = copy.deepcopy(fixture("transaction_search")["transaction_details"][0]["transaction_info"])
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
    info.update(transaction_id=transaction_id, transaction_event_code=code, transaction_status=status,
                transaction_initiation_date=when, transaction_updated_date=when, custom_field=custom, invoice_id=invoice,
                transaction_amount={"currency_code": currency, "value": value(amount)})
    if fee is None:
        info.pop("fee_amount", None)
    else:
        info["fee_amount"] = {"currency_code": currency, "value": value(-fee)}
    if parent:
        info.update(paypal_reference_id=parent, paypal_reference_id_type="TXN")
    return {"transaction_info": info}


def of_payment(txn, *, fee: int = 88, **changes) -> dict:
    key = PaymentAttempt.objects.filter(transaction=txn).values_list("idempotency_key", flat=True).first()
    fields = {"transaction_id": txn.gateway_reference, "code": "T0006", "amount": txn.amount_captured, "fee": fee,
              "custom": txn.public_id, "invoice": key, **changes}
    return row(**fields)


def of_refund(refund, *, capture: str) -> dict:
    return row(transaction_id=refund.gateway_reference, code="T1107", amount=-refund.amount, fee=0, parent=capture)


def serve(paypal, balance_affecting: list[dict], others: list[dict] = (), page_size: int = 3) -> None:
    """Queue the two reads, each split into pages of `page_size`."""
    for rows in (balance_affecting, [*balance_affecting, *others]):
        pages = [rows[i:i + page_size] for i in range(0, len(rows), page_size)] or [[]]
        for number, details in enumerate(pages, start=1):
            body = fixture("transaction_search")
            body.update(transaction_details=details, page=number, total_pages=len(pages), total_items=len(rows))
            paypal.queue("GET", SEARCH, body=body)


def test_a_clean_paypal_day_over_several_pages_exits_0(paypal, merchant_a, refunded):
    txn = [pay(merchant_a, 1000 * (n + 1)) for n in range(5)]
    refund = refunded(txn[0], 400)
    serve(paypal, [of_payment(t) for t in txn] + [of_refund(refund, capture=txn[0].gateway_reference)])

    document = reconcile("paypal", today())

    assert document["items"] == [] and document["counts"]["matched"] == 6
    reads = [(r.query["balance_affecting_records_only"], r.query["page"]) for r in paypal.received("GET", SEARCH)]
    assert reads == [("Y", "1"), ("Y", "2"), ("N", "1"), ("N", "2")]


def test_a_balance_affecting_and_a_non_balance_affecting_row_with_one_id_are_not_a_duplicate(paypal, merchant_a):
    txn = pay(merchant_a, 2500)
    listed = of_payment(txn)
    # the same id again, with the same and with another event code, not balance-affecting
    serve(paypal, [listed], others=[copy.deepcopy(listed), of_payment(txn, code="T1503")])

    document = reconcile("paypal", today())

    assert document["items"] == [] and document["counts"]["matched"] == 1
    assert document["gatewayRows"] == 3


def test_a_golden_paypal_day_puts_each_discrepancy_in_its_category(paypal, merchant_a, refunded, recorded_fees):
    txn = [pay(merchant_a, 1000 * (n + 1)) for n in range(7)]
    refund = refunded(txn[0], 400)
    recorded_fees({t.pk: 88 for t in txn})
    rows = [
        of_payment(txn[0]), of_refund(refund, capture=txn[0].gateway_reference),
        # txn 1 is not listed: missing at the gateway
        of_payment(txn[2], amount=txn[2].amount_captured - 1),
        of_payment(txn[3], currency="EUR"),
        of_payment(txn[4]),
        row(transaction_id="9RF11111AA2222222", code="T1107", amount=-1500, parent=txn[4].gateway_reference),
        of_payment(txn[5], fee=120),
        of_payment(txn[6]),
        of_payment(txn[6], transaction_id="8DD00000XX1111111"),  # a second capture of one FlowPay payment
        row(transaction_id="3GG77777ZZ8888888", code="T0006", amount=9900, fee=300),  # nobody's
        row(transaction_id="0WD51227U64553542", code="T0400", amount=-20000),  # a withdrawal: not matched
    ]
    serve(paypal, rows, page_size=4)

    document = reconcile("paypal", today(), expect=1)

    found = by_category(document)
    assert discrepancy_counts(document) == {"missing_at_gateway": 1, "missing_locally": 1, "amount_mismatch": 1,
                                            "currency_mismatch": 1, "status_mismatch": 1, "fee_mismatch": 1,
                                            "duplicate_at_gateway": 1}
    assert found["missing_at_gateway"][0]["localReference"] == txn[1].public_id
    assert found["missing_locally"][0]["gatewayReference"] == "3GG77777ZZ8888888"
    assert found["amount_mismatch"][0]["diff"] == [{"field": "amount", "flowpay": 3000, "gateway": 2999}]
    assert found["currency_mismatch"][0]["localReference"] == txn[3].public_id
    assert (found["status_mismatch"][0]["localReference"], found["status_mismatch"][0]["gatewayAmount"]) == (
        txn[4].public_id, -1500)
    assert found["fee_mismatch"][0]["diff"] == [{"field": "fee", "flowpay": 88, "gateway": 120}]
    duplicate = found["duplicate_at_gateway"][0]
    assert (duplicate["localReference"], duplicate["gatewayReference"]) == (txn[6].public_id, "8DD00000XX1111111")
    assert document["totals"]["gateway"]["USD"]["payout"]["gross"] == -20000
    assert document["totals"]["difference"] == net_by_currency(document["items"])
