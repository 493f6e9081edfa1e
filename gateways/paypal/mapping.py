"""PayPal's payloads <-> FlowPay's dataclasses (gateways.base): amounts, statuses, decline
codes, times, payment sources. Pure functions: no HTTP, no credentials.

Amounts: FlowPay counts integer minor units, PayPal writes decimal strings; the conversion
is exact both ways (never via float) and refuses what a currency cannot express.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from core.money import currency_exponent
from gateways.base import ChargeRequest, ChargeResult, GatewayPayment, GatewayRequestError, Outcome

# PayPal refuses decimals for these even where ISO 4217 has a minor unit (JPY has none anyway).
NO_DECIMAL_CURRENCIES = {"HUF", "JPY", "TWD"}

# 422 issues that are the payer's instrument being refused: a DECLINED result, never an error.
DECLINE_ISSUES = {
    "INSTRUMENT_DECLINED": "card_declined",
    "TRANSACTION_REFUSED": "card_declined",
    "PAYER_CANNOT_PAY": "card_declined",
    "DECLINED_DUE_TO_RELATED_TXN": "card_declined",
    "REDIRECT_PAYER_FOR_ALTERNATE_FUNDING": "card_declined",
    "PAYER_ACCOUNT_RESTRICTED": "card_declined",
    "PAYER_ACCOUNT_LOCKED_OR_CLOSED": "card_declined",
    "COMPLIANCE_VIOLATION": "card_declined",
    "TRANSACTION_BLOCKED_BY_PAYEE": "card_declined",
    "CARD_CLOSED": "card_declined",
    "CARD_EXPIRED": "expired_card",
    "INSUFFICIENT_FUNDS": "insufficient_funds",
    "MAX_NUMBER_OF_PAYMENT_ATTEMPTS_EXCEEDED": "card_velocity_exceeded",
}
ACTION_ISSUES = {"PAYER_ACTION_REQUIRED", "ORDER_NOT_APPROVED"}

# processor_response.response_code of a DECLINED capture/authorization (card-funded sources).
PROCESSOR_DECLINE_CODES = {
    "0500": "card_declined",  # DO_NOT_HONOR
    "5100": "card_declined",  # GENERIC_DECLINE
    "5110": "incorrect_cvc",  # CVV2_FAILURE
    "00N7": "incorrect_cvc",  # CVV2 failure, possible retry with CVV
    "5120": "insufficient_funds",  # INSUFFICIENT_FUNDS
    "5140": "card_declined",  # CARD_CLOSED
    "5180": "card_declined",  # INVALID_OR_RESTRICTED_CARD
    "5400": "expired_card",  # EXPIRED_CARD
    "9500": "fraudulent",  # SUSPECTED_FRAUD
    "9520": "card_declined",  # LOST_OR_STOLEN (shown as a generic decline)
    "5650": "authentication_required",  # DECLINED_SCA_REQUIRED
}

# Order / authorization / capture statuses -> GatewayPayment.status. PENDING money (an eCheck,
# a payment under review) is "processing": neither succeeded nor failed yet.
CAPTURE_STATUSES = {
    "COMPLETED": "succeeded",
    "PARTIALLY_REFUNDED": "succeeded",
    "REFUNDED": "succeeded",
    "PENDING": "processing",
    "DECLINED": "failed",
    "FAILED": "failed",
}
AUTHORIZATION_STATUSES = {
    "CREATED": "requires_capture",
    "CAPTURED": "succeeded",
    "PARTIALLY_CAPTURED": "succeeded",
    "PENDING": "processing",
    "DENIED": "failed",
    "VOIDED": "canceled",
    "EXPIRED": "canceled",
}
ORDER_STATUSES = {
    "CREATED": "requires_action",  # waiting for the payer's approval
    "APPROVED": "requires_action",  # approved, never authorized/captured: nothing was charged
    "PAYER_ACTION_REQUIRED": "requires_action",
    "VOIDED": "canceled",
    "COMPLETED": "failed",  # completed without any payment in it
}
COMPLETED_CAPTURE = {"COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"}


# The inert order that `fetch(idempotency_key=...)` sends (see the adapter's _fetch_by_key):
# no payment source, so it can never charge anyone; the marker recognises it.
PROBE_MARKER = "flowpay-idempotency-probe"
PROBE_ORDER = {
    "intent": "CAPTURE",
    "purchase_units": [{
        "reference_id": PROBE_MARKER, "custom_id": PROBE_MARKER,
        "amount": {"currency_code": "USD", "value": "1.00"},
    }],
}


# --- money ----------------------------------------------------------------------------
def to_paypal_value(amount: int, currency: str) -> str:
    """Integer minor units -> PayPal's decimal string, never via float.
    USD 1999 -> "19.99", JPY 500 -> "500", KWD 1999 -> "1.999", HUF 150000 -> "1500"."""
    exponent = _exponent(currency)
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise GatewayRequestError(f"PayPal amounts must be positive integers of minor units, got {amount!r}", code="invalid_amount")
    whole, fraction = divmod(amount, 10**exponent)
    if currency in NO_DECIMAL_CURRENCIES:
        if fraction:
            raise GatewayRequestError(
                f"PayPal does not accept fractional {currency} amounts ({amount} minor units).", code="invalid_amount"
            )
        return str(whole)
    if exponent == 0:
        return str(amount)
    return f"{whole}.{fraction:0{exponent}d}"


def from_paypal_value(value: str, currency: str) -> int:
    """PayPal's decimal string -> integer minor units ("19.99" USD -> 1999), exactly."""
    exponent = _exponent(currency)
    try:
        minor = Decimal(str(value)).scaleb(exponent)
    except InvalidOperation:
        raise GatewayRequestError(f"PayPal returned an unreadable amount {value!r}", code="invalid_amount") from None
    if minor != minor.to_integral_value():
        raise GatewayRequestError(f"PayPal returned {value!r}, finer than {currency}'s minor unit", code="invalid_amount")
    return int(minor)


def _exponent(currency: str) -> int:
    try:
        return currency_exponent(currency)
    except KeyError:
        raise GatewayRequestError(f"Unsupported currency {currency!r}", code="currency_not_supported") from None


def paypal_money(amount: int, currency: str) -> dict:
    """PayPal's money object ({"currency_code", "value"}) for integer minor units."""
    return {"currency_code": currency, "value": to_paypal_value(amount, currency)}


def minor_units(money: Mapping | None) -> int:
    """A PayPal money object -> integer minor units (0 when absent)."""
    if not money:
        return 0
    return from_paypal_value(money.get("value", "0"), money.get("currency_code", ""))


# --- payloads -------------------------------------------------------------------------
def payment_source(token: str) -> dict:
    """The `payment_source` for a saved PayPal payment method.

    FlowPay stores the gateway's token of a saved payment method, never account data:
    - a Vault v3 payment token of a PayPal wallet (e.g. "4j4mb9b3") is charged with the
      documented shape {"paypal": {"vault_id": <token>}}; that is the shape PayPal documents
      for "use a saved PayPal payment token" (merchant-initiated, payer not present);
    - a legacy reference-transaction billing agreement id ("B-...") uses the documented
      {"token": {"id": <id>, "type": "BILLING_AGREEMENT"}}, whose only type is that one.
    A vaulted *card* would be {"card": {"vault_id": ...}}, but a bare token does not say it is
    a card, so FlowPay's PayPal payment methods are PayPal wallets.
    """
    if token.startswith("B-"):
        return {"token": {"id": token, "type": "BILLING_AGREEMENT"}}
    return {"paypal": {"vault_id": token}}


def link(resource: Mapping | None, *rels: str) -> str | None:
    """The href of the first HATEOAS link of `resource` with one of `rels` (in that order)."""
    if not isinstance(resource, Mapping):
        return None
    for rel in rels:
        for candidate in resource.get("links") or []:
            if isinstance(candidate, Mapping) and candidate.get("rel") == rel and candidate.get("href"):
                return str(candidate["href"])
    return None


def first_unit(order: Mapping) -> Mapping:
    """An order's first (FlowPay's only) purchase unit."""
    units = order.get("purchase_units") or [{}]
    return units[0] if isinstance(units[0], Mapping) else {}


def order_captures(order: Mapping | None) -> list[Mapping]:
    """The captures listed in an order's purchase unit."""
    payments = first_unit(order or {}).get("payments") or {}
    return [c for c in payments.get("captures") or [] if isinstance(c, Mapping)]


def parse_time(value: str | None) -> dt.datetime | None:
    """PayPal's RFC 3339 time -> an aware datetime (UTC when PayPal gives no offset);
    None when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def decline_code_from_processor(resource: Mapping) -> str:
    """FlowPay's decline code of a DECLINED capture or authorization."""
    response = resource.get("processor_response") or {}
    return PROCESSOR_DECLINE_CODES.get(str(response.get("response_code", "")), "card_declined")


def is_probe_order(order: Mapping) -> bool:
    """Whether PayPal answered the probe with the inert order itself (it never saw the key)."""
    unit = first_unit(order)
    return unit.get("custom_id") == PROBE_MARKER or unit.get("reference_id") == PROBE_MARKER


def order_request(payment: ChargeRequest, *, invoice_id: str) -> dict:
    """The create-order body of a payment: intent CAPTURE (automatic capture) or AUTHORIZE
    (manual), one purchase unit carrying FlowPay's transaction id."""
    unit = {
        "reference_id": payment.flowpay_reference,
        "custom_id": payment.flowpay_reference,
        "invoice_id": invoice_id,
        "amount": paypal_money(payment.amount, payment.currency),
    }
    if payment.description:
        unit["description"] = payment.description[:127]
    return {
        "intent": "CAPTURE" if payment.capture else "AUTHORIZE",
        "purchase_units": [unit],
        "payment_source": payment_source(payment.payment_method),
    }


# --- results --------------------------------------------------------------------------
def charge_result_from_order(order: Mapping, payment: ChargeRequest) -> ChargeResult:
    """The ChargeResult of an order that needs no payer action: its capture or authorization."""
    order_id = order.get("id")
    note = f"PayPal order {order_id}"
    payments = first_unit(order).get("payments") or {}
    captures = payments.get("captures") or []
    authorizations = payments.get("authorizations") or []
    if payment.capture and captures:
        return charge_result_from_record(captures[0], payment, note, captured=True)
    if not payment.capture and authorizations:
        return charge_result_from_record(authorizations[0], payment, note, captured=False)
    if captures or authorizations:  # the other kind than asked for: still report what happened
        record = captures[0] if captures else authorizations[0]
        return charge_result_from_record(record, payment, note, captured=bool(captures))
    # COMPLETED without a payment, VOIDED, or anything new: PayPal's answer does not say
    # whether money moved, so the caller asks again later (never fails over).
    return ChargeResult(outcome=Outcome.UNKNOWN, reference=order_id, amount=payment.amount,
                        message=f"{note} is {order.get('status')} without a payment")


def charge_result_from_record(record: Mapping, payment: ChargeRequest, note: str, *, captured: bool) -> ChargeResult:
    """The ChargeResult of the capture (`captured`) or authorization PayPal made for an order."""
    status = record.get("status")
    reference = record.get("id")
    if status in ("DECLINED", "DENIED", "FAILED"):
        return ChargeResult(
            outcome=Outcome.DECLINED, reference=reference, amount=payment.amount,
            decline_code=decline_code_from_processor(record), message=f"{note}: PayPal {status.lower()} the payment",
        )
    if status == "PENDING":
        reason = (record.get("status_details") or {}).get("reason", "")
        return ChargeResult(outcome=Outcome.UNKNOWN, reference=reference, amount=payment.amount,
                            message=f"{note}: payment pending at PayPal {reason}".strip())
    if captured and status in COMPLETED_CAPTURE:
        return ChargeResult(outcome=Outcome.SUCCEEDED, reference=reference, amount=payment.amount,
                            amount_captured=minor_units(record.get("amount")), message=note)
    if not captured and status in ("CREATED", "CAPTURED", "PARTIALLY_CAPTURED"):
        return ChargeResult(outcome=Outcome.SUCCEEDED, reference=reference, amount=payment.amount, message=note)
    return ChargeResult(outcome=Outcome.UNKNOWN, reference=reference, amount=payment.amount,
                        message=f"{note}: payment {status}")


def payment_from_capture(capture: Mapping, reference: str) -> GatewayPayment:
    amount = minor_units(capture.get("amount"))
    status = CAPTURE_STATUSES.get(capture.get("status"), "processing")
    return GatewayPayment(
        reference=capture.get("id") or reference, status=status, amount=amount,
        amount_captured=amount if status == "succeeded" else 0,
        currency=(capture.get("amount") or {}).get("currency_code", ""),
        flowpay_reference=capture.get("custom_id"),
    )


def payment_from_authorization(authorization: Mapping, reference: str, *, captures: list[Mapping]) -> GatewayPayment:
    """An authorization as a GatewayPayment; `captures` are its order's captures (read only
    when it is (partially) captured)."""
    status = AUTHORIZATION_STATUSES.get(authorization.get("status"), "processing")
    captured = sum(minor_units(c.get("amount")) for c in captures if c.get("status") in COMPLETED_CAPTURE)
    return GatewayPayment(
        reference=authorization.get("id") or reference, status=status,
        amount=minor_units(authorization.get("amount")), amount_captured=captured,
        currency=(authorization.get("amount") or {}).get("currency_code", ""),
        flowpay_reference=authorization.get("custom_id"),
    )


def payment_from_order(order: Mapping) -> GatewayPayment:
    """An order as a GatewayPayment: its authorization (manual capture) or first capture when
    it has one, else the order itself."""
    unit = first_unit(order)
    money = unit.get("amount") or {}
    currency = money.get("currency_code", "")
    amount = minor_units(money) if money else 0
    payments = unit.get("payments") or {}
    captures = [c for c in payments.get("captures") or [] if isinstance(c, Mapping)]
    authorizations = [a for a in payments.get("authorizations") or [] if isinstance(a, Mapping)]
    captured = sum(minor_units(c.get("amount")) for c in captures if c.get("status") in COMPLETED_CAPTURE)
    flowpay_reference = unit.get("custom_id") or None
    if authorizations:  # manual capture: the authorization is FlowPay's reference
        auth = authorizations[0]
        status = AUTHORIZATION_STATUSES.get(auth.get("status"), "processing")
        return GatewayPayment(reference=auth.get("id"), status=status, amount=minor_units(auth.get("amount")) or amount,
                              amount_captured=captured, currency=currency, flowpay_reference=flowpay_reference)
    if captures:
        first = captures[0]
        status = CAPTURE_STATUSES.get(first.get("status"), "processing")
        return GatewayPayment(reference=first.get("id"), status=status, amount=amount, amount_captured=captured,
                              currency=currency, flowpay_reference=flowpay_reference)
    status = ORDER_STATUSES.get(order.get("status"), "processing")
    return GatewayPayment(reference=order.get("id"), status=status, amount=amount, amount_captured=0,
                          currency=currency, flowpay_reference=flowpay_reference)
