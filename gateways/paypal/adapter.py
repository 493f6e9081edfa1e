"""The PayPal gateway: REST Orders v2 / Payments v2 (the HTTP and its errors are
gateways.paypal.client's, the payload mapping gateways.paypal.mapping's, the webhook
normalisation gateways.paypal.events').

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

A decline (422 INSTRUMENT_DECLINED / TRANSACTION_REFUSED / ..., or a capture or
authorization with status DECLINED/DENIED) is a normal DECLINED result; every other failure
is a gateway error by what it says about the money (see gateways.paypal.client).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Mapping

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
    PaymentMethodDetails,
    SettlementRecord,
    WebhookEvent,
    WebhookVerificationError,
)
from gateways.paypal.client import (
    CONNECT_TIMEOUT,
    HEALTH_READ_TIMEOUT,
    READ_TIMEOUT,
    PayPalClient,
    PayPalReply,
    bounded_id,
    clear_token_cache,  # noqa: F401  (part of the gateway's API: a forced re-authentication)
    error_issue,
    error_text,
)
from gateways.paypal.events import verification_request, webhook_document, webhook_event, webhook_headers
from gateways.paypal.mapping import (
    ACTION_ISSUES,
    COMPLETED_CAPTURE,
    DECLINE_ISSUES,
    PROBE_ORDER,
    charge_result_from_order,
    decline_code_from_processor,
    is_probe_order,
    link,
    minor_units,
    order_captures,
    order_request,
    payment_from_authorization,
    payment_from_capture,
    payment_from_order,
    paypal_money,
)
from gateways.paypal.reporting import transaction_search

MAX_INVOICE_ID_LENGTH = 127


class PayPalGateway:
    """PayPal REST (Orders v2 / Payments v2); see the module docstring for the references."""

    name = "paypal"
    # PayPal has no search by request id: the look-up re-sends the create under the same
    # PayPal-Request-Id (see _fetch_by_key), whose dedup window and consistency PayPal does
    # not document per API; a payment may also stay PENDING there. "No record" is therefore
    # trusted only after the long, conservative grace.
    lookup_is_authoritative = False
    # No file import: PayPal's reports are read through the Transaction Search API.
    settlement_file_format = None

    def __init__(self, *, connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT):
        self.client = PayPalClient(connect_timeout=connect_timeout, read_timeout=read_timeout)

    # --- payments -------------------------------------------------------------------
    def authorize(self, *, payment: ChargeRequest, idempotency_key: str) -> ChargeResult:
        """Create the order and take it to an authorization (manual capture) or a capture
        (automatic). Returns the authorization id or the capture id as `reference`."""
        body = order_request(payment, invoice_id=bounded_id(idempotency_key, MAX_INVOICE_ID_LENGTH))
        reply = self.client.call(
            "POST", "/v2/checkout/orders", json_body=body, request_id=idempotency_key, money=True, operation="authorize"
        )
        if not reply.ok:
            return self._order_error(reply, payment=payment, order=None, operation="authorize")
        order = reply.body or {}
        status = order.get("status")
        if status in ("CREATED", "APPROVED"):
            step = "capture" if payment.capture else "authorize"
            reply = self.client.call(
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
        authorization = self.client.get(
            f"/v2/payments/authorizations/{reference}", missing=f"No such authorization: '{reference}'"
        )
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
        body = {"amount": paypal_money(amount, currency), "final_capture": True}
        reply = self.client.call(
            "POST", f"/v2/payments/authorizations/{reference}/capture", json_body=body,
            request_id=idempotency_key, money=True, operation="capture",
        )
        if not reply.ok:
            return self._capture_refused(reply, authorization, reference)
        captured = reply.body or {}
        if captured.get("status") in ("DECLINED", "FAILED"):
            return OperationResult(
                succeeded=False, reference=captured.get("id") or reference,
                error_code=decline_code_from_processor(captured), message="PayPal declined the capture.",
            )
        return OperationResult(
            succeeded=True, reference=captured.get("id"), amount=minor_units(captured.get("amount")) or amount,
            message="capture pending at PayPal" if captured.get("status") == "PENDING" else "",
        )

    def _capture_refused(self, reply: PayPalReply, authorization: Mapping, reference: str) -> OperationResult:
        issue = error_issue(reply.body)
        if reply.status == 422 and issue == "AUTHORIZATION_ALREADY_CAPTURED":
            return self._existing_capture(authorization, reference)
        if reply.status == 422 and issue in ("AUTHORIZATION_VOIDED", "AUTHORIZATION_EXPIRED", "PREVIOUSLY_VOIDED"):
            return OperationResult(succeeded=False, reference=reference, error_code="charge_not_capturable",
                                   message=error_text(reply.body, issue))
        if reply.status == 422 and issue in ("MAX_CAPTURE_AMOUNT_EXCEEDED", "MAX_AUTHORIZATION_COUNT_EXCEEDED"):
            raise GatewayRequestError(error_text(reply.body, "Capture amount exceeds the authorized amount."),
                                      code="amount_too_large")
        if reply.status == 422 and issue in DECLINE_ISSUES:
            return OperationResult(succeeded=False, reference=reference, error_code=DECLINE_ISSUES[issue],
                                   message=error_text(reply.body, "The capture was declined."))
        self.client.raise_for_reply(reply, money=True, operation="capture")

    def void(self, *, reference: str, idempotency_key: str) -> OperationResult:
        """Void the authorization `reference`. An ORDER id (a REQUIRES_ACTION payment) has
        nothing to void: PayPal lets the unapproved order expire, so that succeeds too."""
        reply = self.client.call(
            "POST", f"/v2/payments/authorizations/{reference}/void", json_body=None,
            request_id=idempotency_key, money=True, operation="void",
        )
        if reply.ok:  # 204 (minimal) or 200 with the VOIDED authorization
            return OperationResult(succeeded=True, reference=reference)
        issue = error_issue(reply.body)
        if reply.status == 422:
            if "VOIDED" in issue:
                return OperationResult(succeeded=True, reference=reference)
            return OperationResult(succeeded=False, reference=reference, error_code="charge_not_voidable",
                                   message=error_text(reply.body, issue))
        if reply.status == 404:
            order = self.client.get_or_none(f"/v2/checkout/orders/{reference}")
            if order is not None:
                if order.get("status") in ("CREATED", "APPROVED", "PAYER_ACTION_REQUIRED", "VOIDED"):
                    return OperationResult(succeeded=True, reference=reference,
                                           message="PayPal order never authorized; it expires unpaid.")
                return OperationResult(succeeded=False, reference=reference, error_code="charge_not_voidable",
                                       message=f"This PayPal order is {order.get('status')} and cannot be voided.")
            raise GatewayRequestError(f"No such authorization: '{reference}'", code="resource_missing")
        self.client.raise_for_reply(reply, money=True, operation="void")

    def refund(self, *, reference: str, amount: int, idempotency_key: str) -> OperationResult:
        """Refund `amount` of the capture `reference` (an authorization id is resolved to its
        capture). Returns the REFUND id as `reference`."""
        capture = self._resolve_capture(reference)
        capture_id = capture.get("id") or reference
        currency = (capture.get("amount") or {}).get("currency_code", "")
        reply = self.client.call(
            "POST", f"/v2/payments/captures/{capture_id}/refund", json_body={"amount": paypal_money(amount, currency)},
            request_id=idempotency_key, money=True, operation="refund",
        )
        if not reply.ok:
            issue = error_issue(reply.body)
            if reply.status == 422 and issue in ("REFUND_AMOUNT_EXCEEDED", "CAPTURE_FULLY_REFUNDED"):
                raise GatewayRequestError(error_text(reply.body, "Refund exceeds the captured amount."), code="amount_too_large")
            if reply.status == 422:
                return OperationResult(succeeded=False, reference=capture_id, error_code=issue.lower() or "refund_refused",
                                       message=error_text(reply.body, "PayPal refused the refund."))
            self.client.raise_for_reply(reply, money=True, operation="refund")
        refund = reply.body or {}
        if refund.get("status") in ("FAILED", "CANCELLED"):
            return OperationResult(succeeded=False, reference=refund.get("id"), error_code="refund_failed",
                                   message=f"PayPal refund {refund.get('status')}")
        return OperationResult(
            succeeded=True, reference=refund.get("id"), amount=minor_units(refund.get("amount")) or amount,
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

    def describe_payment_method(self, *, token: str) -> PaymentMethodDetails | None:
        """PayPal says nothing about the card behind an order's payment source before the
        payment: screening goes without card signals here."""
        return None

    def settlement_records(self, *, start: dt.datetime, end: dt.datetime) -> Iterator[SettlementRecord]:
        """Every row of the transaction search in [start, end) (gateways.paypal.reporting)."""
        return transaction_search(self.client, start=start, end=end)

    # --- credentials, health, webhooks ------------------------------------------------
    def verify_credentials(self) -> bool:
        """True when PayPal issues an access token for the configured client id and secret."""
        creds = self.client.credentials(require=False)
        if not creds.is_configured:
            return False
        try:
            self.client.fetch_token(creds)
        except GatewayUnavailableError as exc:
            if exc.code == "gateway_authentication_failed":
                return False
            raise
        return True

    def health_check(self) -> HealthStatus:
        """A timed OAuth token call (fresh, not the cached token)."""
        creds = self.client.credentials(require=False)
        if not creds.is_configured:
            return HealthStatus(healthy=False, detail="PayPal credentials are not configured")
        started = time.perf_counter()
        try:
            self.client.fetch_token(creds, read_timeout=min(self.client.read_timeout, HEALTH_READ_TIMEOUT))
        except GatewayUnavailableError as exc:
            return HealthStatus(healthy=False, latency_ms=(time.perf_counter() - started) * 1000, detail=str(exc)[:200])
        return HealthStatus(healthy=True, latency_ms=(time.perf_counter() - started) * 1000)

    def parse_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Verify the event through PayPal's verify-webhook-signature call, then normalise it.
        Anything but verification_status SUCCESS raises WebhookVerificationError."""
        found = webhook_headers(headers)
        missing = [name for name, value in found.items() if not value]
        if missing:
            raise WebhookVerificationError(f"PayPal webhook headers missing: {', '.join(missing)}")
        event = webhook_document(payload)
        creds = self.client.credentials(require=False)
        if not (creds.is_configured and creds.webhook_id):
            raise WebhookVerificationError("PayPal webhook id or credentials are not configured")
        try:
            reply = self.client.call(
                "POST", "/v1/notifications/verify-webhook-signature",
                raw_body=verification_request(found, webhook_id=creds.webhook_id, payload=payload),
                money=False, operation="verify_webhook", creds=creds,
            )
        except (GatewayUnavailableError, GatewayRequestError, GatewayTimeout) as exc:
            raise WebhookVerificationError(f"PayPal could not verify the webhook: {exc}") from None
        if not reply.ok:
            raise WebhookVerificationError(f"PayPal verify-webhook-signature answered HTTP {reply.status}")
        if (reply.body or {}).get("verification_status") != "SUCCESS":
            raise WebhookVerificationError("PayPal webhook signature verification failed")
        return webhook_event(event, api_base=creds.api_base)

    # --- results ---------------------------------------------------------------------
    def _charge_result(self, order: Mapping, payment: ChargeRequest) -> ChargeResult:
        status = order.get("status")
        if status == "PAYER_ACTION_REQUIRED" or (status == "CREATED" and link(order, "payer-action")):
            return self._requires_action(order, payment)
        return charge_result_from_order(order, payment)

    def _requires_action(self, order: Mapping | None, payment: ChargeRequest, error_body: Mapping | None = None) -> ChargeResult:
        url = link(order, "payer-action", "approve") or link(error_body, "payer-action", "redirect", "approve")
        order_id = (order or {}).get("id")
        if not url and order_id:
            fresh = self.client.get_or_none(f"/v2/checkout/orders/{order_id}")
            url = link(fresh, "payer-action", "approve")
        return ChargeResult(
            outcome=Outcome.REQUIRES_ACTION, reference=order_id, amount=payment.amount,
            next_action={"type": "redirect_to_url", "url": url} if url else None,
            message=f"PayPal order {order_id} needs the payer's approval",
        )

    def _order_error(self, reply: PayPalReply, *, payment: ChargeRequest, order: Mapping | None, operation: str) -> ChargeResult:
        issue = error_issue(reply.body)
        reference = (order or {}).get("id")
        if reply.status == 422 and issue in DECLINE_ISSUES:
            return ChargeResult(
                outcome=Outcome.DECLINED, reference=reference, amount=payment.amount,
                decline_code=DECLINE_ISSUES[issue], message=error_text(reply.body, "The payment was declined."),
            )
        if reply.status == 422 and issue in ACTION_ISSUES:
            return self._requires_action(order, payment, error_body=reply.body)
        self.client.raise_for_reply(reply, money=True, operation=operation)

    def _existing_capture(self, authorization: Mapping, reference: str) -> OperationResult:
        captures = self._captures_of(authorization)
        done = [c for c in captures if c.get("status") in COMPLETED_CAPTURE | {"PENDING"}]
        if not done:
            return OperationResult(succeeded=False, reference=reference, error_code="charge_not_capturable",
                                   message="PayPal says the authorization is captured but lists no capture.")
        return OperationResult(succeeded=True, reference=done[0].get("id"),
                               amount=sum(minor_units(c.get("amount")) for c in done))

    def _captures_of(self, authorization: Mapping) -> list[Mapping]:
        order_id = ((authorization.get("supplementary_data") or {}).get("related_ids") or {}).get("order_id")
        if not order_id:
            return []
        return order_captures(self.client.get_or_none(f"/v2/checkout/orders/{order_id}"))

    def _resolve_capture(self, reference: str) -> Mapping:
        capture = self.client.get_or_none(f"/v2/payments/captures/{reference}")
        if capture is not None:
            return capture
        authorization = self.client.get_or_none(f"/v2/payments/authorizations/{reference}")
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
        capture = self.client.get_or_none(f"/v2/payments/captures/{reference}")
        if capture is not None:
            return payment_from_capture(capture, reference)
        authorization = self.client.get_or_none(f"/v2/payments/authorizations/{reference}")
        if authorization is not None:
            captured = authorization.get("status") in ("CAPTURED", "PARTIALLY_CAPTURED")
            captures = self._captures_of(authorization) if captured else []
            return payment_from_authorization(authorization, reference, captures=captures)
        order = self.client.get_or_none(f"/v2/checkout/orders/{reference}")
        return payment_from_order(order) if order is not None else None

    def _fetch_by_key(self, idempotency_key: str) -> GatewayPayment | None:
        """PayPal has no search by PayPal-Request-Id, but its idempotency is the lookup: a
        POST that repeats a PayPal-Request-Id is not executed again, PayPal "returns the
        latest status of the previous request that used that same header". So the create-order
        call is re-sent under the same request id and the answer read.

        Why this is safe: we do not have the original body, so the re-sent body is an inert
        order (PROBE_ORDER: intent CAPTURE, USD 1.00, no payment_source, custom_id = PROBE_MARKER).
        - PayPal saw the original: it answers with the original order, whatever our body says;
          its current state is then read with a plain GET.
        - PayPal never saw it: the inert order is created, and without a payment source and
          without the payer's approval nothing can ever be charged; it expires. We recognise
          it by the marker and answer None (no payment under that key).
        Limits: PayPal keeps request ids for a limited time (hours to days, per API and
        account), so ask within that window; a request still in flight may make PayPal
        refuse the repeat (then GatewayUnavailableError: ask again later)."""
        reply = self.client.call("POST", "/v2/checkout/orders", json_body=PROBE_ORDER, request_id=idempotency_key,
                                 money=False, operation="fetch")
        if reply.status == 409:
            raise GatewayUnavailableError("PayPal is still processing this request id; ask again later")
        if reply.status == 422 and error_issue(reply.body) in DECLINE_ISSUES:
            return None  # the original create was declined: no payment exists under this key
        if not reply.ok:
            self.client.raise_for_reply(reply, money=False, operation="fetch")
        order = reply.body or {}
        if is_probe_order(order):
            return None
        current = self.client.get_or_none(f"/v2/checkout/orders/{order.get('id')}") or order
        return payment_from_order(current)
