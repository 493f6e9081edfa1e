"""What gateway events mean: the Stripe and PayPal translators (gateways.events), no I/O."""

import datetime as dt


def webhook_event(gateway: str, event_type: str, data: dict, flowpay_reference: str | None = None):
    from gateways.base import WebhookEvent

    return WebhookEvent(id="evt_t", gateway=gateway, type=event_type, created=dt.datetime.now(dt.UTC),
                        object_type="", object_reference=data.get("id"), flowpay_reference=flowpay_reference, data=data)


def test_stripe_events_translate_to_flowpay_changes():
    from gateways.events import webhook_event_changes

    charge = {"id": "ch_1", "object": "charge", "payment_intent": "pi_1", "refunds": {"object": "list", "data": [
        {"id": "re_a", "object": "refund", "amount": 300, "status": "succeeded", "charge": "ch_1",
         "metadata": {"flowpay_idempotency_key": "flowpay:re_Ours:refund"}},
        {"id": "re_b", "object": "refund", "amount": 200, "status": "pending", "charge": "ch_1"},
    ]}}
    refunds = webhook_event_changes(webhook_event("stripe", "charge.refunded", charge)).refunds
    assert [(r.reference, r.status, r.amount, r.idempotency_key) for r in refunds] == [
        ("re_a", "succeeded", 300, "flowpay:re_Ours:refund"), ("re_b", "pending", 200, None),
    ]
    assert refunds[1].payment_references == ("ch_1",)
    assert webhook_event_changes(webhook_event("stripe", "charge.refunded", {"id": "ch_2", "object": "charge"})).unsupported

    def dispute_status(status):
        return webhook_event_changes(webhook_event("stripe", "charge.dispute.closed", {"id": "dp_1", "status": status})).dispute.status

    assert [dispute_status(s) for s in ("warning_needs_response", "under_review", "won", "warning_closed", "lost", "charge_refunded")] == [
        "needs_response", "under_review", "won", "won", "lost", "other",
    ]
    failed = webhook_event_changes(webhook_event("stripe", "refund.failed", {"id": "re_c", "status": "pending",
                                                                             "failure_reason": "lost_or_stolen_card"}))
    assert (failed.refunds[0].status, failed.refunds[0].failure_code) == ("failed", "lost_or_stolen_card")


def test_paypal_events_translate_to_flowpay_changes():
    from gateways.events import webhook_event_changes

    denied = webhook_event_changes(webhook_event("paypal", "PAYMENT.CAPTURE.DENIED", {
        "id": "CAP1", "status": "DENIED", "custom_id": "txn_1",
        "supplementary_data": {"related_ids": {"order_id": "ORD1", "authorization_id": "AUTH1"}},
    })).payment
    assert (denied.status, denied.references, denied.flowpay_reference) == ("failed", ("CAP1", "AUTH1", "ORD1"), "txn_1")

    refunded = webhook_event_changes(webhook_event("paypal", "PAYMENT.CAPTURE.REFUNDED", {
        "id": "1JU08902781691411", "status": "COMPLETED", "amount": {"value": "10.99", "currency_code": "USD"},
        "links": [{"rel": "self", "href": "https://api.paypal.com/v2/payments/refunds/1JU08902781691411"},
                  {"rel": "up", "href": "https://api.paypal.com/v2/payments/captures/2GG279541U471931P"}],
    })).refunds[0]
    assert (refunded.reference, refunded.status, refunded.amount, refunded.payment_references) == (
        "1JU08902781691411", "succeeded", 1099, ("2GG279541U471931P",))

    def resolved(outcome):
        return webhook_event_changes(webhook_event("paypal", "CUSTOMER.DISPUTE.RESOLVED", {
            "dispute_id": "PP-D-1", "status": "RESOLVED", "dispute_outcome": {"outcome_code": outcome},
        })).dispute.status

    assert [resolved(o) for o in ("RESOLVED_BUYER_FAVOUR", "RESOLVED_SELLER_FAVOUR", "CANCELED_BY_BUYER", "ACCEPTED", "NONE")] == [
        "lost", "won", "won", "accepted", "other",
    ]
    assert webhook_event_changes(webhook_event("paypal", "BILLING.PLAN.CREATED", {})).unsupported
