"""A hypothesis state machine: random captures (full and partial), refunds (through the
gateway and off it), chargebacks opened, won and lost, funds released, payouts made, paid
and failed, through the real services on PostgreSQL, against an in-memory model of what
the merchant's balance must be. After every step the balance agrees with the model and the
ledger's verifier finds nothing wrong."""

from dataclasses import dataclass, field

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

from accounts.services import merchant_create
from core.actors import Actor
from core.errors import InsufficientFunds
from gateways.simulator.adapter import SimulatorFaults, simulator_faults_clear, simulator_faults_set
from ledger.services.payouts import payout_create, payout_follow_up
from payments.models import Transaction
from payments.services.transactions import PaymentInput, transaction_capture, transaction_create
from refunds.services.chargebacks import chargeback_create, chargeback_record_outcome
from refunds.services.create import refund_create
from refunds.services.execution import refund_execute
from tests.support.ledger import Balance, balance_of, books_problems, release_all

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("stateful")
FEE_BPS, FEE_FIXED, DISPUTE_FEE = 290, 30, 1500  # the defaults of flowpay/settings/ledger.py


def scheduled_fee(amount: int) -> int:
    return min(amount, (amount * FEE_BPS + 5000) // 10000 + FEE_FIXED)


@dataclass
class Payment:
    pk: int
    captured: int
    refunded: int = 0
    withdrawn: int = 0  # by lost chargebacks
    disputes: list = field(default_factory=list)  # amounts of chargebacks not won


@dataclass
class Dispute:
    pk: int
    payment: Payment
    amount: int


class LedgerMachine(RuleBasedStateMachine):
    @initialize()
    def merchant(self):
        self.merchant = merchant_create(name="Stateful", actor=SYSTEM)
        self.model = Balance(available=0, pending=0, reserved=0)
        self.unreleased: list[int] = []
        self.payments: list[Payment] = []
        self.open_disputes: list[Dispute] = []
        self.in_transit: list[tuple[int, int]] = []  # (payout id, amount)
        self.references = 0

    def move(self, *, available: int = 0, pending: int = 0, reserved: int = 0) -> None:
        m = self.model
        self.model = Balance(available=m.available + available, pending=m.pending + pending, reserved=m.reserved + reserved)

    # --- captures ---------------------------------------------------------------------
    @rule(amount=st.integers(min_value=20, max_value=50_000), manual=st.booleans(), part=st.integers(min_value=1, max_value=100))
    def capture(self, amount, manual, part):
        txn = transaction_create(
            merchant=self.merchant, actor=SYSTEM,
            payment=PaymentInput(amount=amount, currency="USD", payment_method="pm_card_visa",
                                 capture_method="manual" if manual else "automatic"),
        )
        captured = amount
        if manual:
            captured = max(1, amount * part // 100)
            transaction_capture(transaction_id=txn.pk, amount=captured, actor=SYSTEM)
        net = captured - scheduled_fee(captured)
        self.move(pending=net)
        if net:
            self.unreleased.append(net)
        self.payments.append(Payment(pk=txn.pk, captured=captured))

    # --- refunds ----------------------------------------------------------------------
    def refundable_payments(self) -> list[Payment]:
        open_on = {d.payment.pk for d in self.open_disputes}
        return [p for p in self.payments if p.pk not in open_on and p.captured - p.refunded - p.withdrawn > 0]

    @precondition(lambda self: self.refundable_payments())
    @rule(data=st.data(), through_gateway=st.booleans())
    def refund(self, data, through_gateway):
        payment = data.draw(st.sampled_from(self.refundable_payments()))
        amount = data.draw(st.integers(min_value=1, max_value=payment.captured - payment.refunded - payment.withdrawn))
        refund = refund_create(transaction_id=payment.pk, amount=amount, reason="", actor=SYSTEM,
                               refund_to_original_method=through_gateway)
        if through_gateway:
            refund = refund_execute(refund_id=refund.pk, actor=SYSTEM)
        assert refund.status == "succeeded"
        payment.refunded += amount
        self.move(available=-amount)

    # --- chargebacks ------------------------------------------------------------------
    def disputable_payments(self) -> list[Payment]:
        return [p for p in self.payments if p.captured - sum(p.disputes) > 0]

    @precondition(lambda self: self.disputable_payments())
    @rule(data=st.data())
    def open_chargeback(self, data):
        payment = data.draw(st.sampled_from(self.disputable_payments()))
        amount = data.draw(st.integers(min_value=1, max_value=payment.captured - sum(payment.disputes)))
        self.references += 1
        chargeback, created = chargeback_create(transaction_id=payment.pk, chargeback_reference=f"CB{self.references}",
                                                amount=amount, reason="", actor=SYSTEM)
        assert created
        payment.disputes.append(amount)
        self.open_disputes.append(Dispute(pk=chargeback.pk, payment=payment, amount=amount))
        self.move(available=-(amount + DISPUTE_FEE), reserved=amount)

    @precondition(lambda self: self.open_disputes)
    @rule(data=st.data(), won=st.booleans())
    def close_chargeback(self, data, won):
        dispute = data.draw(st.sampled_from(self.open_disputes))
        self.open_disputes.remove(dispute)
        chargeback_record_outcome(chargeback_id=dispute.pk, outcome="won" if won else "lost", actor=SYSTEM)
        payment = dispute.payment
        if won:
            payment.disputes.remove(dispute.amount)
            self.move(available=dispute.amount, reserved=-dispute.amount)
            return
        # what the payment still held pays the dispute; the rest of it covered refunded money
        withdrawn = max(0, min(dispute.amount, payment.captured - payment.refunded - payment.withdrawn))
        payment.withdrawn += withdrawn
        self.move(available=dispute.amount - withdrawn, reserved=-dispute.amount)

    # --- availability and payouts -----------------------------------------------------
    @rule()
    def release(self):
        release_all()
        self.move(available=sum(self.unreleased), pending=-sum(self.unreleased))
        self.unreleased = []

    @rule(amount=st.integers(min_value=1, max_value=60_000))
    def payout(self, amount):
        if amount > self.model.available:
            with pytest.raises(InsufficientFunds), transaction.atomic():
                payout_create(merchant_id=self.merchant.pk, livemode=False, amount=amount, currency="USD", actor=SYSTEM)
            return
        payout = payout_create(merchant_id=self.merchant.pk, livemode=False, amount=amount, currency="USD", actor=SYSTEM)
        assert payout.status == "in_transit"
        self.in_transit.append((payout.pk, amount))
        self.move(available=-amount)

    @precondition(lambda self: self.in_transit)
    @rule(data=st.data(), bank_returns_it=st.booleans())
    def follow_up_payout(self, data, bank_returns_it):
        payout_id, amount = data.draw(st.sampled_from(self.in_transit))
        self.in_transit.remove((payout_id, amount))
        if bank_returns_it:
            simulator_faults_set(SimulatorFaults(payout_failure="account_closed"))
        try:
            payout = payout_follow_up(payout_id=payout_id, actor=SYSTEM)
        finally:
            simulator_faults_clear()
        assert payout.status == ("failed" if bank_returns_it else "paid")
        if bank_returns_it:
            self.move(available=amount)

    # --- what must hold after every step ----------------------------------------------
    @invariant()
    def balances_agree_with_the_model(self):
        if hasattr(self, "merchant"):
            assert balance_of(self.merchant) == self.model

    @invariant()
    def the_books_are_sound(self):
        if hasattr(self, "merchant"):
            assert books_problems(self.merchant) == []
            for payment in self.payments:
                txn = Transaction.objects.get(pk=payment.pk)
                assert (txn.amount_refunded, txn.amount_disputed) == (payment.refunded, payment.withdrawn)


def test_balances_follow_the_model_whatever_the_sequence_of_movements():
    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=20, stateful_step_count=25, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    ))
