"""A creating POST that crashed after it created its object leaves its Idempotency-Key in
flight; the retry that takes the key over after the lock timeout must answer the object the
first run made, never create (or charge) a second one. Every creating endpoint links what it
creates to its idempotency record and finds it on a take-over."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from core.models import IdempotencyRecord
from gateways.models import SimulatorCharge
from gateways.simulator.adapter import SimulatorGateway
from payments.api import views as payment_views
from payments.models import Customer, PaymentMethod, Transaction
from subscriptions.api import views as subscription_views
from subscriptions.models import Invoice, Plan, RebillCharge, Subscription
from subscriptions.services.leasing import rebill_drain
from subscriptions.services.scheduling import rebill_reap_stale
from webhooks.api import views as webhook_views
from webhooks.models import WebhookEndpoint

PLAN = {"name": "Pro", "amount": 1999, "currency": "usd", "interval": "month"}
LATER = dt.timedelta(minutes=10)  # past FLOWPAY_IDEMPOTENCY_LOCK_TIMEOUT and the rebill lease


class Killed(BaseException):
    """The process dies: nothing in the request catches this (a worker killed mid-request)."""


def crash_after(service):
    """The service runs and commits, then the request dies before its answer is stored."""

    def crashing(**kwargs):
        service(**kwargs)
        raise RuntimeError("worker crashed after the commit")

    return crashing


def _customer(account) -> str:
    return account.client.post("/payment/customers", {"email": "ada@example.com"}, format="json").json()["id"]


CREATES = {
    "customer": (payment_views, "customer_create", Customer, lambda account: ("/payment/customers", {"email": "a@example.com"})),
    "payment_method": (
        payment_views, "payment_method_attach", PaymentMethod,
        lambda account: (f"/payment/customers/{_customer(account)}/payment-methods", {"token": "pm_card_visa"}),
    ),
    "plan": (subscription_views, "plan_create", Plan, lambda account: ("/payment/plans", PLAN)),
    "webhook_endpoint": (
        webhook_views, "webhook_endpoint_create", WebhookEndpoint,
        lambda account: ("/payment/webhook-endpoints", {"url": "https://merchant.example/hooks"}),
    ),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", sorted(CREATES))
def test_a_create_that_crashed_after_its_commit_is_answered_with_the_same_object_on_take_over(
    merchant_a, monkeypatch, settings, kind,
):
    settings.FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS = True  # no DNS look-up of the endpoint's host
    module, service_name, model, request_for = CREATES[kind]
    url, body = request_for(merchant_a)
    before = model.objects.count()
    # given a first request that created its object, then crashed (500: the key stays in flight)
    monkeypatch.setattr(module, service_name, crash_after(getattr(module, service_name)))
    merchant_a.client.raise_request_exception = False
    first = merchant_a.client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=f"create-{kind}")
    monkeypatch.undo()
    assert first.status_code == 500
    made = model.objects.order_by("-id").first()
    assert model.objects.count() == before + 1 and made.idempotency_record is not None

    # when the client retries with the same key after the lock timeout
    with time_machine.travel(timezone.now() + LATER, tick=True):
        retry = merchant_a.client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=f"create-{kind}")

    # then it answers the object the first run made, and no second one exists
    assert retry.status_code == 201, retry.content
    assert retry.json()["id"] == made.public_id
    assert model.objects.count() == before + 1
    assert IdempotencyRecord.objects.get(key=f"create-{kind}").status == IdempotencyRecord.Status.COMPLETED


@pytest.mark.django_db(transaction=True)
def test_a_subscription_killed_mid_charge_and_retried_after_the_lock_timeout_is_one_subscription_and_one_charge(
    merchant_a, monkeypatch,
):
    plan = merchant_a.client.post("/payment/plans", PLAN, format="json").json()
    body = {"customer": _customer(merchant_a), "plan": plan["id"], "paymentMethod": "pm_card_visa"}
    charge = SimulatorGateway.authorize

    def charge_then_die(self, **kwargs):
        charge(self, **kwargs)  # the gateway took the money (its record is committed)
        raise Killed()

    # given a subscription create killed while its first invoice was being charged
    monkeypatch.setattr(SimulatorGateway, "authorize", charge_then_die)
    with pytest.raises(Killed):
        merchant_a.client.post("/payment/subscriptions", body, format="json", HTTP_IDEMPOTENCY_KEY="sub-1")
    monkeypatch.undo()
    (subscription,) = Subscription.objects.all()
    assert subscription.status == "incomplete" and SimulatorCharge.objects.count() == 1
    assert IdempotencyRecord.objects.get(key="sub-1").status == IdempotencyRecord.Status.IN_FLIGHT

    with time_machine.travel(timezone.now() + LATER, tick=True):
        # when the client retries with its key after the lock timeout
        retry = merchant_a.client.post("/payment/subscriptions", body, format="json", HTTP_IDEMPOTENCY_KEY="sub-1")
        # then it is answered the subscription that exists
        assert retry.status_code == 201, retry.content
        assert retry.json()["id"] == subscription.public_id
        assert Subscription.objects.count() == 1 and Invoice.objects.count() == 1

        # and the first invoice's charge is finished by the rebill job under its own key, once
        assert rebill_reap_stale() == 1
        assert rebill_drain(queue="rebill.monthly", merchant_id=None, owner="w2") == {"paid": 1}

    assert SimulatorCharge.objects.count() == 1
    assert Transaction.objects.count() == 1 and RebillCharge.objects.count() == 1
    assert Subscription.objects.get().status == "active"
    assert merchant_a.client.get(f"/payment/subscriptions/{subscription.public_id}").json()["status"] == "active"
