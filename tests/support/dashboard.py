"""Known data for the dashboard tests: payments over several days, two gateways, two
currencies, refunds and chargebacks, made through the services and then moved back in time
(created_at only: the rows are what the services wrote). `SPECS` is what the tests compute
their expected figures from, independently of the selectors under test."""

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from core import runtime
from core.actors import Actor
from payments.models import Transaction
from payments.services.transactions import PaymentInput, transaction_create
from refunds.models import Chargeback, Refund
from refunds.services.chargebacks import chargeback_create
from refunds.services.create import refund_create

SYSTEM = Actor.system("dashboard-test")
OK = "pm_card_visa"
DECLINED = "pm_card_chargeDeclinedInsufficientFunds"


@dataclass(frozen=True)
class Spec:
    days_ago: int
    gateway: str  # made primary before the payment is created
    amount: int
    currency: str
    method: str = OK
    refund: int = 0  # a succeeded (off-gateway) refund of this much
    chargeback: int = 0  # a chargeback of this much

    @property
    def succeeded(self) -> bool:
        return self.method == OK


SPECS = (
    Spec(0, "simulator", 10_000, "USD", refund=2_500),
    Spec(0, "simulator", 4_999, "USD"),
    Spec(0, "backup", 7_000, "USD", method=DECLINED),
    Spec(1, "backup", 12_345, "USD", chargeback=12_345),
    Spec(2, "simulator", 3_000, "USD", method=DECLINED),
    Spec(3, "backup", 8_800, "USD"),
    Spec(6, "simulator", 1_500, "USD", refund=1_500),
    Spec(8, "simulator", 50_000, "USD"),  # the previous 7 days
    Spec(10, "backup", 2_000, "USD", method=DECLINED),
    Spec(12, "simulator", 6_000, "USD", refund=1_000),
    Spec(1, "simulator", 9_900, "EUR"),
    Spec(2, "backup", 450, "EUR", method=DECLINED),
)


def seed_specs(merchant, specs=SPECS, *, now: dt.datetime | None = None) -> list[Transaction]:
    """Create each spec's payment (and refund, chargeback), then date them `days_ago` days
    back at 12:00 UTC (today: the start of the current hour, in the past and still today)."""
    now = now or timezone.now()
    made = []
    for n, spec in enumerate(specs):
        runtime.runtime_set(key=runtime.PRIMARY_GATEWAY, value=spec.gateway, actor=SYSTEM, reason="dashboard test")
        txn = transaction_create(merchant=merchant, payment=PaymentInput(amount=spec.amount, currency=spec.currency,
                                                                         payment_method=spec.method), actor=SYSTEM)
        assert txn.gateway == spec.gateway and (txn.status == "completed") == spec.succeeded, (spec, txn.gateway, txn.status)
        if spec.refund:
            refund_create(transaction_id=txn.pk, amount=spec.refund, reason="test", refund_to_original_method=False, actor=SYSTEM)
        if spec.chargeback:
            chargeback_create(transaction_id=txn.pk, chargeback_reference=f"CB-{n}", amount=spec.chargeback, reason="test", actor=SYSTEM)
        when = now.replace(minute=0, second=0, microsecond=0) if spec.days_ago == 0 else (
            now.replace(hour=12, minute=0, second=0, microsecond=0) - dt.timedelta(days=spec.days_ago))
        Transaction.objects.filter(pk=txn.pk).update(created_at=when)
        Refund.objects.filter(transaction_id=txn.pk).update(created_at=when)
        Chargeback.objects.filter(transaction_id=txn.pk).update(created_at=when)
        made.append(txn)
    runtime.runtime_set(key=runtime.PRIMARY_GATEWAY, value="simulator", actor=SYSTEM, reason="dashboard test")
    return made


def expected(specs, *, days: int, currency: str, offset: int = 0) -> dict:
    """The overview's figures for the `days` days ending `offset` periods back (0: today
    included), computed from the specs alone."""
    first, last = offset * days + days - 1, offset * days
    inside = [s for s in specs if s.currency == currency and last <= s.days_ago <= first]
    ok = [s for s in inside if s.succeeded]
    gross = sum(s.amount for s in ok)
    refunds = sum(s.refund for s in ok)
    disputes = sum(s.chargeback for s in ok)
    return {
        "gross": gross, "refunds": refunds, "disputes": disputes, "net": gross - refunds - disputes,
        "payments": len(inside), "successful": len(ok), "failed": len(inside) - len(ok),
        "dispute_count": sum(1 for s in ok if s.chargeback),
        "per_gateway": {g: (sum(1 for s in ok if s.gateway == g), sum(1 for s in inside if s.gateway == g))
                        for g in sorted({s.gateway for s in inside})},
    }
