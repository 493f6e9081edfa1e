"""The Stripe SDK client and what Stripe's errors say about the money, as gateway errors.

Every call builds its own `stripe.StripeClient` from `gateway_credentials("stripe")`, read at
that moment, so a key rotation (`credentials_reload`) takes effect on the next call; the only
thing kept between calls is the HTTP connection pool (per process), which holds no secret.
No global `stripe.*` setting is read for requests or changed. `api_base` is configurable, so
tests and the demo run the adapter over real HTTP against localstripe.

What an error says about the money decides the exception (`stripe_error`):
- connection errors, timeouts and Stripe 5xx on a call that changes money (authorize,
  capture, void, refund) → `GatewayTimeout`: the request may have been applied, ask Stripe
  again (by idempotency key or reference) and never send it elsewhere;
- rate limiting, authentication and permission errors → `GatewayUnavailableError`: Stripe
  refused before doing anything; the same errors on a read (fetch, settlements) as well;
- an invalid request → `GatewayRequestError` with Stripe's code (`resource_missing`, ...).
Card declines and state conflicts are results, not errors: the adapter reads them first.
"""

from __future__ import annotations

import logging
import os
import threading

import requests
import stripe
import urllib3
from django.conf import settings

from gateways.base import GatewayError, GatewayRequestError, GatewayTimeout, GatewayUnavailableError
from gateways.credentials import GatewayCredentials, gateway_credentials, mask_secret

# The Stripe gateway logs under one name, whichever of its modules writes (alerts and log
# searches filter on it).
logger = logging.getLogger("gateways.stripe.adapter")

GATEWAY = "stripe"

_http_lock = threading.Lock()
_http_clients: dict[tuple, stripe.HTTPClient] = {}


def _timeouts(*, probe: bool) -> tuple[float, float]:
    """(connect, read) seconds. Probes (health, credential checks) are kept short."""
    if probe:
        return (2.0, settings.FLOWPAY_GATEWAY_PROBE_TIMEOUT_SECONDS)
    return (
        settings.FLOWPAY_GATEWAY_CONNECT_TIMEOUT_SECONDS,
        settings.FLOWPAY_GATEWAY_READ_TIMEOUT_SECONDS,
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


def stripe_client(*, probe: bool = False) -> tuple[stripe.StripeClient, GatewayCredentials]:
    """A client with the credentials in force, and those credentials (for masking in errors).
    No key configured is GatewayUnavailableError."""
    creds = gateway_credentials(GATEWAY)
    if not creds.api_key:
        raise GatewayUnavailableError("The Stripe gateway has no API key configured.", code="gateway_not_configured")
    client = stripe.StripeClient(
        creds.api_key,
        base_addresses={"api": creds.api_base},
        max_network_retries=0,  # retries are the router's decision, never the SDK's
        http_client=_http_client(probe=probe),
    )
    return client, creds


def _never_reached_stripe(exc: stripe.APIConnectionError) -> bool:
    """True when the SDK's network error happened before any byte of the request left."""
    cause = exc.__cause__
    if isinstance(cause, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(cause, requests.exceptions.ConnectionError) and cause.args:
        reason = getattr(cause.args[0], "reason", cause.args[0])
        return isinstance(reason, urllib3.exceptions.NewConnectionError)  # refused, DNS failure
    return False


def error_message(exc: stripe.StripeError, creds: GatewayCredentials) -> str:
    """Stripe's message for people, never echoing the key."""
    text = (exc.user_message or type(exc).__name__).strip()
    if creds.api_key and creds.api_key in text:  # belt and braces: never echo a key
        text = text.replace(creds.api_key, mask_secret(creds.api_key))
    return text[:500]


def is_missing(exc: stripe.InvalidRequestError) -> bool:
    return exc.http_status == 404 or exc.code == "resource_missing"


def stripe_error(
    exc: stripe.StripeError, *, operation: str, creds: GatewayCredentials, money_moving: bool,
    idempotency_key: str | None = None,
) -> GatewayError:
    """The gateway error for a Stripe error the caller did not read as a result."""
    message = error_message(exc, creds)
    if isinstance(exc, stripe.APIConnectionError) and _never_reached_stripe(exc):
        # The connection was never made (refused, DNS, connect timeout): nothing was
        # sent, so nothing happened at Stripe and the call is safe to retry or fail over.
        return GatewayUnavailableError(f"Stripe is unreachable: {message}")
    if isinstance(exc, (stripe.APIConnectionError, stripe.APIError)):
        if money_moving:
            # The request may have been applied: the outcome is unknown.
            logger.warning(
                "stripe gateway timeout on %s: outcome unknown", operation,
                extra={"gateway": GATEWAY, "operation": operation, "idempotency_key": idempotency_key,
                       "error": type(exc).__name__, "status": exc.http_status},
            )
            return GatewayTimeout(f"Stripe did not answer the {operation} (outcome unknown): {message}")
        return GatewayUnavailableError(f"Stripe is unreachable: {message}")
    if isinstance(exc, stripe.RateLimitError):
        return GatewayUnavailableError(f"Stripe rate-limited the {operation}: {message}", code="gateway_rate_limited")
    if isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
        logger.error(
            "stripe refused the API key",
            extra={"gateway": GATEWAY, "operation": operation, "key": mask_secret(creds.api_key),
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
            extra={"gateway": GATEWAY, "operation": operation, "idempotency_key": idempotency_key},
        )
        return GatewayTimeout(f"Stripe failed the {operation} unexpectedly (outcome unknown): {message}")
    return GatewayUnavailableError(f"Stripe failed the {operation}: {message}")
