"""HTTP to PayPal's REST API over `requests`: the OAuth token cache, bearer-token calls, and
what a failure says about the money, as gateway errors (see gateways.base).

Errors:
- OAuth failures, 401/403 after one token refresh, 429, and any failure of a read or of a
  call made before the money call -> GatewayUnavailableError (nothing happened);
- connection failures after the request may have been sent, read timeouts, 409 (PayPal is
  still processing the same PayPal-Request-Id) and 5xx on authorize/capture/void/refund ->
  GatewayTimeout (outcome unknown), logged as a warning containing "gateway timeout";
  a connection that could not even be opened (refused, DNS, connect timeout) sent nothing,
  so it is GatewayUnavailableError;
- other 400/404/422 -> GatewayRequestError with PayPal's `issue` (or `name`) as code
  (declines and state conflicts are read by the adapter before that).

Credentials are read per call (`gateway_credentials("paypal")`); only the OAuth access token
is cached in-process, keyed by (client_id, api_base), so a credentials reload takes effect
at once. Secrets never reach logs or exception messages (`mask_secret` when one must be named).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NameResolutionError, NewConnectionError

from gateways.base import GatewayRequestError, GatewayTimeout, GatewayUnavailableError
from gateways.credentials import GatewayCredentials, gateway_credentials, mask_secret

# The PayPal gateway logs under one name, whichever of its modules writes (alerts and log
# searches filter on it).
logger = logging.getLogger("gateways.paypal.adapter")

CONNECT_TIMEOUT = 5.0  # seconds to open a connection
READ_TIMEOUT = 30.0  # seconds to wait for PayPal's answer (payments can be slow)
HEALTH_READ_TIMEOUT = 5.0
TOKEN_REFRESH_MARGIN = 120.0  # refresh the access token this long before PayPal expires it
MAX_REQUEST_ID_LENGTH = 108  # PayPal-Request-Id limit on the Orders API

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


def _drop_token(creds: GatewayCredentials, token: str) -> None:
    key = (creds.client_id, creds.api_base)
    with _token_lock:
        cached = _tokens.get(key)
        if cached is not None and cached.value == token:
            del _tokens[key]


def bounded_id(key: str, limit: int) -> str:
    """An id within PayPal's length limit, still deterministic (idempotency must survive)."""
    if len(key) <= limit:
        return key
    return "fp-" + hashlib.sha256(key.encode()).hexdigest()


def error_issue(body: Mapping | None) -> str:
    """PayPal's fine-grained error code: details[0].issue, else the error name."""
    if not isinstance(body, Mapping):
        return ""
    details = body.get("details")
    if isinstance(details, list):
        for detail in details:
            if isinstance(detail, Mapping) and detail.get("issue"):
                return str(detail["issue"])
    return str(body.get("name") or body.get("error") or "")


def error_text(body: Mapping | None, fallback: str) -> str:
    """PayPal's description of an error (with its debug_id), else `fallback`."""
    if not isinstance(body, Mapping):
        return fallback
    description = ""
    details = body.get("details")
    if isinstance(details, list) and details and isinstance(details[0], Mapping):
        description = details[0].get("description") or ""
    text = description or body.get("message") or body.get("error_description") or fallback
    debug_id = body.get("debug_id")
    return f"{text} (debug_id {debug_id})" if debug_id else str(text)


@dataclass
class PayPalReply:
    status: int
    body: dict | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _nothing_sent(exc: requests.RequestException) -> bool:
    """True when the connection could not be opened, so PayPal received nothing."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError):
        return False
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3 MaxRetryError wraps the cause
    return isinstance(reason, (NewConnectionError, NameResolutionError))


class PayPalClient:
    """Calls to PayPal with the credentials in force. `money=True` marks a call that may move
    money: its failures after the request may have left are GatewayTimeout, not unavailable."""

    gateway = "paypal"

    def __init__(self, *, connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT):
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout

    def credentials(self, *, require: bool = True) -> GatewayCredentials:
        creds = gateway_credentials(self.gateway)
        if require and not creds.is_configured:
            raise GatewayUnavailableError("PayPal credentials are not configured", code="gateway_not_configured")
        return creds

    def get(self, path: str, *, params: dict | None = None, missing: str | None = None) -> dict:
        """A read; a 404 is GatewayRequestError(resource_missing) with the message `missing`."""
        reply = self.call("GET", path, params=params, money=False, operation="read")
        if reply.status == 404 and missing:
            raise GatewayRequestError(missing, code="resource_missing")
        if not reply.ok:
            self.raise_for_reply(reply, money=False, operation="read")
        return reply.body or {}

    def get_or_none(self, path: str) -> dict | None:
        """A read; None when PayPal has no such resource (404)."""
        reply = self.call("GET", path, money=False, operation="read")
        if reply.status == 404:
            return None
        if not reply.ok:
            self.raise_for_reply(reply, money=False, operation="read")
        return reply.body or {}

    def call(
        self, method: str, path: str, *, json_body: dict | None = None, raw_body: bytes | None = None,
        params: dict | None = None, request_id: str | None = None, money: bool, operation: str,
        creds: GatewayCredentials | None = None,
    ) -> PayPalReply:
        """One API call with a bearer token; a 401 drops the token and retries once (a 401
        means PayPal did not process the request, so the retry is safe even for money)."""
        creds = creds or self.credentials()
        headers = {"Accept": "application/json", "Prefer": "return=representation"}
        if request_id:
            headers["PayPal-Request-Id"] = bounded_id(request_id, MAX_REQUEST_ID_LENGTH)
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
        return self._reply(response, money=money, operation=operation, creds=creds)

    def _reply(self, response: requests.Response, *, money: bool, operation: str, creds: GatewayCredentials) -> PayPalReply:
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
        return PayPalReply(status=response.status_code, body=body if isinstance(body, dict) else None)

    def raise_for_reply(self, reply: PayPalReply, *, money: bool, operation: str) -> NoReturn:
        """The gateway error of a failed reply the caller did not handle itself."""
        status, body = reply.status, reply.body
        issue = error_issue(body)
        text = error_text(body, f"PayPal answered HTTP {status}")
        if status in (401, 403):
            raise GatewayUnavailableError(f"PayPal refused the credentials: {text}", code="gateway_authentication_failed")
        if status == 429:
            raise GatewayUnavailableError(f"PayPal rate limit: {text}", code="gateway_rate_limited")
        if status == 409 and money:
            raise self._unknown_outcome(operation, self.credentials(require=False), "409: request id still in flight")
        if status >= 500:
            if money:
                raise self._unknown_outcome(operation, self.credentials(require=False), f"HTTP {status} {issue}".strip())
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
    def fetch_token(self, creds: GatewayCredentials, *, read_timeout: float | None = None) -> str:
        """A fresh access token, never the cached one (credential checks, health checks); it
        replaces the cached one."""
        entry = self._request_token(creds, timeout=(self.connect_timeout, read_timeout or self.read_timeout))
        with _token_lock:
            _tokens[(creds.client_id, creds.api_base)] = entry
        return entry.value

    def _access_token(self, creds: GatewayCredentials) -> str:
        key = (creds.client_id, creds.api_base)
        with _token_lock:
            cached = _tokens.get(key)
            if cached is not None and time.monotonic() < cached.refresh_at:
                return cached.value
            # Fetched under the lock: concurrent callers wait for one token instead of each
            # asking PayPal for their own.
            entry = _tokens[key] = self._request_token(creds, timeout=(self.connect_timeout, self.read_timeout))
            return entry.value

    @staticmethod
    def _request_token(creds: GatewayCredentials, *, timeout: tuple[float, float]) -> _AccessToken:
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
        return _AccessToken(value=token, refresh_at=time.monotonic() + max(expires_in - margin, 0.0))
