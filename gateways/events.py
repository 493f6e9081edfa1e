"""What a verified gateway event says, in FlowPay's terms.

`WebhookEvent` (base.py) is the verified event with the gateway's raw object; this module
turns it into dataclasses the inbound-event service applies (gateway_events.services),
so that, as everywhere else, nothing outside `payments/gateways/` reads a gateway payload.
Each gateway with webhooks has its translator (stripe_events, paypal_events).

Statuses are FlowPay's vocabulary:
- payments use GatewayPayment's: succeeded | requires_capture | requires_action | failed |
  canceled | processing;
- refunds: succeeded | failed | pending;
- disputes: needs_response | under_review | won | lost | accepted | other (a closing the
  chargeback state machine has no word for, e.g. Stripe's `charge_refunded`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from gateways.base import WebhookEvent


@dataclass(frozen=True)
class PaymentChange:
    status: str
    # The gateway ids FlowPay may know the payment by, the one to record first (Stripe: the
    # PaymentIntent; PayPal: the capture, then its authorization and order).
    references: tuple[str, ...]
    flowpay_reference: str | None = None  # our transaction id, when the gateway echoes it
    amount_captured: int = 0
    failure_code: str | None = None
    failure_message: str = ""
    next_action: dict | None = None


@dataclass(frozen=True)
class RefundChange:
    reference: str | None  # the gateway's refund id
    status: str
    amount: int = 0
    payment_references: tuple[str, ...] = ()
    # The idempotency key FlowPay sent with the refund (Stripe keeps it in the metadata):
    # finds a refund whose gateway answer was lost, so that has no gateway reference yet.
    idempotency_key: str | None = None
    failure_code: str | None = None


@dataclass(frozen=True)
class DisputeChange:
    reference: str  # the gateway's dispute id: the chargeback reference
    status: str
    gateway_status: str  # the gateway's own word, for notes
    payment_references: tuple[str, ...] = ()
    flowpay_reference: str | None = None
    amount: int | None = None
    currency: str = ""
    reason: str = ""
    evidence_due_by: dt.datetime | None = None


@dataclass(frozen=True)
class EventChanges:
    payment: PaymentChange | None = None
    refunds: tuple[RefundChange, ...] = ()
    dispute: DisputeChange | None = None
    # Set when FlowPay does not act on this event (its type, or what it lacks): it is
    # recorded as ignored with this reason.
    unsupported: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def subject_reference(self) -> str | None:
        """The gateway id of what the event is about (for the inbox row)."""
        if self.dispute is not None:
            return self.dispute.reference
        if self.payment is not None and self.payment.references:
            return self.payment.references[0]
        if self.refunds:
            return self.refunds[0].reference
        return None


def webhook_event_changes(event: WebhookEvent) -> EventChanges:
    """The changes a verified event announces (an unsupported result for gateways without
    webhooks or event types FlowPay does not act on)."""
    if event.gateway == "stripe":
        from gateways.stripe.events import stripe_event_changes

        return stripe_event_changes(event)
    if event.gateway == "paypal":
        from gateways.paypal.events import paypal_event_changes

        return paypal_event_changes(event)
    return EventChanges(unsupported=f"the {event.gateway} gateway sends no webhooks FlowPay acts on")


def webhook_configured(gateway: str) -> bool:
    """Whether inbound webhooks of `gateway` can be verified with the credentials in force:
    Stripe needs STRIPE_WEBHOOK_SECRET, PayPal PAYPAL_WEBHOOK_ID and its API credentials
    (verification is a call to PayPal)."""
    from gateways.credentials import gateway_credentials

    creds = gateway_credentials(gateway)
    if gateway == "stripe":
        return bool((creds.webhook_secret or "").strip(" ,"))
    if gateway == "paypal":
        return bool(creds.webhook_id and creds.is_configured)
    return False


def webhook_configuration_hint(gateway: str) -> str:
    return {
        "stripe": "set STRIPE_WEBHOOK_SECRET (the endpoint's signing secret, several comma-separated while rotating)",
        "paypal": "set PAYPAL_WEBHOOK_ID with PAYPAL_CLIENT_ID and PAYPAL_CLIENT_SECRET",
    }.get(gateway, "this gateway has no webhooks")
