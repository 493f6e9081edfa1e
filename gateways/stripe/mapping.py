"""Stripe's objects <-> FlowPay's dataclasses (gateways.base): PaymentIntent parameters and
statuses, refunds, balance transactions, decline codes. No calls to Stripe.

Amounts need no conversion: Stripe counts integer minor units, as FlowPay does.
"""

from __future__ import annotations

import datetime as dt
import logging

import stripe

from gateways.base import (
    ChargeRequest,
    ChargeResult,
    GatewayPayment,
    OperationResult,
    Outcome,
    PaymentMethodDetails,
    PayoutResult,
    PayoutState,
)

# The Stripe gateway's one log name (see gateways.stripe.client).
logger = logging.getLogger("gateways.stripe.adapter")

# Metadata written on every PaymentIntent (and refund), so a payment whose answer was lost
# can be found again by the key FlowPay sent.
METADATA_TRANSACTION = "flowpay_transaction"
METADATA_IDEMPOTENCY_KEY = "flowpay_idempotency_key"
METADATA_PAYOUT = "flowpay_payout"
# Asked for on every PaymentIntent create and capture: the charge's balance transaction
# carries Stripe's fee (ChargeResult.fee).
EXPAND_FEE = ["latest_charge.balance_transaction"]
PAYOUT_STATES = {
    "pending": PayoutState.IN_TRANSIT, "in_transit": PayoutState.IN_TRANSIT, "paid": PayoutState.PAID,
    "failed": PayoutState.FAILED, "canceled": PayoutState.FAILED,
}

STATUS_FOR_FLOWPAY = {
    "succeeded": "succeeded",
    "requires_capture": "requires_capture",
    "requires_action": "requires_action",
    "canceled": "canceled",
    # FlowPay confirms at creation: a PaymentIntent that needs a (new) payment method or a
    # confirmation is a payment that failed, and no money moved.
    "requires_payment_method": "failed",
    "requires_confirmation": "failed",
    # Not among base.GatewayPayment's documented statuses: an asynchronous method still
    # settling (not reachable with cards). Passed through so the caller keeps waiting.
    "processing": "processing",
}


def payment_method_details(obj: dict) -> PaymentMethodDetails | None:
    """The card of a PaymentMethod, Token or Card object: fingerprint, brand, funding and the
    issuer's country (never its number)."""
    card = obj.get("card") if obj.get("object") in ("payment_method", "token") else obj
    if not isinstance(card, dict) or not card.get("fingerprint"):
        return None
    country = card.get("country")
    return PaymentMethodDetails(
        fingerprint=str(card["fingerprint"]), brand=(card.get("brand") or None) and str(card["brand"]).lower(),
        funding=card.get("funding") or None, country=str(country).upper() if country else None,
    )


def utc(timestamp: int | float) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(timestamp), tz=dt.UTC)


def plain(obj) -> dict:
    """An SDK object as a plain dict (nested objects included)."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    return obj.to_dict(recursive=True, for_json=True)


def _metadata_value(value) -> str:
    return value if isinstance(value, str) else str(value)


def payment_intent_params(payment: ChargeRequest, *, idempotency_key: str) -> dict:
    """The PaymentIntent create parameters of a payment, confirmed at once."""
    metadata = {str(k): _metadata_value(v) for k, v in (payment.metadata or {}).items() if v is not None}
    if payment.customer_reference:
        metadata.setdefault("flowpay_customer", payment.customer_reference)
    # Ours last: the keys that find the payment again can never be overwritten.
    metadata[METADATA_TRANSACTION] = payment.flowpay_reference
    metadata[METADATA_IDEMPOTENCY_KEY] = idempotency_key
    params: dict = {
        "amount": payment.amount,
        "currency": payment.currency.lower(),
        "payment_method": payment.payment_method,
        # Cards only: a server-side confirmation without a return_url cannot take
        # redirect-based methods (Stripe's automatic payment methods would require one).
        "payment_method_types": ["card"],
        "confirm": True,
        "capture_method": "automatic" if payment.capture else "manual",
        "metadata": metadata,
    }
    if payment.three_d_secure:
        # Fraud screening's request_3ds: Stripe asks the issuer for authentication ("any"),
        # and the PaymentIntent answers requires_action when the customer must complete it.
        params["payment_method_options"] = {"card": {"request_three_d_secure": "any"}}
    if payment.description:
        # As metadata rather than Stripe's `description`: localstripe (our test and demo
        # peer) rejects that parameter, and metadata shows in Stripe's dashboard too.
        metadata.setdefault("flowpay_description", payment.description[:500])
    return params


def amount_received(intent: dict) -> int:
    if "amount_received" in intent:
        return int(intent["amount_received"] or 0)
    # localstripe's PaymentIntents have no amount_received: a succeeded one took its amount.
    return int(intent.get("amount") or 0) if intent.get("status") == "succeeded" else 0


def charge_fee(intent: dict) -> int | None:
    """Stripe's fee on the PaymentIntent's charge, from its balance transaction (expanded,
    EXPAND_FEE); None when Stripe did not include it."""
    charge = intent.get("latest_charge")
    balance_transaction = charge.get("balance_transaction") if isinstance(charge, dict) else None
    if not isinstance(balance_transaction, dict) or balance_transaction.get("fee") is None:
        return None
    return int(balance_transaction["fee"])


def payout_result(payout: dict) -> PayoutResult:
    status = str(payout.get("status") or "")
    arrival = payout.get("arrival_date")
    state = PAYOUT_STATES.get(status, PayoutState.IN_TRANSIT)
    return PayoutResult(
        reference=str(payout.get("id") or ""), state=state, amount=int(payout.get("amount") or 0),
        currency=str(payout.get("currency") or "").upper(),
        arrival_date=utc(arrival).date() if arrival else None,
        failure_code=(payout.get("failure_code") or f"payout_{status}") if state == PayoutState.FAILED else None,
        failure_message=str(payout.get("failure_message") or "") if state == PayoutState.FAILED else "",
    )


def decline_code(exc: stripe.StripeError) -> str:
    error = exc.error
    return (getattr(error, "decline_code", None) if error else None) or exc.code or "card_declined"


def declined_from_error(exc: stripe.CardError, *, amount: int) -> ChargeResult:
    intent = plain(exc.error.payment_intent) if exc.error and exc.error.payment_intent else {}
    return ChargeResult(
        outcome=Outcome.DECLINED, reference=intent.get("id"), amount=intent.get("amount", amount),
        decline_code=decline_code(exc), message=exc.user_message or "Your card was declined.",
        retryable=False,
    )


def declined_from_intent_in_error(exc: stripe.StripeError, *, amount: int) -> ChargeResult | None:
    """Stripe attaches the PaymentIntent to some errors; one with a last_payment_error
    is a decline, whatever the error class."""
    if not isinstance(exc, stripe.InvalidRequestError) or not exc.error or not exc.error.payment_intent:
        return None
    intent = plain(exc.error.payment_intent)
    if not intent.get("last_payment_error"):
        return None
    return charge_result(intent, amount=amount)


def charge_result(intent: dict, *, amount: int) -> ChargeResult:
    """The ChargeResult of a confirmed PaymentIntent."""
    status = intent.get("status")
    reference = intent.get("id")
    amount = int(intent.get("amount") or amount)
    error = intent.get("last_payment_error") or {}
    if status == "succeeded":
        return ChargeResult(outcome=Outcome.SUCCEEDED, reference=reference, amount=amount,
                            amount_captured=amount_received(intent), fee=charge_fee(intent))
    if status == "requires_capture":
        return ChargeResult(outcome=Outcome.SUCCEEDED, reference=reference, amount=amount, amount_captured=0)
    if status == "requires_action":
        return ChargeResult(outcome=Outcome.REQUIRES_ACTION, reference=reference, amount=amount,
                            next_action=intent.get("next_action") or {})
    if error or status == "requires_payment_method":
        return ChargeResult(
            outcome=Outcome.DECLINED, reference=reference, amount=amount,
            decline_code=error.get("decline_code") or error.get("code") or "card_declined",
            message=error.get("message") or "The payment failed.", retryable=False,
        )
    logger.warning("stripe payment intent in an unexpected state after confirmation",
                   extra={"gateway": "stripe", "reference": reference, "status": status})
    return ChargeResult(outcome=Outcome.UNKNOWN, reference=reference, amount=amount,
                        message=f"Stripe reports the payment {status}.")


def refund_result(refund: dict, *, amount: int) -> OperationResult:
    status = refund.get("status")
    if status in ("failed", "canceled"):
        return OperationResult(succeeded=False, reference=refund.get("id"), amount=refund.get("amount", amount),
                               error_code=refund.get("failure_reason") or f"refund_{status}",
                               message=f"Stripe reports the refund {status}.")
    # succeeded, or pending / requires_action: accepted by Stripe and on its way.
    return OperationResult(succeeded=True, reference=refund.get("id"), amount=refund.get("amount", amount))


def gateway_payment(intent: dict) -> GatewayPayment:
    status = str(intent.get("status") or "")
    return GatewayPayment(
        reference=intent["id"],
        status=STATUS_FOR_FLOWPAY.get(status, status),
        amount=int(intent.get("amount") or 0),
        amount_captured=amount_received(intent),
        currency=str(intent.get("currency") or "").upper(),
        flowpay_reference=(intent.get("metadata") or {}).get(METADATA_TRANSACTION) or None,
    )
