"""Inbound gateway webhooks for the tests of gateway_events: Stripe events signed with
Stripe's scheme (`Stripe-Signature: t=<ts>,v1=<HMAC-SHA256 of "<ts>.<body>">`, what
stripe.WebhookSignature verifies), about real PaymentIntents and refunds made at a real
localstripe, and PayPal events verified by the local fake.

A pytest plugin: tests/conftest.py loads it (`pytest_plugins`), so every test may request
`deliver`, `stripe_webhooks` and `lost_stripe_answers`; import the helpers by name.
"""

import dataclasses
import hashlib
import hmac
import json
import time
import types
import uuid

import pytest
import requests

from audit.models import AuditEntry
from core.actors import Actor
from gateways import registry
from gateways.base import GatewayTimeout
from gateways.credentials import credentials_reload, gateway_credentials
from gateways.stripe.adapter import StripeGateway
from payments.models import Transaction
from payments.services.transactions import PaymentInput, transaction_create
from tests.support.paypal_fake import fixture

SECRET = "whsec_inbound_test_secret"
SYSTEM = Actor.system("test")


# --- helpers --------------------------------------------------------------------------------
def sign(payload: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def stripe_event(event_type: str, obj: dict, *, event_id: str | None = None, created: int | None = None) -> bytes:
    return json.dumps({
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "api_version": "2024-06-20",
        "created": created or int(time.time()), "livemode": False, "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None}, "type": event_type, "data": {"object": obj},
    }, indent=2).encode()


def localstripe_get(localstripe_url: str, path: str) -> dict:
    key = gateway_credentials("stripe").api_key
    response = requests.get(f"{localstripe_url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=5)
    response.raise_for_status()
    return response.json()


def threeds_payment_method(localstripe_url: str) -> str:
    """A card that requires 3-D Secure, created directly at localstripe (FlowPay never sees it)."""
    key = gateway_credentials("stripe").api_key
    response = requests.post(f"{localstripe_url}/v1/payment_methods", headers={"Authorization": f"Bearer {key}"}, timeout=5, data={
        "type": "card", "card[number]": "4000002500003155", "card[exp_month]": "12", "card[exp_year]": "2030", "card[cvc]": "123",
    })
    response.raise_for_status()
    return response.json()["id"]


def webhook_audit(event_id: str):
    return AuditEntry.objects.filter(actor_type="webhook", actor_id=f"stripe:{event_id}")


def event_id_of(payload: bytes) -> str:
    return json.loads(payload)["id"]


class Deliver:
    """POSTs a webhook the way the gateway does (raw bytes), with the task running at once
    when the inbox row commits (eager Celery, on-commit callbacks executed)."""

    def __init__(self, client, capture):
        self.client = client
        self.capture = capture

    def stripe(self, payload: bytes, *, header: str | None = None, secret: str = SECRET, timestamp: int | None = None):
        signature = sign(payload, secret, timestamp) if header is None else header
        extra = {"HTTP_STRIPE_SIGNATURE": signature} if signature else {}
        with self.capture(execute=True):
            return self.client.post("/webhooks/stripe", data=payload, content_type="application/json", **extra)

    def paypal(self, payload: bytes, headers: dict | None = None):
        headers = fixture("webhook_headers") if headers is None else headers
        meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
        with self.capture(execute=True):
            return self.client.post("/webhooks/paypal", data=payload, content_type="application/json", **meta)


@pytest.fixture
def deliver(client, celery_eager, django_capture_on_commit_callbacks) -> Deliver:
    return Deliver(client, django_capture_on_commit_callbacks)


@pytest.fixture
def stripe_webhooks(stripe_gateway, settings, monkeypatch):
    """Stripe is the payment gateway (localstripe) and its webhook signing secret is SECRET."""
    settings.FLOWPAY_GATEWAYS = ["stripe"]
    monkeypatch.setitem(registry.GATEWAY_CLASSES, "stripe", StripeGateway)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    credentials_reload()
    registry.gateway_named.cache_clear()
    yield stripe_gateway
    registry.gateway_named.cache_clear()


@pytest.fixture
def lost_stripe_answers(monkeypatch):
    """Stripe's answers to authorizations are lost: the PaymentIntent is made at localstripe,
    FlowPay sees a timeout and leaves the payment processing. `manual_at_gateway` makes it a
    manual-capture PaymentIntent whatever FlowPay asked (to get one found authorized)."""
    made: list = []
    original = StripeGateway.authorize
    options = {"manual_at_gateway": False}

    def authorize(self, *, payment, idempotency_key):
        if options["manual_at_gateway"]:
            payment = dataclasses.replace(payment, capture=False)
        made.append(original(self, payment=payment, idempotency_key=idempotency_key))
        raise GatewayTimeout("Stripe did not answer the authorize (outcome unknown): test")

    monkeypatch.setattr(StripeGateway, "authorize", authorize)
    return types.SimpleNamespace(made=made, options=options)


def stuck_stripe_payment(account, *, amount=1999, payment_method="pm_card_visa") -> Transaction:
    txn = transaction_create(
        merchant=account.merchant,
        payment=PaymentInput(amount=amount, currency="USD", payment_method=payment_method),
        actor=SYSTEM,
    )
    assert (txn.status, txn.gateway, txn.gateway_reference) == ("processing", "stripe", "")
    return txn


def intent_object(localstripe_url: str, reference: str, **overrides) -> dict:
    intent = localstripe_get(localstripe_url, f"/v1/payment_intents/{reference}")
    return {**intent, **overrides}
