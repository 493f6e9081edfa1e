"""The Stripe gateway, on the official `stripe` SDK (PaymentIntents, Refunds,
BalanceTransactions, signed webhooks). The SDK client and the error mapping are
gateways.stripe.client's, the object mapping gateways.stripe.mapping's, the webhook
verification gateways.stripe.events'.

A card decline is a `ChargeResult(DECLINED)`, final, never failed over; a state conflict
on capture/void/refund is `OperationResult(succeeded=False)`; every other failure is a
gateway error by what it says about the money (see gateways.stripe.client).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Iterator, Mapping

import stripe

from gateways.base import (
    ChargeRequest,
    ChargeResult,
    GatewayPayment,
    GatewayUnavailableError,
    HealthStatus,
    OperationResult,
    PaymentMethodDetails,
    PayoutResult,
    SettlementRecord,
    WebhookEvent,
)
from gateways.credentials import GatewayCredentials, gateway_credentials, mask_secret
from gateways.stripe.client import error_message, is_missing, stripe_client, stripe_error
from gateways.stripe.events import verified_event, webhook_event
from gateways.stripe.mapping import (
    EXPAND_FEE,
    METADATA_IDEMPOTENCY_KEY,
    charge_fee,
    charge_result,
    decline_code,
    declined_from_error,
    declined_from_intent_in_error,
    gateway_payment,
    payment_intent_params,
    payment_method_details,
    plain,
    refund_result,
)
from gateways.stripe.payouts import create_payout, find_payout
from gateways.stripe.settlements import ITEMIZED_REPORT, balance_transactions

logger = logging.getLogger(__name__)

# How many recent PaymentIntents the listing fallback of fetch(idempotency_key=...) reads.
IDEMPOTENCY_SCAN_LIMIT = 1000
# Refusals that mean "not in a state for this", not "malformed request".
STATE_CONFLICT_CODES = frozenset(
    {
        "payment_intent_unexpected_state",
        "charge_already_captured",
        "charge_already_refunded",
        "charge_expired_for_capture",
        "charge_disputed",
    }
)
CANCELABLE_STATUSES = frozenset(
    {"requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing"}
)


class StripeGateway:
    name = "stripe"
    # The search by metadata lags writes by up to a minute (inside the no-record grace), and
    # a miss falls back to the strongly consistent list of the newest PaymentIntents.
    lookup_is_authoritative = True
    settlement_file_format = ITEMIZED_REPORT

    def supports_payment_method(self, token: str) -> bool:
        """Stripe payment methods, legacy tokens, cards and sources."""
        return token.startswith(("pm_", "tok_", "card_", "src_"))

    # --- payments ----------------------------------------------------------------------
    def authorize(self, *, payment: ChargeRequest, idempotency_key: str) -> ChargeResult:
        client, creds = self._client()
        params = payment_intent_params(payment, idempotency_key=idempotency_key)
        try:
            intent = client.v1.payment_intents.create(params={**params, "expand": EXPAND_FEE},
                                                      options={"idempotency_key": idempotency_key})
        except stripe.CardError as exc:
            return declined_from_error(exc, amount=payment.amount)
        except stripe.StripeError as exc:
            declined = declined_from_intent_in_error(exc, amount=payment.amount)
            if declined is not None:
                return declined
            raise stripe_error(exc, operation="authorize", creds=creds, money_moving=True,
                               idempotency_key=idempotency_key) from exc
        return charge_result(plain(intent), amount=payment.amount)

    def capture(self, *, reference: str, amount: int, idempotency_key: str) -> OperationResult:
        client, creds = self._client()
        try:
            intent = plain(client.v1.payment_intents.capture(
                reference, params={"amount_to_capture": amount, "expand": EXPAND_FEE},
                options={"idempotency_key": idempotency_key},
            ))
        except stripe.CardError as exc:
            return OperationResult(succeeded=False, reference=reference, error_code=decline_code(exc),
                                   message=error_message(exc, creds))
        except stripe.InvalidRequestError as exc:
            return self._refused(client, creds, exc, reference=reference, operation="capture",
                                 done_status="succeeded", possible_from={"requires_capture"}, amount=amount)
        except stripe.StripeError as exc:
            raise stripe_error(exc, operation="capture", creds=creds, money_moving=True,
                               idempotency_key=idempotency_key) from exc
        if intent.get("status") != "succeeded":
            return OperationResult(
                succeeded=False, reference=reference, error_code="payment_intent_unexpected_state",
                message=f"The PaymentIntent is {intent.get('status')} after the capture.",
            )
        return OperationResult(succeeded=True, reference=intent.get("id", reference),
                               amount=intent.get("amount_received", amount), fee=charge_fee(intent))

    def void(self, *, reference: str, idempotency_key: str) -> OperationResult:
        client, creds = self._client()
        try:
            intent = plain(client.v1.payment_intents.cancel(reference, options={"idempotency_key": idempotency_key}))
        except stripe.InvalidRequestError as exc:
            return self._refused(client, creds, exc, reference=reference, operation="void",
                                 done_status="canceled", possible_from=CANCELABLE_STATUSES)
        except stripe.StripeError as exc:
            raise stripe_error(exc, operation="void", creds=creds, money_moving=True,
                               idempotency_key=idempotency_key) from exc
        return OperationResult(succeeded=intent.get("status") == "canceled", reference=intent.get("id", reference),
                               error_code=None if intent.get("status") == "canceled" else "payment_intent_unexpected_state")

    def refund(self, *, reference: str, amount: int, idempotency_key: str) -> OperationResult:
        client, creds = self._client()
        try:
            refund = plain(client.v1.refunds.create(
                params={"payment_intent": reference, "amount": amount,
                        "metadata": {METADATA_IDEMPOTENCY_KEY: idempotency_key}},
                options={"idempotency_key": idempotency_key},
            ))
        except stripe.InvalidRequestError as exc:
            if exc.code in STATE_CONFLICT_CODES:
                return OperationResult(succeeded=False, reference=reference, error_code=exc.code,
                                       message=error_message(exc, creds))
            raise stripe_error(exc, operation="refund", creds=creds, money_moving=True) from exc
        except stripe.StripeError as exc:
            raise stripe_error(exc, operation="refund", creds=creds, money_moving=True,
                               idempotency_key=idempotency_key) from exc
        return refund_result(refund, amount=amount)

    # --- payouts (gateways.base.PayoutGateway; gateways.stripe.payouts) ------------------
    def payout(self, *, amount: int, currency: str, flowpay_reference: str, description: str,
               idempotency_key: str) -> PayoutResult:
        client, creds = self._client()
        return create_payout(client, creds, amount=amount, currency=currency, flowpay_reference=flowpay_reference,
                             description=description, idempotency_key=idempotency_key)

    def fetch_payout(self, *, reference: str | None = None, idempotency_key: str | None = None) -> PayoutResult | None:
        client, creds = self._client()
        return find_payout(client, creds, reference=reference, idempotency_key=idempotency_key)

    def find_refund(self, *, reference: str, idempotency_key: str) -> OperationResult | None:
        """The refund of PaymentIntent `reference` created under FlowPay's idempotency key
        (refund metadata `flowpay_idempotency_key`), read without creating one: None when
        Stripe has none. Lists the PaymentIntent's refunds (not search, which lags)."""
        client, creds = self._client()
        try:
            listed = client.v1.refunds.list(params={"payment_intent": reference, "limit": 100})
            for item in listed.auto_paging_iter():
                refund = plain(item)
                if (refund.get("metadata") or {}).get(METADATA_IDEMPOTENCY_KEY) == idempotency_key:
                    return refund_result(refund, amount=refund.get("amount", 0))
        except stripe.StripeError as exc:
            raise stripe_error(exc, operation="find_refund", creds=creds, money_moving=False) from exc
        return None

    def fetch(self, *, reference: str | None = None, idempotency_key: str | None = None) -> GatewayPayment | None:
        if not reference and not idempotency_key:
            return None
        client, creds = self._client()
        try:
            if reference:
                try:
                    intent = plain(client.v1.payment_intents.retrieve(reference))
                except stripe.InvalidRequestError as exc:
                    if is_missing(exc):
                        return None
                    raise
            else:
                intent = self._find_by_idempotency_key(client, idempotency_key)
                if intent is None:
                    return None
        except stripe.StripeError as exc:
            raise stripe_error(exc, operation="fetch", creds=creds, money_moving=False) from exc
        return gateway_payment(intent)

    def describe_payment_method(self, *, token: str) -> PaymentMethodDetails | None:
        """The card behind a PaymentMethod (pm_…) or a legacy token (tok_…), retrieved from
        Stripe: its fingerprint, brand, funding and issuer country. Other tokens: None."""
        if not token.startswith(("pm_", "tok_")):
            return None
        client, creds = self._client()
        try:
            if token.startswith("pm_"):
                found = client.v1.payment_methods.retrieve(token)
            else:
                found = client.v1.tokens.retrieve(token)
        except stripe.InvalidRequestError as exc:
            if is_missing(exc):
                return None
            raise stripe_error(exc, operation="describe_payment_method", creds=creds, money_moving=False) from exc
        except stripe.StripeError as exc:
            raise stripe_error(exc, operation="describe_payment_method", creds=creds, money_moving=False) from exc
        return payment_method_details(plain(found))

    def settlement_records(self, *, start: dt.datetime, end: dt.datetime) -> Iterator[SettlementRecord]:
        """Balance transactions created in [start, end) (gateways.stripe.settlements)."""
        return balance_transactions(start=start, end=end)

    # --- credentials, health, webhooks -------------------------------------------------
    def verify_credentials(self) -> bool:
        try:
            client, creds = self._client(probe=True)
        except GatewayUnavailableError:
            return False
        try:
            client.v1.balance.retrieve()
        except stripe.StripeError as exc:
            logger.warning(
                "stripe credentials check failed",
                extra={"gateway": self.name, "key": mask_secret(creds.api_key), "error": type(exc).__name__,
                       "status": exc.http_status},
            )
            return False
        return True

    def health_check(self) -> HealthStatus:
        started = time.perf_counter()
        try:
            client, creds = self._client(probe=True)
        except GatewayUnavailableError as exc:
            return HealthStatus(healthy=False, detail=str(exc))
        try:
            client.v1.balance.retrieve()
        except stripe.StripeError as exc:
            latency = (time.perf_counter() - started) * 1000
            if isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
                detail = f"Stripe refused the API key {mask_secret(creds.api_key)}"
            elif isinstance(exc, stripe.APIConnectionError):
                detail = "Stripe is unreachable (connection error or timeout)"
            else:
                detail = f"Stripe answered {type(exc).__name__} (HTTP {exc.http_status})"
            return HealthStatus(healthy=False, latency_ms=latency, detail=detail)
        return HealthStatus(healthy=True, latency_ms=(time.perf_counter() - started) * 1000)

    def parse_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        creds = gateway_credentials(self.name)
        # Several comma-separated secrets while an endpoint secret is being rotated.
        secrets = [s.strip() for s in (creds.webhook_secret or "").split(",") if s.strip()]
        return webhook_event(verified_event(payload, headers, secrets=secrets))

    # --- internals ---------------------------------------------------------------------
    @staticmethod
    def _client(*, probe: bool = False) -> tuple[stripe.StripeClient, GatewayCredentials]:
        """An SDK client with the credentials in force, and those credentials."""
        return stripe_client(probe=probe)

    def _find_by_idempotency_key(self, client: stripe.StripeClient, key: str) -> dict | None:
        """The PaymentIntent created under FlowPay's idempotency key. Stripe's search is tried
        first; it lags writes by up to a minute (and is missing in some regions and in
        localstripe), so a miss or a refusal falls back to the newest PaymentIntents."""
        quoted = key.replace("\\", "\\\\").replace("'", "\\'")
        try:
            found = client.v1.payment_intents.search(
                params={"query": f"metadata['{METADATA_IDEMPOTENCY_KEY}']:'{quoted}'", "limit": 10}
            )
            match = self._first_with_key(found, key)
            if match is not None:
                return match
        except stripe.InvalidRequestError as exc:
            logger.info(
                "stripe payment intent search unavailable, listing recent payment intents",
                extra={"gateway": self.name, "status": exc.http_status},
            )
        recent = client.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()
        return self._first_with_key(recent, key, limit=IDEMPOTENCY_SCAN_LIMIT)

    @staticmethod
    def _first_with_key(intents: Iterable, key: str, limit: int | None = None) -> dict | None:
        for scanned, item in enumerate(intents, start=1):
            intent = plain(item)
            if (intent.get("metadata") or {}).get(METADATA_IDEMPOTENCY_KEY) == key:
                return intent
            if limit is not None and scanned >= limit:
                break
        return None

    def _refused(
        self, client: stripe.StripeClient, creds: GatewayCredentials, exc: stripe.InvalidRequestError, *,
        reference: str, operation: str, done_status: str, possible_from: set | frozenset, amount: int = 0,
    ) -> OperationResult:
        """Stripe refused a capture or void. Capture and void are idempotent by state, as in
        the simulator: when the PaymentIntent is already where we wanted it, that is success.
        Otherwise a state conflict is a failed OperationResult and anything else a request error."""
        if is_missing(exc):
            raise stripe_error(exc, operation=operation, creds=creds, money_moving=True) from exc
        try:
            current = plain(client.v1.payment_intents.retrieve(reference))
        except stripe.StripeError:
            current = {}
        status = current.get("status")
        if status == done_status:
            captured = current.get("amount_received", amount) if done_status == "succeeded" else 0
            return OperationResult(succeeded=True, reference=reference, amount=captured)
        # Stripe names the conflict; localstripe answers a bare 400, so the state decides.
        if exc.code in STATE_CONFLICT_CODES or (not exc.code and status and status not in possible_from):
            return OperationResult(
                succeeded=False, reference=reference, error_code=exc.code or "payment_intent_unexpected_state",
                message=f"The PaymentIntent is {status or 'in another state'} and cannot be {operation}d: "
                f"{error_message(exc, creds)}",
            )
        raise stripe_error(exc, operation=operation, creds=creds, money_moving=True) from exc
