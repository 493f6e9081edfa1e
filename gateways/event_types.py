"""The changes a verified gateway event announces, in FlowPay's terms (the dataclasses the
inbound-event service applies). A leaf module: each gateway's event translator
(gateways.<name>.events) builds these, and gateways.events looks the translators up.

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
    # The gateway's dispute fee (its withdrawal balance transactions), None when not reported.
    fee: int | None = None


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
