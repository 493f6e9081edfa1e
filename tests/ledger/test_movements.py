"""What each money movement posts, through the services that make it: captures (full,
partial, settled from the gateway's view), refunds (succeeded, failed, off-gateway),
chargebacks (opened, won, lost, lost on refunded money, a covered refund that fails)."""

import datetime as dt

import pytest

from core.actors import Actor
from gateways.models import SimulatorCharge
from ledger.models import AccountCode, LedgerAccount, LedgerKind, LedgerTransaction
from payments.services.settlement import transaction_apply_gateway_status
from payments.services.transactions import transaction_capture
from refunds.models import Chargeback
from refunds.services.chargebacks import chargeback_create, chargeback_record_outcome
from refunds.services.create import refund_create
from tests.support.ledger import Balance, balance_of, books_problems, release_all
from tests.support.refunds import run_queued

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


def postings_of(source_id: str) -> list[LedgerTransaction]:
    return list(LedgerTransaction.objects.filter(source_id=source_id).order_by("id"))


def account_balance(merchant, code: str, gateway: str = "") -> int:
    account = LedgerAccount.objects.filter(merchant=merchant, code=code, gateway=gateway).first()
    return account.balance if account else 0


def gateway_refuses_refunds_of(txn) -> None:
    """The simulator refuses (as invalid) any refund of this payment from now on: its record
    says nothing was captured."""
    SimulatorCharge.objects.filter(reference=txn.gateway_reference).update(amount_captured=0)


def open_chargeback(txn, amount: int, reference: str = "CB1") -> Chargeback:
    chargeback, _ = chargeback_create(transaction_id=txn.pk, chargeback_reference=reference, amount=amount,
                                      reason="fraudulent", actor=SYSTEM)
    return chargeback


def test_a_captured_payment_posts_its_net_amount_to_pending_with_the_scheduled_fee(merchant_a, make_payment):
    txn = make_payment(merchant_a, amount=10000)

    [capture] = postings_of(txn.public_id)
    # 2.9 % + 0.30 of 100.00: the simulator reports no fee, so the merchant's schedule applies
    assert (capture.kind, capture.balance_type, capture.amount, capture.fee, capture.net) == ("payment", "payment", 10000, 320, 9680)
    merchant = merchant_a.merchant
    assert balance_of(merchant) == Balance(available=0, pending=9680, reserved=0)
    assert account_balance(merchant, AccountCode.GATEWAY_CLEARING, "simulator") == 10000
    assert account_balance(merchant, AccountCode.PLATFORM_REVENUE) == 320
    assert capture.available_on - capture.effective_at == dt.timedelta(days=2)
    assert books_problems(merchant) == []


@pytest.mark.parametrize("payment_method", ["pm_card_visa_chargeDeclined", "pm_card_threeDSecure2Required"])
def test_payments_that_take_no_money_post_nothing(merchant_a, make_payment, payment_method):
    txn = make_payment(merchant_a, payment_method=payment_method)
    assert postings_of(txn.public_id) == []


def test_an_authorization_posts_nothing_and_a_partial_capture_posts_what_was_captured(merchant_a, make_payment):
    txn = make_payment(merchant_a, amount=10000, capture_method="manual")
    assert postings_of(txn.public_id) == []

    transaction_capture(transaction_id=txn.pk, amount=6000, actor=SYSTEM)

    [capture] = postings_of(txn.public_id)
    assert (capture.amount, capture.fee, capture.net) == (6000, 204, 5796)  # 174 + 30
    assert balance_of(merchant_a.merchant).pending == 5796


def test_a_payment_settled_from_the_gateway_s_view_posts_its_capture_once(merchant_a, make_payment):
    txn = make_payment(merchant_a, amount=5000, capture_method="manual")
    for _ in range(2):  # the same gateway event twice
        transaction_apply_gateway_status(transaction_id=txn.pk, gateway_status="succeeded", reference=None,
                                         amount_captured=5000, actor=SYSTEM)
    [capture] = postings_of(txn.public_id)
    assert (capture.amount, capture.net) == (5000, 5000 - 175)


def refund_of(txn, amount: int, capture_callbacks):
    """A refund through the gateway, queued for a worker at commit (run it with run_queued)."""
    with capture_callbacks(execute=True):
        return refund_create(transaction_id=txn.pk, amount=amount, reason="", refund_to_original_method=True, actor=SYSTEM)


def test_a_succeeded_refund_takes_from_the_merchant_and_a_failed_one_posts_nothing(
    merchant_a, make_payment, queued_refunds, django_capture_on_commit_callbacks,
):
    merchant = merchant_a.merchant
    txn = make_payment(merchant_a, amount=10000)
    release_all()
    refund = refund_of(txn, 3000, django_capture_on_commit_callbacks)
    assert postings_of(refund.public_id) == []  # reserved, not refunded yet
    run_queued(queued_refunds)

    [posted] = postings_of(refund.public_id)
    assert (posted.kind, posted.amount, posted.fee, posted.net) == ("refund", -3000, 0, -3000)
    assert balance_of(merchant).available == 9680 - 3000
    assert account_balance(merchant, AccountCode.GATEWAY_CLEARING, "simulator") == 10000 - 3000

    # a refund the gateway refuses: its reservation goes back and the ledger does not move
    other = make_payment(merchant_a, amount=2000)
    failed = refund_of(other, 1000, django_capture_on_commit_callbacks)
    gateway_refuses_refunds_of(other)
    run_queued(queued_refunds)
    failed.refresh_from_db()
    assert failed.status == "failed" and postings_of(failed.public_id) == []
    assert books_problems(merchant) == []


def test_a_refund_beyond_the_available_funds_leaves_the_merchant_owing_it(merchant_a, make_payment):
    merchant = merchant_a.merchant
    txn = make_payment(merchant_a, amount=10000)
    # an off-gateway credit, recorded at once, while the payment's funds are still pending
    refund = refund_create(transaction_id=txn.pk, amount=4000, reason="", refund_to_original_method=False, actor=SYSTEM)
    assert refund.status == "succeeded"
    assert balance_of(merchant) == Balance(available=-4000, pending=9680, reserved=0)
    assert account_balance(merchant, AccountCode.MERCHANT_RECEIVABLE) == 4000
    assert account_balance(merchant, AccountCode.GATEWAY_CLEARING, "manual") == -4000

    # the payment's funds, once available, pay the receivable first
    release_all()
    assert balance_of(merchant) == Balance(available=5680, pending=0, reserved=0)
    assert account_balance(merchant, AccountCode.MERCHANT_RECEIVABLE) == 0
    assert books_problems(merchant) == []


def test_a_chargeback_holds_the_disputed_amount_charges_its_fee_and_a_win_reinstates_it(merchant_a, make_payment):
    merchant = merchant_a.merchant
    txn = make_payment(merchant_a, amount=10000)
    release_all()
    chargeback = open_chargeback(txn, 2000)

    [opened] = postings_of(chargeback.public_id)
    assert (opened.kind, opened.amount, opened.fee, opened.net) == ("chargeback", -2000, 1500, -3500)
    assert balance_of(merchant) == Balance(available=9680 - 3500, pending=0, reserved=2000)
    assert account_balance(merchant, AccountCode.CHARGEBACK_RECEIVABLE) == 2000

    chargeback_record_outcome(chargeback_id=chargeback.pk, outcome="won", actor=SYSTEM)

    won = postings_of(chargeback.public_id)[-1]
    assert (won.kind, won.balance_type, won.amount, won.net) == ("chargeback_won", "chargeback_reversal", 2000, 2000)
    # the disputed amount is back, the dispute fee is not
    assert balance_of(merchant) == Balance(available=9680 - 1500, pending=0, reserved=0)
    assert account_balance(merchant, AccountCode.CHARGEBACK_RECEIVABLE) == 0
    assert books_problems(merchant) == []


def test_a_lost_chargeback_settles_the_gateway_s_withdrawal_from_the_reserve(merchant_a, make_payment):
    merchant = merchant_a.merchant
    txn = make_payment(merchant_a, amount=10000)
    chargeback = open_chargeback(txn, 2000)
    chargeback_record_outcome(chargeback_id=chargeback.pk, outcome="lost", actor=SYSTEM)

    lost = postings_of(chargeback.public_id)[-1]
    assert (lost.kind, lost.balance_type, lost.net) == ("chargeback_lost", None, 0)  # the merchant paid at the opening
    assert balance_of(merchant) == Balance(available=-3500, pending=9680, reserved=0)
    assert account_balance(merchant, AccountCode.CHARGEBACK_RECEIVABLE) == 0
    assert account_balance(merchant, AccountCode.GATEWAY_CLEARING, "simulator") == 10000 - 2000 - 0
    txn.refresh_from_db()
    assert txn.amount_disputed == 2000
    assert books_problems(merchant) == []


def test_a_dispute_lost_on_refunded_money_takes_it_from_the_merchant_once(
    merchant_a, make_payment, queued_refunds, django_capture_on_commit_callbacks,
):
    merchant = merchant_a.merchant
    txn = make_payment(merchant_a, amount=10000)
    refund_of(txn, 7000, django_capture_on_commit_callbacks)
    run_queued(queued_refunds)
    # the cardholder disputes the whole 100.00: 70.00 of it was refunded already
    chargeback = open_chargeback(txn, 10000)
    chargeback_record_outcome(chargeback_id=chargeback.pk, outcome="lost", actor=SYSTEM)

    chargeback.refresh_from_db()
    assert (chargeback.amount_withdrawn, chargeback.amount_on_refunded_funds) == (3000, 7000)
    lost = postings_of(chargeback.public_id)[-1]
    assert (lost.balance_type, lost.amount, lost.net) == ("chargeback_reversal", 7000, 7000)
    # the merchant lost the 30.00 the dispute took beyond the refund, and the fees
    release_all()
    assert balance_of(merchant).available == 9680 - 7000 - 3000 - 1500
    # FlowPay absorbs the double refund at the gateway (revenue: the two fees less 70.00)
    assert account_balance(merchant, AccountCode.PLATFORM_REVENUE) == 320 + 1500 - 7000
    assert books_problems(merchant) == []


def test_a_refund_covered_by_a_lost_dispute_that_fails_moves_that_part_to_the_merchant(
    merchant_a, make_payment, queued_refunds, django_capture_on_commit_callbacks,
):
    merchant = merchant_a.merchant
    txn = make_payment(merchant_a, amount=10000)
    refund = refund_of(txn, 4000, django_capture_on_commit_callbacks)
    chargeback = open_chargeback(txn, 10000)  # while the refund is in flight (queued, not sent yet)
    chargeback_record_outcome(chargeback_id=chargeback.pk, outcome="lost", actor=SYSTEM)
    assert Chargeback.objects.get(pk=chargeback.pk).amount_on_refunded_funds == 4000
    before = balance_of(merchant).available

    # the gateway refuses the refund: those 40.00 are withdrawn from the payment after all
    gateway_refuses_refunds_of(txn)
    run_queued(queued_refunds)

    refund.refresh_from_db()
    chargeback.refresh_from_db()
    assert refund.status == "failed"
    assert (chargeback.amount_withdrawn, chargeback.amount_on_refunded_funds) == (10000, 0)
    absorbed = postings_of(chargeback.public_id)[-1]
    assert (absorbed.kind, absorbed.balance_type, absorbed.amount) == (LedgerKind.CHARGEBACK_ABSORBED, "chargeback", -4000)
    assert balance_of(merchant).available == before - 4000
    assert books_problems(merchant) == []


def test_a_chargeback_opened_before_the_ledger_is_opened_when_it_closes(merchant_a, make_payment, monkeypatch):
    txn = make_payment(merchant_a, amount=3000)
    # recorded as if before the ledger existed: no opening posting
    monkeypatch.setattr("refunds.services.chargebacks.chargeback_post_opened", lambda **kwargs: None)
    chargeback = open_chargeback(txn, 1000)
    monkeypatch.undo()
    assert postings_of(chargeback.public_id) == []

    chargeback_record_outcome(chargeback_id=chargeback.pk, outcome="won", actor=SYSTEM)

    assert [p.kind for p in postings_of(chargeback.public_id)] == ["chargeback", "chargeback_won"]
    assert balance_of(merchant_a.merchant) == Balance(available=-1500, pending=3000 - 117, reserved=0)
    assert books_problems(merchant_a.merchant) == []


def test_a_dispute_fee_the_gateway_reports_is_charged_and_booked_as_its_fee(merchant_a, make_payment):
    merchant = merchant_a.merchant
    txn = make_payment(merchant_a, amount=10000)
    chargeback, _ = chargeback_create(transaction_id=txn.pk, chargeback_reference="dp_1", amount=2000, reason="",
                                      actor=SYSTEM, gateway="simulator", gateway_fee=2500)
    [opened] = postings_of(chargeback.public_id)
    assert (opened.amount, opened.fee, opened.net) == (-2000, 2500, -4500)
    assert account_balance(merchant, AccountCode.FEES) == 2500  # what the gateway charged FlowPay
    assert account_balance(merchant, AccountCode.GATEWAY_CLEARING, "simulator") == 10000 - 2000 - 2500
    assert books_problems(merchant) == []


def test_a_subscription_rebill_posts_through_the_payment_path(merchant_a):
    from subscriptions.models import Invoice

    client = merchant_a.client
    plan = client.post("/payment/plans", {"name": "Gold", "amount": 2500, "currency": "usd", "interval": "month"}, format="json")
    customer = client.post("/payment/customers", {"name": "Ann"}, format="json")
    subscription = client.post("/payment/subscriptions", {"customer": customer.json()["id"], "plan": plan.json()["id"],
                                                          "paymentMethod": "pm_card_visa"}, format="json")
    assert subscription.status_code == 201, subscription.json()
    invoice = Invoice.objects.get(subscription__public_id=subscription.json()["id"])
    assert invoice.status == "paid"
    [capture] = postings_of(invoice.transaction.public_id)
    assert (capture.kind, capture.amount, capture.fee) == ("payment", 2500, 103)
