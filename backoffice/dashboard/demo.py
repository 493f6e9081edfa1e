"""Demo data for the dashboard (`make run`, through seed_demo): a few hundred payments over
the last 30 days across the enabled gateways and four currencies, some declined, refunds, a
dispute, subscriptions and a dead-lettered webhook delivery, then the rollup rebuilt, so that
every figure and chart of the overview shows something.

Made through the services (payments, refunds, chargebacks, plans, subscriptions), then
dated back: created_at is the only field written afterwards. Seeded once:
nothing happens when the merchant already has dashboard demo payments."""

from __future__ import annotations

import datetime as dt
import random
import secrets

from django.conf import settings
from django.utils import timezone

from backoffice.dashboard.rollup import dashboard_rollup_rebuild
from core.actors import Actor
from gateways.registry import enabled_gateway_names
from payments.models import PaymentAttempt, Transaction, TransactionStatus
from payments.services.customers import payment_method_attach
from payments.services.transactions import PaymentInput, transaction_create
from refunds.models import Chargeback, Refund
from refunds.services.chargebacks import chargeback_create
from refunds.services.create import refund_create
from subscriptions.services.plans import plan_create
from subscriptions.services.subscriptions import subscription_create
from webhooks.models import OutboxEvent, WebhookDelivery, WebhookEndpoint

DEMO_KEY = "dashboard_demo"
DAYS = 30
# currency -> (share of payments, smallest and largest amount in minor units)
CURRENCIES = {"USD": (55, 500, 25_000), "EUR": (25, 500, 20_000), "GBP": (12, 500, 15_000), "JPY": (8, 500, 30_000)}
# Declines only where the token means one (the simulator; localstripe would accept it).
DECLINE_TOKENS = ("pm_card_chargeDeclinedInsufficientFunds", "pm_card_chargeDeclinedExpiredCard",
                  "pm_card_chargeDeclinedIncorrectCvc", "pm_card_chargeDeclinedFraudulent")


def dashboard_demo_seed(*, merchant, customers, actor: Actor, now: dt.datetime | None = None) -> int:
    """Seed the demo (see the module docstring); returns the payments created (0: already seeded)."""
    if Transaction.objects.filter(merchant=merchant, metadata__has_key=DEMO_KEY).exists():
        return 0
    now = now or timezone.now()
    rng = random.Random(2026)  # the same demo on every machine
    gateways = enabled_gateway_names()
    methods = {gateway: payment_method_attach(customer=customers[0], gateway=gateway, gateway_token="pm_card_visa",
                                              actor=actor).public_id for gateway in gateways}
    decliners = {token: payment_method_attach(customer=customers[1], gateway="simulator", gateway_token=token,
                                              actor=actor).public_id
                 for token in DECLINE_TOKENS} if "simulator" in gateways else {}
    currencies = rng.choices(list(CURRENCIES), weights=[share for share, _, _ in CURRENCIES.values()], k=settings.FLOWPAY_DASHBOARD_DEMO_PAYMENTS)
    created = []
    for n, currency in enumerate(currencies):
        _, low, high = CURRENCIES[currency]
        declined = decliners and rng.random() < 0.12
        method = decliners[rng.choice(DECLINE_TOKENS)] if declined else methods[gateways[n % len(gateways)]]
        txn = transaction_create(merchant=merchant, actor=actor, payment=PaymentInput(
            amount=rng.randint(low, high), currency=currency, payment_method=method,
            customer=customers[1 if declined else 0].public_id,
            description=f"Demo order #{5000 + n}", metadata={DEMO_KEY: n}))
        created.append(txn)
    captured = [txn for txn in created if txn.status == TransactionStatus.COMPLETED]
    refunded = captured[1::9]
    for txn in refunded:
        refund_create(transaction_id=txn.pk, amount=max(txn.amount // 2, 1), reason="Demo: customer returned an item",
                      refund_to_original_method=False, actor=actor)
    disputed = next((txn for txn in captured if txn.currency == "USD" and txn not in refunded), None)
    if disputed is not None:
        chargeback_create(transaction_id=disputed.pk, chargeback_reference="CB-DEMO-1", amount=disputed.amount,
                          reason="Demo: product not received", actor=actor)
    _date_back(created, rng=rng, now=now)
    _subscriptions(merchant=merchant, customers=customers, method=methods[gateways[0]], actor=actor)
    _dead_delivery(merchant=merchant, actor=actor)
    dashboard_rollup_rebuild(start=now - dt.timedelta(days=DAYS + 1), end=now + dt.timedelta(hours=1))
    return len(created)


def _date_back(payments: list[Transaction], *, rng: random.Random, now: dt.datetime) -> None:
    """Spread the payments (and their refunds, disputes, attempts) over the last DAYS days,
    today included, at random times of day before now."""
    today = dt.datetime.combine(now.date(), dt.time.min, tzinfo=dt.UTC)
    for txn in payments:
        when = today - dt.timedelta(days=rng.randint(0, DAYS - 1)) + dt.timedelta(seconds=rng.randint(0, 86_399))
        when = min(when, now - dt.timedelta(minutes=15))
        Transaction.objects.filter(pk=txn.pk).update(created_at=when)
        Refund.objects.filter(transaction_id=txn.pk).update(created_at=when + dt.timedelta(minutes=5))
        Chargeback.objects.filter(transaction_id=txn.pk).update(created_at=when + dt.timedelta(minutes=10))
        PaymentAttempt.objects.filter(transaction_id=txn.pk).update(started_at=when)


def _subscriptions(*, merchant, customers, method: str, actor: Actor) -> None:
    monthly = plan_create(merchant=merchant, name="Demo Pro (monthly)", amount=2900, currency="USD", interval="month", actor=actor)
    yearly = plan_create(merchant=merchant, name="Demo Pro (yearly)", amount=29000, currency="USD", interval="year", actor=actor)
    for plan in (monthly, monthly, yearly):  # the saved card is the first customer's
        subscription_create(merchant=merchant, customer=customers[0].public_id, plan=plan.public_id, payment_method=method,
                            actor=actor)


def _dead_delivery(*, merchant, actor: Actor) -> None:
    """A delivery to an endpoint that never answered: dead after its retry window. Both rows
    are written directly: the endpoint service refuses a host that does not resolve (the demo
    runs offline), and waiting out three days of retries is no demo. The endpoint is disabled,
    so no real event is ever sent to it."""
    endpoint, _ = WebhookEndpoint.objects.get_or_create(
        merchant=merchant, url="https://merchant.example/hooks",
        defaults={"secret": f"whsec_{secrets.token_hex(16)}", "description": "Demo: an endpoint that is down",
                  "status": WebhookEndpoint.Status.DISABLED})
    event = OutboxEvent.objects.filter(merchant=merchant).order_by("id").first()
    if event is None:
        return
    started = timezone.now() - dt.timedelta(days=3)
    WebhookDelivery.objects.get_or_create(event=event, endpoint=endpoint, defaults={
        "status": WebhookDelivery.Status.DEAD, "attempts": 12, "next_attempt_at": started, "retry_window_started_at": started,
        "last_error": "Connection refused (demo)", "last_status_code": None})
