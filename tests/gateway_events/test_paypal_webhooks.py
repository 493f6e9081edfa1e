"""Inbound PayPal webhooks (POST /webhooks/paypal), verified through the local fake's
verify-webhook-signature endpoint (tests/support/paypal_fake.py)."""

import datetime as dt
import json
import uuid

import pytest

from audit.models import AuditEntry
from gateway_events.models import InboundEvent
from gateways import credentials, registry
from gateways.paypal.adapter import PayPalGateway, clear_token_cache
from payments.services.transactions import PaymentInput, transaction_create
from refunds.models import Chargeback
from tests.support.inbound_webhooks import SYSTEM
from tests.support.paypal_fake import FakePayPal

pytestmark = pytest.mark.django_db


PAYPAL_CLIENT_ID = "AdFlowPayInboundClient"
PAYPAL_CLIENT_SECRET = "EKflowpay-inbound-secret-7x2q"
PAYPAL_WEBHOOK_ID = "4JH86294D6297924G"


@pytest.fixture
def paypal(settings, monkeypatch):
    fake = FakePayPal(client_id=PAYPAL_CLIENT_ID, client_secret=PAYPAL_CLIENT_SECRET).start()
    monkeypatch.setenv("PAYPAL_CLIENT_ID", PAYPAL_CLIENT_ID)
    monkeypatch.setenv("PAYPAL_CLIENT_SECRET", PAYPAL_CLIENT_SECRET)
    monkeypatch.setenv("PAYPAL_API_BASE", fake.url)
    monkeypatch.setenv("PAYPAL_WEBHOOK_ID", PAYPAL_WEBHOOK_ID)
    settings.FLOWPAY_GATEWAYS = ["paypal"]
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


def paypal_event(event_type: str, resource_type: str, resource: dict) -> bytes:
    return json.dumps({
        "id": f"WH-{uuid.uuid4().hex[:17].upper()}-{uuid.uuid4().hex[:17].upper()}", "event_version": "1.0",
        "create_time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "resource_type": resource_type,
        "resource_version": "2.0", "event_type": event_type, "summary": event_type, "resource": resource, "links": [],
    }, indent=2).encode()


def test_paypal_capture_completed_and_dispute_created_through_the_verify_endpoint(paypal, merchant_a, deliver):
    # given a PayPal payment whose answer was lost (PayPal answered 500): processing
    paypal.queue("POST", "/v2/checkout/orders", status=500, fixture="error_500_internal_server_error")
    txn = transaction_create(merchant=merchant_a.merchant, payment=PaymentInput(amount=1999, currency="USD", payment_method="8kk8451t"),
                             actor=SYSTEM)
    assert (txn.status, txn.gateway) == ("processing", "paypal")

    # when PayPal sends PAYMENT.CAPTURE.COMPLETED for it (custom_id is FlowPay's transaction id)
    capture = {
        "id": "7TK53561YB803214S", "status": "COMPLETED", "amount": {"currency_code": "USD", "value": "19.99"},
        "final_capture": True, "custom_id": txn.public_id, "invoice_id": f"flowpay:{txn.public_id}:authorize:1",
        "supplementary_data": {"related_ids": {"order_id": "5O190127TN364715T"}},
        "create_time": "2026-11-21T10:00:00Z", "update_time": "2026-11-21T10:00:00Z",
    }
    completed = paypal_event("PAYMENT.CAPTURE.COMPLETED", "capture", capture)
    response = deliver.paypal(completed)

    # then PayPal was asked to verify it, and the payment is completed with the capture id
    assert response.status_code == 200, response.content
    (verify,) = paypal.received("POST", "/v1/notifications/verify-webhook-signature")
    assert verify.json["webhook_id"] == PAYPAL_WEBHOOK_ID and verify.json["webhook_event"] == json.loads(completed)
    txn.refresh_from_db()
    assert (txn.status, txn.gateway_reference, txn.amount_captured) == ("completed", "7TK53561YB803214S", 1999)
    assert AuditEntry.objects.filter(actor_type="webhook", actor_id=f"paypal:{json.loads(completed)['id']}",
                                     action="transaction.resolved").count() == 1

    # when the buyer disputes it
    dispute_resource = {
        "dispute_id": "PP-D-27803", "create_time": "2026-11-21T11:00:00.000Z", "update_time": "2026-11-21T11:00:00.000Z",
        "disputed_transactions": [{"seller_transaction_id": "7TK53561YB803214S", "gross_amount": {"currency_code": "USD", "value": "19.99"}}],
        "reason": "MERCHANDISE_OR_SERVICE_NOT_RECEIVED", "status": "WAITING_FOR_SELLER_RESPONSE",
        "dispute_amount": {"currency_code": "USD", "value": "19.99"}, "seller_response_due_date": "2026-12-01T11:00:00.000Z",
        "dispute_life_cycle_stage": "CHARGEBACK", "dispute_channel": "EXTERNAL",
    }
    assert deliver.paypal(paypal_event("CUSTOMER.DISPUTE.CREATED", "dispute", dispute_resource)).status_code == 200

    # then a chargeback is recorded for it
    chargeback = Chargeback.objects.get()
    assert (chargeback.transaction_id, chargeback.chargeback_reference, chargeback.status) == (txn.pk, "PP-D-27803", "needs_response")
    assert (chargeback.amount, chargeback.gateway, chargeback.reason) == (1999, "paypal", "MERCHANDISE_OR_SERVICE_NOT_RECEIVED")
    assert chargeback.evidence_due_by == dt.datetime(2026, 12, 1, 11, tzinfo=dt.UTC)
    assert InboundEvent.objects.get(type="CUSTOMER.DISPUTE.CREATED").object_reference == "PP-D-27803"

    # and once PayPal resolves it in the seller's favour, it is won
    resolved = {**dispute_resource, "status": "RESOLVED", "dispute_outcome": {"outcome_code": "RESOLVED_SELLER_FAVOUR"}}
    assert deliver.paypal(paypal_event("CUSTOMER.DISPUTE.RESOLVED", "dispute", resolved)).status_code == 200
    chargeback.refresh_from_db()
    assert chargeback.status == "won"


def test_a_paypal_webhook_paypal_does_not_verify_is_rejected_and_stored_nowhere(paypal, deliver):
    paypal.queue("POST", "/v1/notifications/verify-webhook-signature", fixture="verify_webhook_signature_failure")

    response = deliver.paypal(paypal_event("PAYMENT.CAPTURE.COMPLETED", "capture", {"id": "1", "status": "COMPLETED"}))

    assert (response.status_code, response.json()["error"]["code"]) == (400, "webhook_signature_invalid")
    assert not InboundEvent.objects.exists()
