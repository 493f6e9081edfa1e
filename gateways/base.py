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
from collections.abc import Iterator, Mapping
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
    # The gateway's fee for a captured payment (minor units), when its balance transaction
    # reports one; None when the gateway does not say (FlowPay then applies the merchant's
    # fee schedule, corrected at reconciliation).
    fee: int | None = None


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
    fee: int | None = None  # a capture's fee, as on ChargeResult


@dataclass(frozen=True)
class GatewayPayment:
    """What the gateway says about a payment (for stuck-transaction resolution)."""

    reference: str
    status: str  # succeeded | requires_capture | requires_action | canceled | failed | processing (still settling)
    amount: int
    amount_captured: int
    currency: str
    flowpay_reference: str | None = None


class SettlementKind(StrEnum):
    """What a row of a gateway's settlement report did to the balance (Stripe's reporting
    categories; PayPal's T-codes and the simulator's rows are mapped onto them)."""

    CHARGE = "charge"
    REFUND = "refund"
    DISPUTE = "dispute"  # funds withdrawn for a dispute (chargeback)
    DISPUTE_REVERSAL = "dispute_reversal"  # funds reinstated: the dispute was won
    FEE = "fee"  # a fee not tied to one payment (account, Radar, ...)
    PAYOUT = "payout"
    PARTIAL_CAPTURE_REVERSAL = "partial_capture_reversal"  # the uncaptured part of an authorization, released
    AUTHORIZATION = "authorization"  # a hold, no money moved (PayPal T13xx)
    OTHER = "other"


class SettlementStatus(StrEnum):
    """The gateway's status of the payment, refund or dispute a row is about, normalised."""

    SUCCEEDED = "succeeded"
    PENDING = "pending"  # accepted, not final yet (an eCheck, funds not available)
    FAILED = "failed"  # failed, denied or canceled: no money stayed
    REVERSED = "reversed"  # succeeded, then reversed or refunded in full
    PARTIALLY_REFUNDED = "partially_refunded"


@dataclass(frozen=True)
class SettlementRecord:
    """One row of a gateway's settlement report (balance history), as reconciliation reads it.

    `key` identifies the row within the gateway's report: the same key twice is the same row
    (a page read twice), two keys with one `reference` are two movements of the same payment
    (a duplicate settlement). `amount` is the row's signed effect on the balance, gross, in
    integer minor units of `currency` (a charge is positive, a refund or dispute negative);
    `fee` is what the gateway took for it (positive; negative when it gave a fee back), None
    when the report does not say."""

    key: str
    reference: str  # the gateway's id of the payment / refund / dispute, as FlowPay stores it
    kind: SettlementKind
    amount: int
    currency: str  # ISO 4217, upper case
    created: dt.datetime  # aware
    status: SettlementStatus = SettlementStatus.SUCCEEDED
    fee: int | None = None
    parent_reference: str = ""  # a refund's or dispute's payment
    flowpay_reference: str = ""  # FlowPay's transaction id, when the gateway echoes it (metadata)
    idempotency_key: str = ""  # the idempotency key FlowPay sent, when the gateway echoes it
    balance_affecting: bool = True


@dataclass(frozen=True)
class SettlementFileFormat:
    """A gateway's own CSV settlement report, described column by column so that a file of a
    million rows is read by PostgreSQL's COPY (reconciliation.matching.files), never row by
    row in Python. Every name below is a column of the file's header.

    - key: the columns whose values, joined by ":", identify a row (SettlementRecord.key);
    - kind: the column of the row's category; `kinds` maps its values (any other: OTHER);
    - references: per kind, the columns whose first non-empty value is the reference
      (the entry for None applies to every other kind);
    - amount, fee: amounts in major units of `currency` (`major_units`) or integer minor
      units, converted with the currency's exponent; `fee_sign` -1 when the file writes fees
      taken as negative numbers;
    - created: a UTC time "YYYY-MM-DD HH:MM:SS" or ISO 8601 with an offset;
    - status: its values mapped by `statuses` (absent or unknown: succeeded);
    - balance_affecting: a Y/N column (None: every row affects the balance)."""

    name: str
    key: tuple[str, ...]
    kind: str
    kinds: Mapping[str, SettlementKind]
    references: Mapping[SettlementKind | None, tuple[str, ...]]
    amount: str
    currency: str
    created: str
    major_units: bool
    fee: str | None = None
    fee_sign: int = 1
    parent_reference: tuple[str, ...] = ()
    flowpay_reference: tuple[str, ...] = ()
    idempotency_key: tuple[str, ...] = ()
    status: str | None = None
    statuses: Mapping[str, SettlementStatus] = field(default_factory=dict)
    balance_affecting: str | None = None

    @property
    def required_columns(self) -> set[str]:
        return {*self.key, self.kind, self.amount, self.currency, self.created, *self.references.get(None, ())[:1]}


class PayoutState(StrEnum):
    IN_TRANSIT = "in_transit"  # accepted by the gateway, on its way to the bank
    PAID = "paid"  # arrived
    FAILED = "failed"  # refused or returned: the money is back at the gateway


@dataclass(frozen=True)
class PayoutResult:
    """What the gateway says about a payout to the merchant's bank."""

    reference: str
    state: PayoutState
    amount: int
    currency: str
    arrival_date: dt.date | None = None
    failure_code: str | None = None
    failure_message: str = ""


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

    def settlement_records(self, *, start: dt.datetime, end: dt.datetime) -> Iterator[SettlementRecord]:
        """The rows of the settlement report created in [start, end), page by page (a
        generator: the caller streams them, whatever their number). Keys are unique within
        one call. Raises GatewayUnavailableError when the report cannot be read."""
        ...

    # The gateway's own CSV report format (`reconcile_payments --file`), or None.
    settlement_file_format: SettlementFileFormat | None

    def verify_credentials(self) -> bool: ...

    def health_check(self) -> HealthStatus: ...

    def parse_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> WebhookEvent: ...


@runtime_checkable
class PayoutGateway(Protocol):
    """A gateway that pays merchants out to their bank (the simulator, Stripe's Payouts API).
    The errors mean what they mean for payments: GatewayUnavailableError (nothing happened),
    GatewayTimeout (unknown: look the payout up by its key before sending it again),
    GatewayRequestError (refused: nothing will be paid)."""

    name: str

    def payout(self, *, amount: int, currency: str, flowpay_reference: str, description: str,
               idempotency_key: str) -> PayoutResult: ...

    def fetch_payout(self, *, reference: str | None = None, idempotency_key: str | None = None) -> PayoutResult | None: ...
