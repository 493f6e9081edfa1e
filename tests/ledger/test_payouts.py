"""Payouts through the gateway layer: the simulator pays out, Stripe's Payouts API against
localstripe; a payout refused or returned gives the funds back; a call whose answer was lost
is looked up by its key and sent again with the same key; the beat's sweep follows payouts
up; the daily and weekly schedules pay out once a day."""

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from core.actors import Actor
from gateways import registry
from gateways.models import SimulatorCharge
from gateways.simulator.adapter import SimulatorFaults, simulator_faults_clear, simulator_faults_set
from ledger.models import AccountCode, LedgerAccount, MerchantLedgerSettings, Payout, PayoutSchedule
from ledger.services.payout_schedule import payouts_create_scheduled
from ledger.services.payouts import payout_create, payout_follow_up, payout_gateway_name, payout_send
from ledger.tasks import ledger_sweep_payouts_task
from tests.support.ledger import balance_of, books_problems, release_all

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


@pytest.fixture
def funded(merchant_a, make_payment):
    """A merchant with 96.80 available (a 100.00 payment, released)."""
    make_payment(merchant_a, amount=10000)
    release_all()
    return merchant_a.merchant


def pay_out(merchant, amount: int, currency: str = "USD") -> Payout:
    return payout_create(merchant_id=merchant.pk, livemode=False, amount=amount, currency=currency, actor=SYSTEM)


def ledger_types(payout: Payout) -> list[str]:
    return list(payout.ledger_transactions.order_by("id").values_list("kind", flat=True))


def test_a_simulator_payout_is_in_transit_then_paid_from_the_gateway_s_clearing(funded):
    payout = pay_out(funded, 6000)
    assert payout.status == "in_transit" and payout.gateway == "simulator" and payout.arrival_date is not None
    assert balance_of(funded).available == 3680
    assert LedgerAccount.objects.get(merchant=funded, code=AccountCode.PAYOUTS_IN_TRANSIT).balance == 6000

    paid = payout_follow_up(payout_id=payout.pk, actor=SYSTEM)

    assert paid.status == "paid" and paid.paid_at is not None
    assert ledger_types(paid) == ["payout", "payout_in_transit", "payout_paid"]
    assert LedgerAccount.objects.get(merchant=funded, code=AccountCode.PAYOUTS_IN_TRANSIT).balance == 0
    assert LedgerAccount.objects.get(merchant=funded, code=AccountCode.GATEWAY_CLEARING, gateway="simulator").balance == 10000 - 6000
    assert balance_of(funded).available == 3680
    assert list(AuditEntry.objects.filter(object_id=payout.public_id).values_list("action", flat=True).order_by("id")) == [
        "payout.create", "payout.in_transit", "payout.paid"]
    assert books_problems(funded) == []


def test_a_payout_the_bank_returns_gives_the_funds_back(funded, simulator_payout_failure):
    payout = pay_out(funded, 9680)
    assert balance_of(funded).available == 0
    simulator_payout_failure("account_closed")

    failed = payout_follow_up(payout_id=payout.pk, actor=SYSTEM)

    assert (failed.status, failed.failure_code) == ("failed", "account_closed")
    assert balance_of(funded).available == 9680
    assert ledger_types(failed) == ["payout", "payout_in_transit", "payout_failure"]
    failure = failed.ledger_transactions.get(kind="payout_failure")
    assert (failure.balance_type, failure.amount, failure.net) == ("payout_failure", 9680, 9680)
    assert books_problems(funded) == []


def test_a_payout_the_gateway_refuses_voids_its_reservation(funded, monkeypatch):
    from gateways.base import GatewayRequestError
    from gateways.simulator.adapter import SimulatorGateway

    def refuse(self, **kwargs):
        raise GatewayRequestError("The bank account is not verified.", code="account_invalid")

    monkeypatch.setattr(SimulatorGateway, "payout", refuse)
    payout = pay_out(funded, 5000)

    assert (payout.status, payout.failure_code) == ("failed", "account_invalid")
    assert ledger_types(payout) == ["payout", "payout_failure"]
    assert balance_of(funded).available == 9680
    assert LedgerAccount.objects.get(merchant=funded, code=AccountCode.MERCHANT_AVAILABLE).debits_pending == 0
    assert books_problems(funded) == []


def test_a_payout_whose_gateway_is_down_stays_pending_and_the_sweep_sends_it_again(funded, celery_eager):
    simulator_faults_set(SimulatorFaults(error_rate=1.0))
    payout = pay_out(funded, 2000)
    simulator_faults_clear()
    assert (payout.status, payout.attempts, payout.outcome_unknown) == ("pending", 1, False)
    assert balance_of(funded).available == 7680  # reserved meanwhile
    assert AuditEntry.objects.filter(object_id=payout.public_id, action="payout.attempt_failed").exists()

    ledger_sweep_payouts_task.apply()  # not due yet: left alone
    assert Payout.objects.get(pk=payout.pk).status == "pending"
    Payout.objects.filter(pk=payout.pk).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    ledger_sweep_payouts_task.apply()

    # sent again, then followed up in the same sweep's next run
    assert Payout.objects.get(pk=payout.pk).status == "in_transit"
    ledger_sweep_payouts_task.apply()
    assert Payout.objects.get(pk=payout.pk).status == "paid"
    assert SimulatorCharge.objects.filter(flowpay_reference=payout.public_id).count() == 1
    assert books_problems(funded) == []


def test_a_payout_whose_answer_was_lost_is_found_by_its_key_not_paid_twice(funded, monkeypatch):
    from gateways.base import GatewayTimeout
    from gateways.simulator.adapter import SimulatorGateway

    original = SimulatorGateway.payout

    def lose_the_answer(self, **kwargs):
        original(self, **kwargs)  # made at the gateway...
        raise GatewayTimeout("simulator: response lost")  # ... and its answer lost

    monkeypatch.setattr(SimulatorGateway, "payout", lose_the_answer)
    payout = pay_out(funded, 3000)
    assert (payout.status, payout.outcome_unknown) == ("pending", True)
    monkeypatch.setattr(SimulatorGateway, "payout", original)

    Payout.objects.filter(pk=payout.pk).update(next_attempt_at=timezone.now())
    sent = payout_send(payout_id=payout.pk, actor=SYSTEM)

    # found by its key (the simulator's bank settled it at that first look): paid, once
    assert sent.status == "paid" and sent.attempts == 2
    assert ledger_types(sent) == ["payout", "payout_in_transit", "payout_paid"]
    made = SimulatorCharge.objects.get(flowpay_reference=payout.public_id)
    assert (made.reference, made.call_count) == (sent.gateway_reference, 1)  # looked up, not sent again


def test_the_payout_gateway_is_the_one_holding_the_merchant_s_funds(settings, funded, monkeypatch):
    from gateways.simulator.adapter import SimulatorGateway

    settings.FLOWPAY_GATEWAYS = ["backup", "simulator"]
    monkeypatch.setitem(registry.GATEWAY_CLASSES, "backup", lambda: SimulatorGateway("backup"))
    registry.gateway_named.cache_clear()
    assert payout_gateway_name(merchant_id=funded.pk, livemode=False, currency="USD") == "simulator"
    assert payout_gateway_name(merchant_id=funded.pk, livemode=False, currency="EUR") == "backup"  # none held: the first


def test_no_payout_gateway_means_a_clear_refusal(settings, funded):
    settings.FLOWPAY_GATEWAYS = ["paypal"]
    from core.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="No enabled gateway makes payouts"):
        pay_out(funded, 100)
    assert not Payout.objects.exists() and balance_of(funded).available == 9680


def test_the_daily_schedule_pays_out_everything_available_once_a_day(funded, merchant_b, make_payment):
    MerchantLedgerSettings.objects.create(merchant=funded, payout_schedule=PayoutSchedule.DAILY)
    make_payment(merchant_b, amount=5000)
    release_all()  # merchant B: manual payouts (the default), nothing is paid out for it

    made = payouts_create_scheduled(actor=SYSTEM)
    again = payouts_create_scheduled(actor=SYSTEM)

    assert [(p.merchant_id, p.amount, p.automatic, p.status) for p in made] == [(funded.pk, 9680, True, "in_transit")]
    assert again == []
    assert Payout.objects.count() == 1 and balance_of(funded).available == 0
    assert balance_of(merchant_b.merchant).available == 5000 - 175


def test_the_weekly_schedule_pays_out_on_its_weekday_only(funded):
    today = timezone.now().date()
    MerchantLedgerSettings.objects.create(merchant=funded, payout_schedule=PayoutSchedule.WEEKLY,
                                          payout_weekday=(today.weekday() + 1) % 7)
    assert payouts_create_scheduled(actor=SYSTEM, today=today) == []
    tomorrow = today + dt.timedelta(days=1)
    assert [p.amount for p in payouts_create_scheduled(actor=SYSTEM, today=tomorrow)] == [9680]


@pytest.fixture
def stripe_funds(stripe_gateway, settings, monkeypatch, merchant_a):
    """Stripe as the only gateway (at localstripe), and 100.00 EUR captured there, available."""
    from gateways.stripe.adapter import StripeGateway

    settings.FLOWPAY_GATEWAYS = ["stripe"]
    monkeypatch.setitem(registry.GATEWAY_CLASSES, "stripe", StripeGateway)
    registry.gateway_named.cache_clear()
    from payments.services.transactions import PaymentInput, transaction_create

    txn = transaction_create(merchant=merchant_a.merchant, actor=SYSTEM,
                             payment=PaymentInput(amount=10000, currency="EUR", payment_method="pm_card_visa"))
    assert txn.status == "completed" and txn.gateway == "stripe"
    release_all()
    return txn


def test_stripe_reports_its_fee_from_the_charge_s_balance_transaction(stripe_funds, merchant_a):
    from ledger.models import LedgerTransaction

    capture = LedgerTransaction.objects.get(source_id=stripe_funds.public_id)
    # localstripe's balance transactions carry a fee of 0: reported, so no schedule applies
    assert (capture.amount, capture.fee, capture.net) == (10000, 0, 10000)
    assert balance_of(merchant_a.merchant, "EUR").available == 10000


def test_a_stripe_payout_goes_through_the_payouts_api_at_localstripe(stripe_funds, merchant_a, localstripe_url):
    import requests

    merchant = merchant_a.merchant
    payout = pay_out(merchant, 4000, "EUR")
    assert payout.status == "in_transit" and payout.gateway == "stripe" and payout.gateway_reference.startswith("po_")

    # still pending at Stripe: in transit
    assert payout_follow_up(payout_id=payout.pk, actor=SYSTEM).status == "in_transit"
    # the bank confirms (Stripe moves the payout to paid; localstripe needs telling)
    from gateways.credentials import gateway_credentials

    key = gateway_credentials("stripe").api_key
    marked = requests.post(f"{localstripe_url}/v1/payouts/{payout.gateway_reference}", data={"status": "paid"},
                           auth=(key, ""), timeout=10)
    assert marked.status_code == 200, marked.text
    assert payout_follow_up(payout_id=payout.pk, actor=SYSTEM).status == "paid"
    assert balance_of(merchant, "EUR").available == 6000
    assert books_problems(merchant) == []


def test_a_stripe_payout_in_a_currency_localstripe_refuses_fails_and_gives_the_funds_back(stripe_funds, merchant_a,
                                                                                         make_payment):
    merchant = merchant_a.merchant
    from ledger.services.movements import AVAILABLE
    from ledger.services.postings import ledger_post
    from tests.support.ledger import hot_account, posting

    # some USD funds at Stripe (localstripe pays out EUR only)
    ledger_post(posting=posting(merchant, key="usd-funds", debit_to=hot_account(0), credit_to=AVAILABLE, amount=500,
                                currency="USD", shown=500))
    payout = pay_out(merchant, 500, "USD")
    assert payout.status == "failed" and payout.failure_code
    assert balance_of(merchant, "USD").available == 500
