"""Gateway credentials: from the environment or a secrets file, reloadable at runtime.

Sources, later wins:
1. environment: STRIPE_API_KEY, STRIPE_API_BASE, STRIPE_WEBHOOK_SECRET,
   STRIPE_API_KEY_CREATED_AT, PAYPAL_CLIENT_ID, PAYPAL_CLIENT_SECRET, PAYPAL_API_BASE,
   PAYPAL_WEBHOOK_ID, PAYPAL_CLIENT_SECRET_CREATED_AT;
2. FLOWPAY_SECRETS_FILE: JSON with one object per gateway, e.g.
   {"stripe": {"api_key": "sk_live_…", "webhook_secret": "whsec_…", "created_at": "2026-09-01"},
    "paypal": {"client_id": "…", "client_secret": "…", "webhook_id": "…", "created_at": "2026-09-01"}}
   (the file that a secrets manager keeps up to date).

Rules: adapters read credentials per call through `gateway_credentials(name)`, never keep
them, so `credentials_reload()` (the runbook's reload-api-keys) takes effect at once. Only
the last 4 characters of a secret are ever logged or shown (`mask_secret`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured

from core.runtime import credentials_version

logger = logging.getLogger(__name__)

DEFAULT_API_BASES = {"stripe": "https://api.stripe.com", "paypal": "https://api-m.sandbox.paypal.com"}

_ENV = {
    "stripe": {
        "api_key": "STRIPE_API_KEY",
        "api_base": "STRIPE_API_BASE",
        "webhook_secret": "STRIPE_WEBHOOK_SECRET",
        "created_at": "STRIPE_API_KEY_CREATED_AT",
    },
    "paypal": {
        "client_id": "PAYPAL_CLIENT_ID",
        "client_secret": "PAYPAL_CLIENT_SECRET",
        "api_base": "PAYPAL_API_BASE",
        "webhook_id": "PAYPAL_WEBHOOK_ID",
        "created_at": "PAYPAL_CLIENT_SECRET_CREATED_AT",
    },
}
_FIELDS = ("api_key", "api_base", "webhook_secret", "client_id", "client_secret", "webhook_id", "created_at")


def mask_secret(secret: str | None) -> str:
    """'sk_test_abcd1234' -> '…1234'. The only form in which a secret may be shown."""
    if not secret:
        return "(not set)"
    return "…" + secret[-4:]


@dataclass(frozen=True)
class GatewayCredentials:
    gateway: str
    api_key: str = field(default="", repr=False)  # Stripe secret key
    api_base: str = ""
    webhook_secret: str = field(default="", repr=False)  # Stripe webhook signing secret(s), comma-separated
    client_id: str = ""  # PayPal
    client_secret: str = field(default="", repr=False)  # PayPal
    webhook_id: str = ""  # PayPal
    created_at: dt.date | None = None  # when the key was issued: rotation is due after 90 days
    source: str = "environment"

    @property
    def primary_secret(self) -> str:
        return self.api_key or self.client_secret

    @property
    def is_configured(self) -> bool:
        if self.gateway == "stripe":
            return bool(self.api_key)
        if self.gateway == "paypal":
            return bool(self.client_id and self.client_secret)
        return True

    def age_days(self, today: dt.date | None = None) -> int | None:
        if self.created_at is None:
            return None
        return ((today or dt.date.today()) - self.created_at).days

    def describe(self) -> dict:
        """Safe to log or show: secrets as their last 4 characters only."""
        return {
            "gateway": self.gateway,
            "key": mask_secret(self.primary_secret),
            "apiBase": self.api_base,
            "createdAt": self.created_at.isoformat() if self.created_at else None,
            "source": self.source,
        }


def _parse_date(value: str | None, where: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ImproperlyConfigured(f"{where}: created_at must be an ISO date (YYYY-MM-DD), got {value!r}") from None


def load_gateway_credentials(environ: dict | None = None) -> dict[str, GatewayCredentials]:
    environ = os.environ if environ is None else environ
    values: dict[str, dict] = {}
    for gateway, names in _ENV.items():
        values[gateway] = {key: environ.get(var, "") for key, var in names.items()}
        values[gateway]["source"] = "environment"
    path = environ.get("FLOWPAY_SECRETS_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                document = json.load(handle)
        except (OSError, ValueError) as exc:
            raise ImproperlyConfigured(f"FLOWPAY_SECRETS_FILE {path!r} is unreadable: {type(exc).__name__}") from None
        if not isinstance(document, dict):
            raise ImproperlyConfigured("FLOWPAY_SECRETS_FILE must hold a JSON object keyed by gateway")
        for gateway, entry in document.items():
            if not isinstance(entry, dict):
                raise ImproperlyConfigured(f"FLOWPAY_SECRETS_FILE: {gateway!r} must be an object")
            target = values.setdefault(gateway, {"source": "secrets file"})
            for key in _FIELDS:
                if entry.get(key):
                    target[key] = str(entry[key])
            target["source"] = "secrets file"
    result = {}
    for gateway, entry in values.items():
        result[gateway] = GatewayCredentials(
            gateway=gateway,
            api_key=entry.get("api_key", ""),
            api_base=(entry.get("api_base") or DEFAULT_API_BASES.get(gateway, "")).rstrip("/"),
            webhook_secret=entry.get("webhook_secret", ""),
            client_id=entry.get("client_id", ""),
            client_secret=entry.get("client_secret", ""),
            webhook_id=entry.get("webhook_id", ""),
            created_at=_parse_date(entry.get("created_at"), gateway),
            source=entry.get("source", "environment"),
        )
    return result


_lock = threading.Lock()
_current: dict[str, GatewayCredentials] | None = None
_loaded_version: int | None = None


def gateway_credentials(name: str) -> GatewayCredentials:
    """The credentials in force for a gateway (empty ones when none are configured)."""
    global _current
    _follow_reloads()
    if _current is None:
        with _lock:
            if _current is None:
                _current = load_gateway_credentials()
    return _current.get(name) or GatewayCredentials(gateway=name, api_base=DEFAULT_API_BASES.get(name, ""))


def credentials_reload() -> dict[str, GatewayCredentials]:
    """Re-read the environment and the secrets file in this process. Raises
    ImproperlyConfigured (and keeps the old credentials) when the new ones are unreadable."""
    global _current
    fresh = load_gateway_credentials()
    with _lock:
        _current = fresh
    logger.info("gateway credentials reloaded", extra={"gateways": [c.describe() for c in fresh.values()]})
    return fresh


def _follow_reloads() -> None:
    """Other processes ask for a reload by bumping a shared version (core.runtime)."""
    global _loaded_version
    version = credentials_version()
    if version != _loaded_version:
        if _loaded_version is not None:
            try:
                credentials_reload()
            except ImproperlyConfigured:
                logger.exception("gateway credentials reload failed; keeping the previous ones")
        _loaded_version = version
