"""The Stripe gateway, on the official `stripe` SDK (PaymentIntents, Refunds,
BalanceTransactions, signed webhooks).

Every call builds its own `stripe.StripeClient` from `gateway_credentials("stripe")`, read at
that moment, so a key rotation (`credentials_reload`) takes effect on the next call; the only
thing kept between calls is the HTTP connection pool (per process), which holds no secret.
No global `stripe.*` setting is read for requests or changed. `api_base` is configurable, so
tests and the demo run this adapter over real HTTP against localstripe.

What an error says about the money decides the exception:
- connection errors, timeouts and Stripe 5xx on a call that changes money (authorize,
  capture, void, refund) → `GatewayTimeout`: the request may have been applied, ask Stripe
  again (by idempotency key or reference) and never send it elsewhere;
- rate limiting, authentication and permission errors → `GatewayUnavailableError`: Stripe
  refused before doing anything; the same errors on a read (fetch, settlements) as well;
- a card decline is a `ChargeResult(DECLINED)`, final, never failed over;
- an invalid request → `GatewayRequestError` with Stripe's code (`resource_missing`, ...),
  except a state conflict on capture/void/refund, which is `OperationResult(succeeded=False)`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping

import requests
import stripe
import urllib3
from django.conf import settings

from gateways.base import (
    ChargeRequest,
    ChargeResult,
    GatewayError,
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

WEBHOOK_TOLERANCE_SECONDS = 300
# Metadata written on every PaymentIntent (and refund), so a payment whose answer was lost
# can be found again by the key FlowPay sent.
METADATA_TRANSACTION = "flowpay_transaction"
METADATA_IDEMPOTENCY_KEY = "flowpay_idempotency_key"
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
_CANCELABLE = frozenset({"requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing"})
_STATUS_FOR_FLOWPAY = {
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
_SETTLEMENT_TYPES = {"charge": "charge", "payment": "charge", "refund": "refund", "payment_refund": "refund"}

_http_lock = threading.Lock()
_http_clients: dict[tuple, stripe.HTTPClient] = {}


def _timeouts(*, probe: bool) -> tuple[float, float]:
    """(connect, read) seconds. Probes (health, credential checks) are kept short."""
    if probe:
        return (2.0, float(getattr(settings, "FLOWPAY_GATEWAY_PROBE_TIMEOUT_SECONDS", 5)))
    return (
        float(getattr(settings, "FLOWPAY_GATEWAY_CONNECT_TIMEOUT_SECONDS", 5)),
        float(getattr(settings, "FLOWPAY_GATEWAY_READ_TIMEOUT_SECONDS", 30)),
    )


def _http_client(*, probe: bool) -> stripe.HTTPClient:
    """One connection pool per process and timeout (the SDK keeps one requests session per
    thread inside it). Keyed by pid so a forked worker never reuses its parent's sockets."""
    timeout = _timeouts(probe=probe)
    key = (os.getpid(), timeout)
    client = _http_clients.get(key)
    if client is None:
        with _http_lock:
            client = _http_clients.get(key)
            if client is None:
                client = _http_clients[key] = stripe.RequestsClient(timeout=timeout)
    return client


def _utc(timestamp: int | float) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(timestamp), tz=dt.UTC)


def _plain(obj) -> dict:
    """An SDK object as a plain dict (nested objects included)."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    return obj.to_dict(recursive=True, for_json=True)


def _metadata_value(value) -> str:
    return value if isinstance(value, str) else str(value)


def _never_reached_stripe(exc: stripe.APIConnectionError) -> bool:
    """True when the SDK's network error happened before any byte of the request left."""
    cause = exc.__cause__
    if isinstance(cause, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(cause, requests.exceptions.ConnectionError) and cause.args:
        reason = getattr(cause.args[0], "reason", cause.args[0])
        return isinstance(reason, urllib3.exceptions.NewConnectionError)  # refused, DNS failure
    return False


class StripeGateway:
    name = "stripe"

    def supports_payment_method(self, token: str) -> bool:
        """Stripe payment methods, legacy tokens, cards and sources."""
        return token.startswith(("pm_", "tok_", "card_", "src_"))

    # --- payments ----------------------------------------------------------------------
    def authorize(self, *, payment: ChargeRequest, idempotency_key: str) -> ChargeResult:
        client, creds = self._client()
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
        if payment.description:
            # As metadata rather than Stripe's `description`: localstripe (our test and demo
            # peer) rejects that parameter, and metadata shows in Stripe's dashboard too.
            metadata.setdefault("flowpay_description", payment.description[:500])
        try:
            intent = client.v1.payment_intents.create(params=params, options={"idempotency_key": idempotency_key})
        except stripe.CardError as exc:
            return self._declined_from_error(exc, amount=payment.amount)
        except stripe.StripeError as exc:
            declined = self._declined_from_intent_in_error(exc, amount=payment.amount)
            if declined is not None:
                return declined
            raise self._error(exc, operation="authorize", creds=creds, money_moving=True,
                              idempotency_key=idempotency_key) from exc
        return self._charge_result(_plain(intent), amount=payment.amount)

    def capture(self, *, reference: str, amount: int, idempotency_key: str) -> OperationResult:
        client, creds = self._client()
        try:
            intent = _plain(client.v1.payment_intents.capture(
                reference, params={"amount_to_capture": amount}, options={"idempotency_key": idempotency_key}
            ))
        except stripe.CardError as exc:
            return OperationResult(succeeded=False, reference=reference, error_code=self._decline_code(exc),
                                   message=self._message(exc, creds))
        except stripe.InvalidRequestError as exc:
            return self._refused(client, creds, exc, reference=reference, operation="capture",
                                 done_status="succeeded", possible_from={"requires_capture"}, amount=amount)
        except stripe.StripeError as exc:
            raise self._error(exc, operation="capture", creds=creds, money_moving=True,
                              idempotency_key=idempotency_key) from exc
        if intent.get("status") != "succeeded":
            return OperationResult(
                succeeded=False, reference=reference, error_code="payment_intent_unexpected_state",
                message=f"The PaymentIntent is {intent.get('status')} after the capture.",
            )
        return OperationResult(succeeded=True, reference=intent.get("id", reference),
                               amount=intent.get("amount_received", amount))

    def void(self, *, reference: str, idempotency_key: str) -> OperationResult:
        client, creds = self._client()
        try:
            intent = _plain(client.v1.payment_intents.cancel(reference, options={"idempotency_key": idempotency_key}))
        except stripe.InvalidRequestError as exc:
            return self._refused(client, creds, exc, reference=reference, operation="void",
                                 done_status="canceled", possible_from=_CANCELABLE)
        except stripe.StripeError as exc:
            raise self._error(exc, operation="void", creds=creds, money_moving=True,
                              idempotency_key=idempotency_key) from exc
        return OperationResult(succeeded=intent.get("status") == "canceled", reference=intent.get("id", reference),
                               error_code=None if intent.get("status") == "canceled" else "payment_intent_unexpected_state")

    def refund(self, *, reference: str, amount: int, idempotency_key: str) -> OperationResult:
        client, creds = self._client()
        try:
            refund = _plain(client.v1.refunds.create(
                params={"payment_intent": reference, "amount": amount,
                        "metadata": {METADATA_IDEMPOTENCY_KEY: idempotency_key}},
                options={"idempotency_key": idempotency_key},
            ))
        except stripe.InvalidRequestError as exc:
            if exc.code in STATE_CONFLICT_CODES:
                return OperationResult(succeeded=False, reference=reference, error_code=exc.code,
                                       message=self._message(exc, creds))
            raise self._error(exc, operation="refund", creds=creds, money_moving=True) from exc
        except stripe.StripeError as exc:
            raise self._error(exc, operation="refund", creds=creds, money_moving=True,
                              idempotency_key=idempotency_key) from exc
        return self._refund_result(refund, amount=amount)

    def find_refund(self, *, reference: str, idempotency_key: str) -> OperationResult | None:
        """The refund of PaymentIntent `reference` created under FlowPay's idempotency key
        (refund metadata `flowpay_idempotency_key`), read without creating one: None when
        Stripe has none. Lists the PaymentIntent's refunds (not search, which lags)."""
        client, creds = self._client()
        try:
            listed = client.v1.refunds.list(params={"payment_intent": reference, "limit": 100})
            for item in listed.auto_paging_iter():
                refund = _plain(item)
                if (refund.get("metadata") or {}).get(METADATA_IDEMPOTENCY_KEY) == idempotency_key:
                    return self._refund_result(refund, amount=refund.get("amount", 0))
        except stripe.StripeError as exc:
            raise self._error(exc, operation="find_refund", creds=creds, money_moving=False) from exc
        return None

    @staticmethod
    def _refund_result(refund: dict, *, amount: int) -> OperationResult:
        status = refund.get("status")
        if status in ("failed", "canceled"):
            return OperationResult(succeeded=False, reference=refund.get("id"), amount=refund.get("amount", amount),
                                   error_code=refund.get("failure_reason") or f"refund_{status}",
                                   message=f"Stripe reports the refund {status}.")
        # succeeded, or pending / requires_action: accepted by Stripe and on its way.
        return OperationResult(succeeded=True, reference=refund.get("id"), amount=refund.get("amount", amount))

    def fetch(self, *, reference: str | None = None, idempotency_key: str | None = None) -> GatewayPayment | None:
        if not reference and not idempotency_key:
            return None
        client, creds = self._client()
        try:
            if reference:
                try:
                    intent = _plain(client.v1.payment_intents.retrieve(reference))
                except stripe.InvalidRequestError as exc:
                    if self._is_missing(exc):
                        return None
                    raise
            else:
                intent = self._find_by_idempotency_key(client, idempotency_key)
                if intent is None:
                    return None
        except stripe.StripeError as exc:
            raise self._error(exc, operation="fetch", creds=creds, money_moving=False) from exc
        return self._gateway_payment(intent)

    def list_settlements(self, *, date: dt.date) -> list[Settlement]:
        """Balance transactions created that UTC day (charges and refunds), newest first."""
        start = dt.datetime.combine(date, dt.time.min, tzinfo=dt.UTC)
        start_ts, end_ts = int(start.timestamp()), int((start + dt.timedelta(days=1)).timestamp())
        client, creds = self._client()
        params = {"limit": 100, "expand": ["data.source"]}
        settlements: list[Settlement] = []
        try:
            try:
                page = client.v1.balance_transactions.list(params={**params, "created": {"gte": start_ts, "lt": end_ts}})
            except stripe.InvalidRequestError as exc:
                # The `created` filter was refused (localstripe does not implement it): read
                # the newest-first list and stop at the first transaction before that day.
                logger.info(
                    "stripe balance transactions: created filter refused, filtering by date locally",
                    extra={"gateway": self.name, "status": exc.http_status},
                )
                page = client.v1.balance_transactions.list(params=params)
            for item in page.auto_paging_iter():
                txn = _plain(item)
                created = int(txn.get("created") or 0)
                if created >= end_ts:
                    continue
                if created < start_ts:
                    break
                settlement = self._settlement(txn)
                if settlement is not None:
                    settlements.append(settlement)
        except stripe.StripeError as exc:
            raise self._error(exc, operation="list_settlements", creds=creds, money_moving=False) from exc
        return settlements

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
        if not secrets:
            raise WebhookVerificationError("No Stripe webhook signing secret is configured.")
        signature = _header(headers, "Stripe-Signature")
        if not signature:
            raise WebhookVerificationError("The Stripe-Signature header is missing.")
        event, failures = None, []
        for secret in secrets:
            try:
                event = stripe.Webhook.construct_event(payload, signature, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS)
                break
            except stripe.SignatureVerificationError as exc:
                failures.append(exc.user_message or "signature mismatch")
            except Exception:  # verified, but not a JSON Stripe event (or undecodable)
                raise WebhookVerificationError("The webhook payload is not a Stripe event.") from None
        if event is None:
            # A stale timestamp is the more useful reason when one secret matched.
            reason = next((f for f in failures if "tolerance" in f), failures[-1] if failures else "")
            raise WebhookVerificationError(f"Stripe webhook signature verification failed: {reason}")
        try:
            body = _plain(event)
            obj = (body.get("data") or {}).get("object") or {}
            if not isinstance(obj, dict):
                obj = {}
            metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
            return WebhookEvent(
                id=str(body["id"]),
                gateway=self.name,
                type=str(body["type"]),
                created=_utc(body["created"]),
                object_type=str(obj.get("object") or ""),
                object_reference=obj.get("id"),
                flowpay_reference=metadata.get(METADATA_TRANSACTION) or None,
                data=obj,
                livemode=bool(body.get("livemode", False)),
            )
        except (KeyError, TypeError, ValueError, OverflowError):
            raise WebhookVerificationError("The webhook payload is not a complete Stripe event.") from None

    # --- internals ---------------------------------------------------------------------
    def _client(self, *, probe: bool = False) -> tuple[stripe.StripeClient, GatewayCredentials]:
        creds = gateway_credentials(self.name)
        if not creds.api_key:
            raise GatewayUnavailableError("The Stripe gateway has no API key configured.", code="gateway_not_configured")
        client = stripe.StripeClient(
            creds.api_key,
            base_addresses={"api": creds.api_base},
            max_network_retries=0,  # retries are the router's decision, never the SDK's
            http_client=_http_client(probe=probe),
        )
        return client, creds

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
            intent = _plain(item)
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
        if self._is_missing(exc):
            raise self._error(exc, operation=operation, creds=creds, money_moving=True) from exc
        try:
            current = _plain(client.v1.payment_intents.retrieve(reference))
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
                f"{self._message(exc, creds)}",
            )
        raise self._error(exc, operation=operation, creds=creds, money_moving=True) from exc

    def _error(
        self, exc: stripe.StripeError, *, operation: str, creds: GatewayCredentials, money_moving: bool,
        idempotency_key: str | None = None,
    ) -> GatewayError:
        message = self._message(exc, creds)
        if isinstance(exc, stripe.APIConnectionError) and _never_reached_stripe(exc):
            # The connection was never made (refused, DNS, connect timeout): nothing was
            # sent, so nothing happened at Stripe and the call is safe to retry or fail over.
            return GatewayUnavailableError(f"Stripe is unreachable: {message}")
        if isinstance(exc, (stripe.APIConnectionError, stripe.APIError)):
            if money_moving:
                # The request may have been applied: the outcome is unknown.
                logger.warning(
                    "stripe gateway timeout on %s: outcome unknown", operation,
                    extra={"gateway": self.name, "operation": operation, "idempotency_key": idempotency_key,
                           "error": type(exc).__name__, "status": exc.http_status},
                )
                return GatewayTimeout(f"Stripe did not answer the {operation} (outcome unknown): {message}")
            return GatewayUnavailableError(f"Stripe is unreachable: {message}")
        if isinstance(exc, stripe.RateLimitError):
            return GatewayUnavailableError(f"Stripe rate-limited the {operation}: {message}", code="gateway_rate_limited")
        if isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
            logger.error(
                "stripe refused the API key",
                extra={"gateway": self.name, "operation": operation, "key": mask_secret(creds.api_key),
                       "status": exc.http_status},
            )
            return GatewayUnavailableError(
                f"Stripe refused the API key {mask_secret(creds.api_key)} for the {operation}.",
                code="gateway_authentication_failed",
            )
        if isinstance(exc, stripe.IdempotencyError):
            return GatewayRequestError(message, code="idempotency_error")
        if isinstance(exc, (stripe.InvalidRequestError, stripe.CardError)):
            code = exc.code or ("resource_missing" if exc.http_status == 404 else None)
            return GatewayRequestError(message, code=code)
        # Anything else the SDK may raise: unknown for a money-moving call.
        if money_moving:
            logger.warning(
                "stripe gateway timeout on %s: unexpected %s, outcome unknown", operation, type(exc).__name__,
                extra={"gateway": self.name, "operation": operation, "idempotency_key": idempotency_key},
            )
            return GatewayTimeout(f"Stripe failed the {operation} unexpectedly (outcome unknown): {message}")
        return GatewayUnavailableError(f"Stripe failed the {operation}: {message}")

    @staticmethod
    def _message(exc: stripe.StripeError, creds: GatewayCredentials) -> str:
        text = (exc.user_message or type(exc).__name__).strip()
        if creds.api_key and creds.api_key in text:  # belt and braces: never echo a key
            text = text.replace(creds.api_key, mask_secret(creds.api_key))
        return text[:500]

    @staticmethod
    def _is_missing(exc: stripe.InvalidRequestError) -> bool:
        return exc.http_status == 404 or exc.code == "resource_missing"

    @staticmethod
    def _decline_code(exc: stripe.StripeError) -> str:
        error = exc.error
        return (getattr(error, "decline_code", None) if error else None) or exc.code or "card_declined"

    def _declined_from_error(self, exc: stripe.CardError, *, amount: int) -> ChargeResult:
        intent = _plain(exc.error.payment_intent) if exc.error and exc.error.payment_intent else {}
        return ChargeResult(
            outcome=Outcome.DECLINED, reference=intent.get("id"), amount=intent.get("amount", amount),
            decline_code=self._decline_code(exc), message=exc.user_message or "Your card was declined.",
            retryable=False,
        )

    def _declined_from_intent_in_error(self, exc: stripe.StripeError, *, amount: int) -> ChargeResult | None:
        """Stripe attaches the PaymentIntent to some errors; one with a last_payment_error
        is a decline, whatever the error class."""
        if not isinstance(exc, stripe.InvalidRequestError) or not exc.error or not exc.error.payment_intent:
            return None
        intent = _plain(exc.error.payment_intent)
        if not intent.get("last_payment_error"):
            return None
        return self._charge_result(intent, amount=amount)

    @staticmethod
    def _amount_received(intent: dict) -> int:
        if "amount_received" in intent:
            return int(intent["amount_received"] or 0)
        # localstripe's PaymentIntents have no amount_received: a succeeded one took its amount.
        return int(intent.get("amount") or 0) if intent.get("status") == "succeeded" else 0

    def _charge_result(self, intent: dict, *, amount: int) -> ChargeResult:
        status = intent.get("status")
        reference = intent.get("id")
        amount = int(intent.get("amount") or amount)
        error = intent.get("last_payment_error") or {}
        if status == "succeeded":
            return ChargeResult(outcome=Outcome.SUCCEEDED, reference=reference, amount=amount,
                                amount_captured=self._amount_received(intent))
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
                       extra={"gateway": self.name, "reference": reference, "status": status})
        return ChargeResult(outcome=Outcome.UNKNOWN, reference=reference, amount=amount,
                            message=f"Stripe reports the payment {status}.")

    def _gateway_payment(self, intent: dict) -> GatewayPayment:
        status = str(intent.get("status") or "")
        return GatewayPayment(
            reference=intent["id"],
            status=_STATUS_FOR_FLOWPAY.get(status, status),
            amount=int(intent.get("amount") or 0),
            amount_captured=self._amount_received(intent),
            currency=str(intent.get("currency") or "").upper(),
            flowpay_reference=(intent.get("metadata") or {}).get(METADATA_TRANSACTION) or None,
        )

    @staticmethod
    def _settlement(txn: dict) -> Settlement | None:
        kind = _SETTLEMENT_TYPES.get(str(txn.get("type")))
        if kind is None:  # payouts, fees, transfers, adjustments: not a payment of ours
            return None
        source = txn.get("source")
        if isinstance(source, dict):
            reference = source.get("id")
            metadata = source.get("metadata") if isinstance(source.get("metadata"), dict) else {}
        else:
            reference, metadata = source, {}
        return Settlement(
            reference=str(reference or txn.get("id")),
            flowpay_reference=metadata.get(METADATA_TRANSACTION) or None,
            amount=abs(int(txn.get("amount") or 0)),
            currency=str(txn.get("currency") or "").upper(),
            type=kind,
            created=_utc(txn.get("created") or 0),
        )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header from Django's case-insensitive headers, a plain dict in any case, or META."""
    value = headers.get(name) if hasattr(headers, "get") else None
    if value:
        return value
    wanted = {name.lower(), "http_" + name.lower().replace("-", "_")}
    for key, candidate in headers.items():
        if str(key).lower() in wanted:
            return candidate
    return None
