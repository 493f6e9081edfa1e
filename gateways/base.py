"""The gateway protocol: dataclasses in, dataclasses out.

Nothing outside `gateways/` imports a gateway SDK or knows a gateway's payload.
Errors are split by what they say about the money:
- `GatewayDeclined` is never raised: a decline is a normal ChargeResult (final, never
  failed over);
- `GatewayUnavailableError`: nothing happened at the gateway, safe to retry or fail over;
- `GatewayTimeout`: the outcome is unknown; the caller must ask the same gateway later
  (by idempotency key) and must never send the payment elsewhere;
- `GatewayRequestError`: the gateway refused the request as invalid (bad token, ...).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    REQUIRES_ACTION = "requires_action"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ChargeRequest:
    amount: int
    currency: str
    payment_method: str  # gateway token only
    capture: bool  # True: authorize and capture at once
    flowpay_reference: str  # the transaction's public id, sent as gateway metadata
    description: str = ""
    customer_reference: str | None = None
    metadata: dict = field(default_factory=dict)
    # Ask the card issuer for 3-D Secure whatever the card's default (fraud screening's
    # request_3ds): the answer is REQUIRES_ACTION when the customer must authenticate.
    three_d_secure: bool = False


@dataclass(frozen=True)
class ChargeResult:
    outcome: Outcome
    reference: str | None  # the gateway's id, when it answered
    amount: int
    amount_captured: int = 0
    decline_code: str | None = None
    message: str = ""
    next_action: dict | None = None
    retryable: bool = False  # safe to retry or fail over (never for UNKNOWN)


@dataclass(frozen=True)
class PaymentMethodDetails:
    """What the gateway says about a card token, for fraud screening. Never card data: the
    fingerprint identifies the card number without revealing it."""

    fingerprint: str | None
    brand: str | None = None
    funding: str | None = None  # credit | debit | prepaid | unknown
    country: str | None = None  # ISO 3166-1 alpha-2 of the issuer


@dataclass(frozen=True)
class OperationResult:
    """Result of capture, void and refund."""

    succeeded: bool
    reference: str | None
    amount: int = 0
    error_code: str | None = None
    message: str = ""


@dataclass(frozen=True)
class GatewayPayment:
    """What the gateway says about a payment (for stuck-transaction resolution)."""

    reference: str
    status: str  # succeeded | requires_capture | requires_action | canceled | failed | processing (still settling)
    amount: int
    amount_captured: int
    currency: str
    flowpay_reference: str | None = None


@dataclass(frozen=True)
class Settlement:
    reference: str
    flowpay_reference: str | None
    amount: int
    currency: str
    type: str  # charge | refund
    created: dt.datetime


@dataclass(frozen=True)
class WebhookEvent:
    """A verified inbound gateway event, normalised."""

    id: str  # the gateway's event id (inbox key together with the gateway name)
    gateway: str
    type: str  # the gateway's own event type, e.g. payment_intent.succeeded
    created: dt.datetime  # when the gateway says the event happened (for webhook_lag_seconds)
    object_type: str  # payment_intent, charge, refund, dispute, capture, order, ...
    object_reference: str | None  # the gateway's id of that object
    flowpay_reference: str | None = None  # our transaction id when the gateway echoes it back
    data: dict = field(default_factory=dict)  # the raw object, for the services that apply it
    livemode: bool = False


@dataclass(frozen=True)
class HealthStatus:
    healthy: bool
    latency_ms: float | None = None
    detail: str = ""


class GatewayError(Exception):
    code = "gateway_error"
    retryable = False

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        if code:
            self.code = code


class GatewayUnavailableError(GatewayError):
    code = "gateway_unavailable"
    retryable = True


class GatewayTimeout(GatewayError):
    code = "gateway_timeout"
    retryable = False  # the charge may have happened: never retry elsewhere


class GatewayRequestError(GatewayError):
    code = "gateway_invalid_request"


class WebhookVerificationError(GatewayError):
    """Signature missing, forged, altered or too old: reject with 400, store nothing."""

    code = "webhook_signature_invalid"


@runtime_checkable
class Gateway(Protocol):
    name: str
    # True when fetch(idempotency_key=...) answering None is final once the call is older
    # than FLOWPAY_STUCK_NO_RECORD_GRACE_SECONDS: by then the look-up sees every payment made
    # under the key. False: "no record" is trusted only after the conservative
    # FLOWPAY_STUCK_NO_RECORD_GRACE_UNVERIFIED_SECONDS (payments.services.stuck).
    lookup_is_authoritative: bool

    def authorize(self, *, payment: ChargeRequest, idempotency_key: str) -> ChargeResult: ...

    def capture(self, *, reference: str, amount: int, idempotency_key: str) -> OperationResult: ...

    def void(self, *, reference: str, idempotency_key: str) -> OperationResult: ...

    def refund(self, *, reference: str, amount: int, idempotency_key: str) -> OperationResult: ...

    def fetch(self, *, reference: str | None = None, idempotency_key: str | None = None) -> GatewayPayment | None: ...

    # The card behind a token (fingerprint, brand, funding, issuer country), or None when the
    # gateway tells nothing about it (PayPal, a token of another kind). A read: no money moves.
    def describe_payment_method(self, *, token: str) -> PaymentMethodDetails | None: ...

    def list_settlements(self, *, date: dt.date) -> list[Settlement]: ...

    def verify_credentials(self) -> bool: ...

    def health_check(self) -> HealthStatus: ...

    def parse_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> WebhookEvent: ...
