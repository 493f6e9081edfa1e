"""The PayPal gateway: REST Orders v2 / Payments v2 over `requests`.

Flow of a payment (`authorize`):
1. POST /v2/checkout/orders with the saved payment token as `payment_source`, intent CAPTURE
   (automatic capture) or AUTHORIZE (manual capture), `PayPal-Request-Id` = FlowPay's
   idempotency key and `invoice_id` = the same key.
2. With a vaulted source PayPal usually completes the order at once (status COMPLETED, the
   capture or authorization inside `purchase_units[0].payments`). When it answers CREATED or
   APPROVED instead, the adapter calls /orders/{id}/capture or /orders/{id}/authorize with a
   request id derived from the key. PAYER_ACTION_REQUIRED becomes REQUIRES_ACTION with the
   `payer-action` link.

References handed back to FlowPay (`ChargeResult.reference`, `OperationResult.reference`):
- manual capture: the AUTHORIZATION id (what `capture` and `void` take);
- automatic capture: the CAPTURE id (what `refund` takes); `capture()` also returns the new
  capture id, and `refund()` accepts an authorization id and refunds its single capture;
- REQUIRES_ACTION: the ORDER id (nothing is authorized yet; `void` on it succeeds, the
  unapproved order simply expires).
The order id is kept in `ChargeResult.message`.

Errors, by what they say about the money (see base.py):
- OAuth failures, 401/403 after one token refresh, 429, and any failure of a read or of a
  call made before the money call -> GatewayUnavailableError (nothing happened);
- connection failures after the request may have been sent, read timeouts, 409 (PayPal is
  still processing the same PayPal-Request-Id) and 5xx on authorize/capture/void/refund ->
  GatewayTimeout (outcome unknown), logged as a warning containing "gateway timeout";
  a connection that could not even be opened (refused, DNS, connect timeout) sent nothing,
  so it is GatewayUnavailableError;
- a decline (422 INSTRUMENT_DECLINED / TRANSACTION_REFUSED / ..., or a capture or
  authorization with status DECLINED/DENIED) is a normal DECLINED result;
- other 400/404/422 -> GatewayRequestError with PayPal's `issue` (or `name`) as code.

Credentials are read per call (`gateway_credentials("paypal")`); only the OAuth access token
is cached in-process, keyed by (client_id, api_base), so a credentials reload takes effect
at once. Secrets never reach logs or exception messages (`mask_secret` when one must be named).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NameResolutionError, NewConnectionError

from core.money import currency_exponent
from gateways.base import (
    ChargeRequest,
    ChargeResult,
    GatewayPayment,
    GatewayRequestError,
    GatewayTimeout,
    GatewayUnavailableError,
    HealthStatus,
    OperationResult,
    Outcome,
    Settlement,
    WebhookEvent,
    WebhookVerificationError,
)
from gateways.credentials import GatewayCredentials, gateway_credentials, mask_secret

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0  # seconds to open a connection
READ_TIMEOUT = 30.0  # seconds to wait for PayPal's answer (payments can be slow)
HEALTH_READ_TIMEOUT = 5.0
TOKEN_REFRESH_MARGIN = 120.0  # refresh the access token this long before PayPal expires it
MAX_REQUEST_ID_LENGTH = 108  # PayPal-Request-Id limit on the Orders API
MAX_INVOICE_ID_LENGTH = 127
SETTLEMENT_PAGE_SIZE = 500  # the transaction search maximum
SETTLEMENT_MAX_PAGES = 200

# The live hosts; anything else (sandbox, a local fake) is test mode.
LIVE_HOSTS = {"api-m.paypal.com", "api.paypal.com"}

# PayPal refuses decimals for these even where ISO 4217 has a minor unit (JPY has none anyway).
NO_DECIMAL_CURRENCIES = {"HUF", "JPY", "TWD"}

# Marks the inert order that `fetch(idempotency_key=...)` sends; see `_fetch_by_key`.
PROBE_MARKER = "flowpay-idempotency-probe"

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

# Transaction search: event codes T00xx are payments received, T1107 is a refund.
SETTLED_TRANSACTION_STATUSES = {"S", "F", "V"}  # success, partially refunded, reversed
REFUND_EVENT_CODES = {"T1107"}

WEBHOOK_HEADERS = {
    "auth_algo": "paypal-auth-algo",
    "cert_url": "paypal-cert-url",
    "transmission_id": "paypal-transmission-id",
    "transmission_sig": "paypal-transmission-sig",
    "transmission_time": "paypal-transmission-time",
}

# One session per process: keep-alive connections to PayPal are reused. No automatic retries:
# a POST must never be re-sent by the transport behind our back.
_session = requests.Session()
_session.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0))
_session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0))



@dataclass(frozen=True)
class _AccessToken:
    value: str
    refresh_at: float  # time.monotonic() after which a new token is fetched


_token_lock = threading.Lock()
_tokens: dict[tuple[str, str], _AccessToken] = {}


def clear_token_cache() -> None:
    """Forget every cached access token (tests; a forced re-authentication)."""
    with _token_lock:
        _tokens.clear()


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


def _money(amount: int, currency: str) -> dict:
    return {"currency_code": currency, "value": to_paypal_value(amount, currency)}


def _minor(money: Mapping | None) -> int:
    if not money:
        return 0
    return from_paypal_value(money.get("value", "0"), money.get("currency_code", ""))


# --- small helpers ---------------------------------------------------------------------
def _bounded(key: str, limit: int) -> str:
    """An id within PayPal's length limit, still deterministic (idempotency must survive)."""
    if len(key) <= limit:
        return key
    return "fp-" + hashlib.sha256(key.encode()).hexdigest()


def _payment_source(token: str) -> dict:
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


def _issue(body: Mapping | None) -> str:
    """PayPal's fine-grained error code: details[0].issue, else the error name."""
    if not isinstance(body, Mapping):
        return ""
    details = body.get("details")
    if isinstance(details, list):
        for detail in details:
            if isinstance(detail, Mapping) and detail.get("issue"):
                return str(detail["issue"])
    return str(body.get("name") or body.get("error") or "")


def _error_text(body: Mapping | None, fallback: str) -> str:
    if not isinstance(body, Mapping):
        return fallback
    description = ""
    details = body.get("details")
    if isinstance(details, list) and details and isinstance(details[0], Mapping):
        description = details[0].get("description") or ""
    text = description or body.get("message") or body.get("error_description") or fallback
    debug_id = body.get("debug_id")
    return f"{text} (debug_id {debug_id})" if debug_id else str(text)


def _link(resource: Mapping | None, *rels: str) -> str | None:
    if not isinstance(resource, Mapping):
        return None
    for rel in rels:
        for link in resource.get("links") or []:
            if isinstance(link, Mapping) and link.get("rel") == rel and link.get("href"):
                return str(link["href"])
    return None


def _first_unit(order: Mapping) -> Mapping:
    units = order.get("purchase_units") or [{}]
    return units[0] if isinstance(units[0], Mapping) else {}


def _parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _decline_code_from_processor(resource: Mapping) -> str:
    response = resource.get("processor_response") or {}
    return PROCESSOR_DECLINE_CODES.get(str(response.get("response_code", "")), "card_declined")


@dataclass
class _Reply:
    status: int
    body: dict | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class PayPalGateway:
    """PayPal REST (Orders v2 / Payments v2); see the module docstring for the references."""

    name = "paypal"

    def __init__(self, *, connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT):
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout

    # --- payments -------------------------------------------------------------------
    def authorize(self, *, payment: ChargeRequest, idempotency_key: str) -> ChargeResult:
        """Create the order and take it to an authorization (manual capture) or a capture
        (automatic). Returns the authorization id or the capture id as `reference`."""
        amount = _money(payment.amount, payment.currency)
        unit = {
            "reference_id": payment.flowpay_reference,
            "custom_id": payment.flowpay_reference,
            "invoice_id": _bounded(idempotency_key, MAX_INVOICE_ID_LENGTH),
            "amount": amount,
        }
        if payment.description:
            unit["description"] = payment.description[:127]
        body = {
            "intent": "CAPTURE" if payment.capture else "AUTHORIZE",
            "purchase_units": [unit],
            "payment_source": _payment_source(payment.payment_method),
        }
        reply = self._call(
            "POST", "/v2/checkout/orders", json_body=body, request_id=idempotency_key, money=True, operation="authorize"
        )
        if not reply.ok:
            return self._order_error(reply, payment=payment, order=None, operation="authorize")
        order = reply.body or {}
        status = order.get("status")
        if status in ("CREATED", "APPROVED"):
            step = "capture" if payment.capture else "authorize"
            reply = self._call(
                "POST", f"/v2/checkout/orders/{order.get('id')}/{step}", json_body={},
                request_id=f"{idempotency_key}:{step}", money=True, operation="authorize",
            )
            if not reply.ok:
                return self._order_error(reply, payment=payment, order=order, operation="authorize")
            order = reply.body or {}
        return self._charge_result(order, payment)

    def capture(self, *, reference: str, amount: int, idempotency_key: str) -> OperationResult:
        """Capture `amount` of the authorization `reference` (final: the rest is released).
        Returns the new CAPTURE id as `reference` (the one refunds take)."""
        authorization = self._get(f"/v2/payments/authorizations/{reference}", missing=f"No such authorization: '{reference}'")
        currency = (authorization.get("amount") or {}).get("currency_code", "")
        status = authorization.get("status")
        if status == "CAPTURED":
            # Captured already (a retry under a new key after an unknown outcome): report it.
            return self._existing_capture(authorization, reference)
        if status not in ("CREATED", "PARTIALLY_CAPTURED"):
            return OperationResult(
                succeeded=False, reference=reference, error_code="charge_not_capturable",
                message=f"This PayPal authorization is {status} and cannot be captured.",
            )
        body = {"amount": _money(amount, currency), "final_capture": True}
        reply = self._call(
            "POST", f"/v2/payments/authorizations/{reference}/capture", json_body=body,
            request_id=idempotency_key, money=True, operation="capture",
        )
        if not reply.ok:
            issue = _issue(reply.body)
            if reply.status == 422 and issue == "AUTHORIZATION_ALREADY_CAPTURED":
                return self._existing_capture(authorization, reference)
            if reply.status == 422 and issue in ("AUTHORIZATION_VOIDED", "AUTHORIZATION_EXPIRED", "PREVIOUSLY_VOIDED"):
                return OperationResult(succeeded=False, reference=reference, error_code="charge_not_capturable",
                                       message=_error_text(reply.body, issue))
            if reply.status == 422 and issue in ("MAX_CAPTURE_AMOUNT_EXCEEDED", "MAX_AUTHORIZATION_COUNT_EXCEEDED"):
                raise GatewayRequestError(_error_text(reply.body, "Capture amount exceeds the authorized amount."),
                                          code="amount_too_large")
            if reply.status == 422 and issue in DECLINE_ISSUES:
                return OperationResult(succeeded=False, reference=reference, error_code=DECLINE_ISSUES[issue],
                                       message=_error_text(reply.body, "The capture was declined."))
            self._raise_for_reply(reply, money=True, operation="capture")
        captured = reply.body or {}
        if captured.get("status") in ("DECLINED", "FAILED"):
            return OperationResult(
                succeeded=False, reference=captured.get("id") or reference,
                error_code=_decline_code_from_processor(captured), message="PayPal declined the capture.",
            )
        return OperationResult(
            succeeded=True, reference=captured.get("id"), amount=_minor(captured.get("amount")) or amount,
            message="capture pending at PayPal" if captured.get("status") == "PENDING" else "",
        )

    def void(self, *, reference: str, idempotency_key: str) -> OperationResult:
        """Void the authorization `reference`. An ORDER id (a REQUIRES_ACTION payment) has
        nothing to void: PayPal lets the unapproved order expire, so that succeeds too."""
        reply = self._call(
            "POST", f"/v2/payments/authorizations/{reference}/void", json_body=None,
            request_id=idempotency_key, money=True, operation="void",
        )
        if reply.ok:  # 204 (minimal) or 200 with the VOIDED authorization
            return OperationResult(succeeded=True, reference=reference)
        issue = _issue(reply.body)
        if reply.status == 422:
            if "VOIDED" in issue:
                return OperationResult(succeeded=True, reference=reference)
            return OperationResult(succeeded=False, reference=reference, error_code="charge_not_voidable",
                                   message=_error_text(reply.body, issue))
        if reply.status == 404:
            order = self._get_or_none(f"/v2/checkout/orders/{reference}")
            if order is not None:
                if order.get("status") in ("CREATED", "APPROVED", "PAYER_ACTION_REQUIRED", "VOIDED"):
                    return OperationResult(succeeded=True, reference=reference,
                                           message="PayPal order never authorized; it expires unpaid.")
                return OperationResult(succeeded=False, reference=reference, error_code="charge_not_voidable",
                                       message=f"This PayPal order is {order.get('status')} and cannot be voided.")
            raise GatewayRequestError(f"No such authorization: '{reference}'", code="resource_missing")
        self._raise_for_reply(reply, money=True, operation="void")
        raise AssertionError("unreachable")  # pragma: no cover

    def refund(self, *, reference: str, amount: int, idempotency_key: str) -> OperationResult:
        """Refund `amount` of the capture `reference` (an authorization id is resolved to its
        capture). Returns the REFUND id as `reference`."""
        capture = self._resolve_capture(reference)
        capture_id = capture.get("id") or reference
        currency = (capture.get("amount") or {}).get("currency_code", "")
        reply = self._call(
            "POST", f"/v2/payments/captures/{capture_id}/refund", json_body={"amount": _money(amount, currency)},
            request_id=idempotency_key, money=True, operation="refund",
        )
        if not reply.ok:
            issue = _issue(reply.body)
            if reply.status == 422 and issue in ("REFUND_AMOUNT_EXCEEDED", "CAPTURE_FULLY_REFUNDED"):
                raise GatewayRequestError(_error_text(reply.body, "Refund exceeds the captured amount."), code="amount_too_large")
            if reply.status == 422:
                return OperationResult(succeeded=False, reference=capture_id, error_code=issue.lower() or "refund_refused",
                                       message=_error_text(reply.body, "PayPal refused the refund."))
            self._raise_for_reply(reply, money=True, operation="refund")
        refund = reply.body or {}
        if refund.get("status") in ("FAILED", "CANCELLED"):
            return OperationResult(succeeded=False, reference=refund.get("id"), error_code="refund_failed",
                                   message=f"PayPal refund {refund.get('status')}")
        return OperationResult(
            succeeded=True, reference=refund.get("id"), amount=_minor(refund.get("amount")) or amount,
            message="refund pending at PayPal" if refund.get("status") == "PENDING" else "",
        )

    def fetch(self, *, reference: str | None = None, idempotency_key: str | None = None) -> GatewayPayment | None:
        """What PayPal says about a payment, by its reference (capture, authorization or
        order id, tried in that order) or by the idempotency key it was created under."""
        if reference:
            return self._fetch_by_reference(reference)
        if idempotency_key:
            return self._fetch_by_key(idempotency_key)
        return None

    def list_settlements(self, *, date: dt.date) -> list[Settlement]:
        """Balance-affecting payments and refunds of one UTC day, from the transaction
        search (PayPal lists a transaction up to three hours after it happened)."""
        start = dt.datetime.combine(date, dt.time.min, tzinfo=dt.UTC)
        end = start + dt.timedelta(days=1) - dt.timedelta(seconds=1)
        settlements: list[Settlement] = []
        page, total_pages = 1, 1
        while page <= total_pages and page <= SETTLEMENT_MAX_PAGES:
            body = self._get(
                "/v1/reporting/transactions",
                params={
                    "start_date": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "end_date": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "fields": "transaction_info",
                    "page_size": SETTLEMENT_PAGE_SIZE,
                    "page": page,
                },
            )
            for detail in body.get("transaction_details") or []:
                settlement = self._settlement(detail.get("transaction_info") or {})
                if settlement is not None:
                    settlements.append(settlement)
            total_pages = int(body.get("total_pages") or 1)
            page += 1
        return settlements

    def verify_credentials(self) -> bool:
        """True when PayPal issues an access token for the configured client id and secret."""
        creds = self._credentials(require=False)
        if not creds.is_configured:
            return False
        try:
            self._fetch_token(creds, timeout=(self.connect_timeout, self.read_timeout))
        except GatewayUnavailableError as exc:
            if exc.code == "gateway_authentication_failed":
                return False
            raise
        return True

    def health_check(self) -> HealthStatus:
        """A timed OAuth token call (fresh, not the cached token)."""
        creds = self._credentials(require=False)
        if not creds.is_configured:
            return HealthStatus(healthy=False, detail="PayPal credentials are not configured")
        started = time.perf_counter()
        try:
            self._fetch_token(creds, timeout=(self.connect_timeout, min(self.read_timeout, HEALTH_READ_TIMEOUT)))
        except GatewayUnavailableError as exc:
            return HealthStatus(healthy=False, latency_ms=(time.perf_counter() - started) * 1000, detail=str(exc)[:200])
        return HealthStatus(healthy=True, latency_ms=(time.perf_counter() - started) * 1000)

    def parse_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Verify the event through PayPal's verify-webhook-signature call, then normalise it.
        Anything but verification_status SUCCESS raises WebhookVerificationError."""
        found = _webhook_headers(headers)
        missing = [name for name, value in found.items() if not value]
        if missing:
            raise WebhookVerificationError(f"PayPal webhook headers missing: {', '.join(missing)}")
        try:
            event = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            raise WebhookVerificationError("PayPal webhook body is not JSON") from None
        if not isinstance(event, dict) or not event.get("id") or not event.get("event_type"):
            raise WebhookVerificationError("PayPal webhook body is not an event")
        creds = self._credentials(require=False)
        if not (creds.is_configured and creds.webhook_id):
            raise WebhookVerificationError("PayPal webhook id or credentials are not configured")
        # The event is spliced in as received: PayPal verifies the JSON it was sent, and a
        # re-serialised copy (key order, escapes, number format) can fail verification.
        head = json.dumps({**found, "webhook_id": creds.webhook_id})
        raw = payload if isinstance(payload, bytes) else str(payload).encode()
        body = head[:-1].encode() + b', "webhook_event": ' + raw.strip() + b"}"
        try:
            reply = self._call(
                "POST", "/v1/notifications/verify-webhook-signature", raw_body=body, money=False,
                operation="verify_webhook", creds=creds,
            )
        except (GatewayUnavailableError, GatewayRequestError, GatewayTimeout) as exc:
            raise WebhookVerificationError(f"PayPal could not verify the webhook: {exc}") from None
        if not reply.ok:
            raise WebhookVerificationError(f"PayPal verify-webhook-signature answered HTTP {reply.status}")
        if (reply.body or {}).get("verification_status") != "SUCCESS":
            raise WebhookVerificationError("PayPal webhook signature verification failed")
        resource = event.get("resource") if isinstance(event.get("resource"), dict) else {}
        created = _parse_time(event.get("create_time"))
        if created is None:
            raise WebhookVerificationError("PayPal webhook has no readable create_time")
        flowpay_reference = resource.get("custom_id")
        if not flowpay_reference and resource.get("purchase_units"):
            flowpay_reference = _first_unit(resource).get("custom_id")
        return WebhookEvent(
            id=str(event["id"]),
            gateway=self.name,
            type=str(event["event_type"]),
            created=created,
            object_type=str(event.get("resource_type") or ""),
            object_reference=resource.get("id"),
            flowpay_reference=flowpay_reference or None,
            data=resource,
            livemode=urlsplit(creds.api_base).hostname in LIVE_HOSTS,
        )

    # --- results ---------------------------------------------------------------------
    def _charge_result(self, order: Mapping, payment: ChargeRequest) -> ChargeResult:
        order_id = order.get("id")
        status = order.get("status")
        note = f"PayPal order {order_id}"
        if status == "PAYER_ACTION_REQUIRED" or (status == "CREATED" and _link(order, "payer-action")):
            return self._requires_action(order, payment)
        payments = _first_unit(order).get("payments") or {}
        captures = payments.get("captures") or []
        authorizations = payments.get("authorizations") or []
        if payment.capture and captures:
            return self._from_payment_record(captures[0], payment, note, captured=True)
        if not payment.capture and authorizations:
            return self._from_payment_record(authorizations[0], payment, note, captured=False)
        if captures or authorizations:  # the other kind than asked for: still report what happened
            record = captures[0] if captures else authorizations[0]
            return self._from_payment_record(record, payment, note, captured=bool(captures))
        # COMPLETED without a payment, VOIDED, or anything new: PayPal's answer does not say
        # whether money moved, so the caller asks again later (never fails over).
        return ChargeResult(outcome=Outcome.UNKNOWN, reference=order_id, amount=payment.amount,
                            message=f"{note} is {status} without a payment")

    @staticmethod
    def _from_payment_record(record: Mapping, payment: ChargeRequest, note: str, *, captured: bool) -> ChargeResult:
        status = record.get("status")
        reference = record.get("id")
        if status in ("DECLINED", "DENIED", "FAILED"):
            return ChargeResult(
                outcome=Outcome.DECLINED, reference=reference, amount=payment.amount,
                decline_code=_decline_code_from_processor(record), message=f"{note}: PayPal {status.lower()} the payment",
            )
        if status == "PENDING":
            reason = (record.get("status_details") or {}).get("reason", "")
            return ChargeResult(outcome=Outcome.UNKNOWN, reference=reference, amount=payment.amount,
                                message=f"{note}: payment pending at PayPal {reason}".strip())
        if captured and status in COMPLETED_CAPTURE:
            return ChargeResult(outcome=Outcome.SUCCEEDED, reference=reference, amount=payment.amount,
                                amount_captured=_minor(record.get("amount")), message=note)
        if not captured and status in ("CREATED", "CAPTURED", "PARTIALLY_CAPTURED"):
            return ChargeResult(outcome=Outcome.SUCCEEDED, reference=reference, amount=payment.amount, message=note)
        return ChargeResult(outcome=Outcome.UNKNOWN, reference=reference, amount=payment.amount,
                            message=f"{note}: payment {status}")

    def _requires_action(self, order: Mapping | None, payment: ChargeRequest, error_body: Mapping | None = None) -> ChargeResult:
        url = _link(order, "payer-action", "approve") or _link(error_body, "payer-action", "redirect", "approve")
        order_id = (order or {}).get("id")
        if not url and order_id:
            fresh = self._get_or_none(f"/v2/checkout/orders/{order_id}")
            url = _link(fresh, "payer-action", "approve")
        return ChargeResult(
            outcome=Outcome.REQUIRES_ACTION, reference=order_id, amount=payment.amount,
            next_action={"type": "redirect_to_url", "url": url} if url else None,
            message=f"PayPal order {order_id} needs the payer's approval",
        )

    def _order_error(self, reply: _Reply, *, payment: ChargeRequest, order: Mapping | None, operation: str) -> ChargeResult:
        issue = _issue(reply.body)
        reference = (order or {}).get("id")
        if reply.status == 422 and issue in DECLINE_ISSUES:
            return ChargeResult(
                outcome=Outcome.DECLINED, reference=reference, amount=payment.amount,
                decline_code=DECLINE_ISSUES[issue], message=_error_text(reply.body, "The payment was declined."),
            )
        if reply.status == 422 and issue in ACTION_ISSUES:
            return self._requires_action(order, payment, error_body=reply.body)
        self._raise_for_reply(reply, money=True, operation=operation)
        raise AssertionError("unreachable")  # pragma: no cover

    def _existing_capture(self, authorization: Mapping, reference: str) -> OperationResult:
        captures = self._captures_of(authorization)
        done = [c for c in captures if c.get("status") in COMPLETED_CAPTURE | {"PENDING"}]
        if not done:
            return OperationResult(succeeded=False, reference=reference, error_code="charge_not_capturable",
                                   message="PayPal says the authorization is captured but lists no capture.")
        return OperationResult(succeeded=True, reference=done[0].get("id"), amount=sum(_minor(c.get("amount")) for c in done))

    def _captures_of(self, authorization: Mapping) -> list[Mapping]:
        order_id = ((authorization.get("supplementary_data") or {}).get("related_ids") or {}).get("order_id")
        if not order_id:
            return []
        order = self._get_or_none(f"/v2/checkout/orders/{order_id}")
        payments = _first_unit(order or {}).get("payments") or {}
        return [c for c in payments.get("captures") or [] if isinstance(c, Mapping)]

    def _resolve_capture(self, reference: str) -> Mapping:
        capture = self._get_or_none(f"/v2/payments/captures/{reference}")
        if capture is not None:
            return capture
        authorization = self._get_or_none(f"/v2/payments/authorizations/{reference}")
        if authorization is None:
            raise GatewayRequestError(f"No such capture: '{reference}'", code="resource_missing")
        captures = [c for c in self._captures_of(authorization) if c.get("status") in COMPLETED_CAPTURE]
        if len(captures) != 1:
            raise GatewayRequestError(
                f"Authorization '{reference}' has {len(captures)} refundable captures; refund a capture id.",
                code="capture_ambiguous" if captures else "charge_not_captured",
            )
        return captures[0]

    # --- fetch -----------------------------------------------------------------------
    def _fetch_by_reference(self, reference: str) -> GatewayPayment | None:
        capture = self._get_or_none(f"/v2/payments/captures/{reference}")
        if capture is not None:
            amount = _minor(capture.get("amount"))
            status = CAPTURE_STATUSES.get(capture.get("status"), "processing")
            return GatewayPayment(
                reference=capture.get("id") or reference, status=status, amount=amount,
                amount_captured=amount if status == "succeeded" else 0,
                currency=(capture.get("amount") or {}).get("currency_code", ""),
                flowpay_reference=capture.get("custom_id"),
            )
        authorization = self._get_or_none(f"/v2/payments/authorizations/{reference}")
        if authorization is not None:
            status = AUTHORIZATION_STATUSES.get(authorization.get("status"), "processing")
            captured = 0
            if authorization.get("status") in ("CAPTURED", "PARTIALLY_CAPTURED"):
                captured = sum(_minor(c.get("amount")) for c in self._captures_of(authorization)
                               if c.get("status") in COMPLETED_CAPTURE)
            return GatewayPayment(
                reference=authorization.get("id") or reference, status=status,
                amount=_minor(authorization.get("amount")), amount_captured=captured,
                currency=(authorization.get("amount") or {}).get("currency_code", ""),
                flowpay_reference=authorization.get("custom_id"),
            )
        order = self._get_or_none(f"/v2/checkout/orders/{reference}")
        return self._payment_from_order(order) if order is not None else None

    def _fetch_by_key(self, idempotency_key: str) -> GatewayPayment | None:
        """PayPal has no search by PayPal-Request-Id, but its idempotency is the lookup: a
        POST that repeats a PayPal-Request-Id is not executed again, PayPal "returns the
        latest status of the previous request that used that same header". So the create-order
        call is re-sent under the same request id and the answer read.

        Why this is safe: we do not have the original body, so the re-sent body is an inert
        order (intent CAPTURE, USD 1.00, no payment_source, custom_id = PROBE_MARKER).
        - PayPal saw the original: it answers with the original order, whatever our body says;
          its current state is then read with a plain GET.
        - PayPal never saw it: the inert order is created, and without a payment source and
          without the payer's approval nothing can ever be charged; it expires. We recognise
          it by the marker and answer None (no payment under that key).
        Limits: PayPal keeps request ids for a limited time (hours to days, per API and
        account), so ask within that window; a request still in flight may make PayPal
        refuse the repeat (then GatewayUnavailableError: ask again later)."""
        probe = {
            "intent": "CAPTURE",
            "purchase_units": [{
                "reference_id": PROBE_MARKER, "custom_id": PROBE_MARKER,
                "amount": {"currency_code": "USD", "value": "1.00"},
            }],
        }
        reply = self._call("POST", "/v2/checkout/orders", json_body=probe, request_id=idempotency_key,
                            money=False, operation="fetch")
        if reply.status == 409:
            raise GatewayUnavailableError("PayPal is still processing this request id; ask again later")
        if reply.status == 422 and _issue(reply.body) in DECLINE_ISSUES:
            return None  # the original create was declined: no payment exists under this key
        if not reply.ok:
            self._raise_for_reply(reply, money=False, operation="fetch")
        order = reply.body or {}
        unit = _first_unit(order)
        if unit.get("custom_id") == PROBE_MARKER or unit.get("reference_id") == PROBE_MARKER:
            return None
        current = self._get_or_none(f"/v2/checkout/orders/{order.get('id')}") or order
        return self._payment_from_order(current)

    @staticmethod
    def _payment_from_order(order: Mapping) -> GatewayPayment:
        unit = _first_unit(order)
        money = unit.get("amount") or {}
        currency = money.get("currency_code", "")
        amount = _minor(money) if money else 0
        payments = unit.get("payments") or {}
        captures = [c for c in payments.get("captures") or [] if isinstance(c, Mapping)]
        authorizations = [a for a in payments.get("authorizations") or [] if isinstance(a, Mapping)]
        captured = sum(_minor(c.get("amount")) for c in captures if c.get("status") in COMPLETED_CAPTURE)
        flowpay_reference = unit.get("custom_id") or None
        if authorizations:  # manual capture: the authorization is FlowPay's reference
            auth = authorizations[0]
            status = AUTHORIZATION_STATUSES.get(auth.get("status"), "processing")
            return GatewayPayment(reference=auth.get("id"), status=status, amount=_minor(auth.get("amount")) or amount,
                                  amount_captured=captured, currency=currency, flowpay_reference=flowpay_reference)
        if captures:
            first = captures[0]
            status = CAPTURE_STATUSES.get(first.get("status"), "processing")
            return GatewayPayment(reference=first.get("id"), status=status, amount=amount, amount_captured=captured,
                                  currency=currency, flowpay_reference=flowpay_reference)
        status = ORDER_STATUSES.get(order.get("status"), "processing")
        return GatewayPayment(reference=order.get("id"), status=status, amount=amount, amount_captured=0,
                              currency=currency, flowpay_reference=flowpay_reference)

    @staticmethod
    def _settlement(info: Mapping) -> Settlement | None:
        code = str(info.get("transaction_event_code") or "")
        if info.get("transaction_status") not in SETTLED_TRANSACTION_STATUSES:
            return None
        money = info.get("transaction_amount") or {}
        try:
            amount = _minor(money)
        except GatewayRequestError:
            return None
        if code in REFUND_EVENT_CODES:
            kind = "refund"
        elif code.startswith("T00") and amount > 0:
            kind = "charge"
        else:
            return None  # fees, transfers, holds, reversals: not a FlowPay payment or refund
        created = _parse_time(info.get("transaction_initiation_date") or info.get("transaction_updated_date"))
        return Settlement(
            reference=str(info.get("transaction_id") or ""), flowpay_reference=info.get("custom_field") or None,
            amount=abs(amount), currency=money.get("currency_code", ""), type=kind,
            created=(created or dt.datetime.now(dt.UTC)).astimezone(dt.UTC),
        )

    # --- HTTP ------------------------------------------------------------------------
    def _credentials(self, *, require: bool = True) -> GatewayCredentials:
        creds = gateway_credentials(self.name)
        if require and not creds.is_configured:
            raise GatewayUnavailableError("PayPal credentials are not configured", code="gateway_not_configured")
        return creds

    def _get(self, path: str, *, params: dict | None = None, missing: str | None = None) -> dict:
        reply = self._call("GET", path, params=params, money=False, operation="read")
        if reply.status == 404 and missing:
            raise GatewayRequestError(missing, code="resource_missing")
        if not reply.ok:
            self._raise_for_reply(reply, money=False, operation="read")
        return reply.body or {}

    def _get_or_none(self, path: str) -> dict | None:
        reply = self._call("GET", path, money=False, operation="read")
        if reply.status == 404:
            return None
        if not reply.ok:
            self._raise_for_reply(reply, money=False, operation="read")
        return reply.body or {}

    def _call(
        self, method: str, path: str, *, json_body: dict | None = None, raw_body: bytes | None = None,
        params: dict | None = None, request_id: str | None = None, money: bool, operation: str,
        creds: GatewayCredentials | None = None,
    ) -> _Reply:
        """One API call with a bearer token; a 401 drops the token and retries once (a 401
        means PayPal did not process the request, so the retry is safe even for money)."""
        creds = creds or self._credentials()
        headers = {"Accept": "application/json", "Prefer": "return=representation"}
        if request_id:
            headers["PayPal-Request-Id"] = _bounded(request_id, MAX_REQUEST_ID_LENGTH)
        data = None
        if raw_body is not None:
            data, headers["Content-Type"] = raw_body, "application/json"
        elif json_body is not None:
            data, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        for attempt in (1, 2):
            token = self._access_token(creds)
            try:
                response = _session.request(
                    method, creds.api_base + path, params=params, data=data,
                    headers={**headers, "Authorization": f"Bearer {token}"},
                    timeout=(self.connect_timeout, self.read_timeout),
                )
            except requests.RequestException as exc:
                raise self._transport_error(exc, money=money, operation=operation, creds=creds) from None
            if response.status_code == 401 and attempt == 1:
                _drop_token(creds, token)
                continue
            break
        try:
            body = response.json() if response.content else None
            readable = True
        except ValueError:
            body, readable = None, False
        if not readable and 200 <= response.status_code < 300:
            # PayPal acted but we cannot read what it did.
            if money:
                raise self._unknown_outcome(operation, creds, f"unreadable {response.status_code} answer")
            raise GatewayUnavailableError(f"PayPal answered {response.status_code} with an unreadable body")
        return _Reply(status=response.status_code, body=body if isinstance(body, dict) else None)

    def _raise_for_reply(self, reply: _Reply, *, money: bool, operation: str) -> None:
        status, body = reply.status, reply.body
        issue = _issue(body)
        text = _error_text(body, f"PayPal answered HTTP {status}")
        if status in (401, 403):
            raise GatewayUnavailableError(f"PayPal refused the credentials: {text}", code="gateway_authentication_failed")
        if status == 429:
            raise GatewayUnavailableError(f"PayPal rate limit: {text}", code="gateway_rate_limited")
        if status == 409 and money:
            raise self._unknown_outcome(operation, self._credentials(require=False), "409: request id still in flight")
        if status >= 500:
            if money:
                raise self._unknown_outcome(operation, self._credentials(require=False), f"HTTP {status} {issue}".strip())
            raise GatewayUnavailableError(f"PayPal answered HTTP {status}: {text}")
        raise GatewayRequestError(text, code=issue.lower() if issue else f"http_{status}")

    def _transport_error(self, exc: requests.RequestException, *, money: bool, operation: str, creds: GatewayCredentials):
        if not money or _nothing_sent(exc):
            return GatewayUnavailableError(f"PayPal unreachable ({type(exc).__name__})")
        return self._unknown_outcome(operation, creds, type(exc).__name__)

    @staticmethod
    def _unknown_outcome(operation: str, creds: GatewayCredentials, detail: str) -> GatewayTimeout:
        logger.warning(
            "paypal gateway timeout on %s: outcome unknown (%s)", operation, detail,
            extra={"gateway": "paypal", "operation": operation, "credential": mask_secret(creds.client_secret)},
        )
        return GatewayTimeout(f"PayPal gateway timeout on {operation}: outcome unknown ({detail})")

    # --- OAuth -----------------------------------------------------------------------
    def _access_token(self, creds: GatewayCredentials) -> str:
        key = (creds.client_id, creds.api_base)
        with _token_lock:
            cached = _tokens.get(key)
            if cached is not None and time.monotonic() < cached.refresh_at:
                return cached.value
            # Fetched under the lock: concurrent callers wait for one token instead of each
            # asking PayPal for their own.
            return self._fetch_token(creds, timeout=(self.connect_timeout, self.read_timeout), locked=True)

    def _fetch_token(self, creds: GatewayCredentials, *, timeout: tuple[float, float], locked: bool = False) -> str:
        """POST /v1/oauth2/token (client credentials). Every failure is
        GatewayUnavailableError: no payment call has been made yet."""
        try:
            response = _session.post(
                creds.api_base + "/v1/oauth2/token",
                auth=(creds.client_id, creds.client_secret),
                data={"grant_type": "client_credentials"},
                headers={"Accept": "application/json"},
                timeout=timeout,
            )
        except requests.RequestException as exc:
            raise GatewayUnavailableError(f"PayPal OAuth token request failed ({type(exc).__name__})") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code in (400, 401, 403) and isinstance(body, dict) and (
            response.status_code != 400 or body.get("error") in ("invalid_client", "unauthorized_client")
        ):
            raise GatewayUnavailableError(
                f"PayPal rejected the client credentials (secret {mask_secret(creds.client_secret)}): "
                f"{body.get('error', response.status_code)}",
                code="gateway_authentication_failed",
            )
        token = body.get("access_token") if isinstance(body, dict) else None
        if response.status_code != 200 or not token:
            raise GatewayUnavailableError(f"PayPal OAuth token request answered HTTP {response.status_code}")
        try:
            expires_in = float(body.get("expires_in") or 0)
        except (TypeError, ValueError):
            expires_in = 0.0
        margin = min(TOKEN_REFRESH_MARGIN, expires_in / 10)
        entry = _AccessToken(value=token, refresh_at=time.monotonic() + max(expires_in - margin, 0.0))
        if locked:
            _tokens[(creds.client_id, creds.api_base)] = entry
        else:
            with _token_lock:
                _tokens[(creds.client_id, creds.api_base)] = entry
        return token


def _drop_token(creds: GatewayCredentials, token: str) -> None:
    key = (creds.client_id, creds.api_base)
    with _token_lock:
        cached = _tokens.get(key)
        if cached is not None and cached.value == token:
            del _tokens[key]


def _nothing_sent(exc: requests.RequestException) -> bool:
    """True when the connection could not be opened, so PayPal received nothing."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError):
        return False
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3 MaxRetryError wraps the cause
    return isinstance(reason, (NewConnectionError, NameResolutionError))


def _webhook_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The PAYPAL-* transmission headers, whatever their case or Django META form."""
    normalised: dict[str, str] = {}
    for name, value in (headers or {}).items():
        key = str(name).lower().replace("_", "-")
        if key.startswith("http-"):
            key = key[5:]
        normalised[key] = str(value).strip() if value is not None else ""
    return {field: normalised.get(header, "") for field, header in WEBHOOK_HEADERS.items()}
