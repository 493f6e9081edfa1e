"""The keys of the audit chain, and every MAC made with them.

Rules:
- Keys come from the settings (FLOWPAY_AUDIT_CHAIN_KEYS: key id -> base64 secret, from the
  environment), never from the database: whoever owns the database can alter rows but
  cannot recompute their MACs. FLOWPAY_AUDIT_CHAIN_KEY_ID names the key that new entries,
  seals and anchors are made with (the first one listed when unset). Every entry and seal
  records the id of its key, so a key is rotated by listing a new one first (or naming it)
  and keeping the old ones listed: what they made still verifies.
- Each use has its own key derived from the secret (entries, seals, anchors), so a MAC of
  one kind is never valid as another.
- Without configured keys a fixed development key (DEV_KEY_ID, public) is used: tolerated
  with DEBUG (a Warning), an Error in production (audit.checks).
- An entry's MAC covers a canonical form of its content as the database returns it (JSON
  numbers normalised, keys sorted, addresses normalised), its time, its key id and a random
  nonce. Its id is assigned by the INSERT and rows cannot be updated, so the id is not in
  the MAC: the seal that covers the entry binds it to its id.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import uuid
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

logger = logging.getLogger("flowpay.audit")

DEV_KEY_ID = "dev"
# Public on purpose (it is in the source): only for DEBUG and the test suite.
DEV_SECRET = b"flowpay-development-audit-chain-key (public, never for production)"
MIN_SECRET_BYTES = 32
GENESIS = "0" * 64

_PURPOSES = ("entry", "seal", "anchor")
_dev_key_logged = False


class UnknownChainKey(LookupError):
    """An entry, seal or anchor names a key id that is not configured."""

    def __init__(self, key_id: str):
        super().__init__(key_id)
        self.key_id = key_id


def decode_secret(text: str) -> bytes:
    """A key's secret as configured (standard or URL-safe base64, padding optional) -> its
    bytes. Raises ValueError when it is not base64 or shorter than 32 bytes."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    try:
        secret = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the secret is not base64") from None
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the secret is {len(secret)} bytes long, at least {MIN_SECRET_BYTES} are needed")
    return secret


@lru_cache(maxsize=8)
def _decoded(items: tuple[tuple[str, str], ...]) -> dict[str, bytes]:
    keys = {}
    for key_id, text in items:
        try:
            keys[key_id] = decode_secret(text)
        except ValueError as exc:
            raise ImproperlyConfigured(f"FLOWPAY_AUDIT_CHAIN_KEYS: key {key_id!r}: {exc}") from None
    return keys


def configured_keys() -> dict[str, bytes]:
    """The keys of FLOWPAY_AUDIT_CHAIN_KEYS, decoded, in the order listed."""
    return _decoded(tuple((str(k), str(v)) for k, v in settings.FLOWPAY_AUDIT_CHAIN_KEYS.items()))


def using_development_key() -> bool:
    return not settings.FLOWPAY_AUDIT_CHAIN_KEYS


def chain_keys() -> dict[str, bytes]:
    """Every key that may verify: the configured ones, or the development key alone."""
    return configured_keys() if not using_development_key() else {DEV_KEY_ID: DEV_SECRET}


def active_key_id() -> str:
    """The key new entries, seals and anchors are made with."""
    if using_development_key():
        return DEV_KEY_ID
    return settings.FLOWPAY_AUDIT_CHAIN_KEY_ID or next(iter(settings.FLOWPAY_AUDIT_CHAIN_KEYS))


@lru_cache(maxsize=64)
def _derive(secret: bytes, purpose: str) -> bytes:
    return hmac.new(secret, f"flowpay.audit.{purpose}.v1".encode(), hashlib.sha256).digest()


def _mac(key_id: str, purpose: str, message: str) -> str:
    assert purpose in _PURPOSES
    secret = chain_keys().get(key_id)
    if secret is None:
        raise UnknownChainKey(key_id)
    return hmac.new(_derive(secret, purpose), message.encode(), hashlib.sha256).hexdigest()


# --- canonical form ---------------------------------------------------------------------
def _number(value: int | float) -> str:
    # PostgreSQL's jsonb returns 1e20 as 100000000000000000000 (an int to Python) and -0.0
    # as 0.0: the exact decimal value, trailing zeros stripped, is what both sides agree on.
    number = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    if number.is_nan():
        return "NaN"
    if number.is_infinite():
        return "Infinity" if number > 0 else "-Infinity"
    sign, digits, exponent = number.as_tuple()
    if not any(digits):
        return "0"
    digits = list(digits)
    while digits[-1] == 0:
        digits.pop()
        exponent += 1
    return ("-" if sign else "") + "".join(map(str, digits)) + f"e{exponent}"


def canonical_json(value: Any) -> str:
    """One text for one JSON value, whichever way it was written or read back."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical_json(v) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted((str(k), v) for k, v in value.items())
        return "{" + ",".join(f"{json.dumps(k)}:{canonical_json(v)}" for k, v in items) + "}"
    return json.dumps(str(value))


def _text(value: Any) -> str:
    # An enum member (an action, a result) is stored as its value.
    return str(getattr(value, "value", value))


def _address(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(str(value).split("/")[0]))
    except ValueError:
        return str(value)


def entry_document(entry) -> dict:
    """What an entry's MAC covers: its content, time, nonce and key id (not its id)."""
    return {
        "occurred_at": entry.occurred_at.astimezone(dt.UTC).isoformat(),
        "actor_type": _text(entry.actor_type),
        "actor_id": _text(entry.actor_id),
        "merchant_id": entry.merchant_id,
        "action": _text(entry.action),
        "object_type": _text(entry.object_type),
        "object_id": _text(entry.object_id),
        "result": _text(entry.result),
        # As the JSON column stores it (tuples become lists, keys strings).
        "details": json.loads(json.dumps(entry.details)),
        "correlation_id": _text(entry.correlation_id),
        "origin_ip": _address(entry.origin_ip),
        "nonce": str(entry.nonce),
        "key_id": entry.key_id,
    }


# --- entries ----------------------------------------------------------------------------
def entry_mac(entry, *, key_id: str) -> str:
    return _mac(key_id, "entry", canonical_json(entry_document(entry)))


def entry_sign(entry) -> None:
    """Sign an entry about to be inserted: nonce, key id and MAC, with the active key."""
    global _dev_key_logged
    if entry.occurred_at is None:
        entry.occurred_at = timezone.now()
    entry.nonce = uuid.uuid4()
    entry.key_id = active_key_id()
    entry.mac = entry_mac(entry, key_id=entry.key_id)
    if entry.key_id == DEV_KEY_ID and not settings.DEBUG and not _dev_key_logged:
        _dev_key_logged = True
        logger.warning("audit entries are signed with the public development key: set FLOWPAY_AUDIT_CHAIN_KEYS")


def entry_mac_matches(entry) -> bool:
    """Raises UnknownChainKey when the entry's key is not configured."""
    return hmac.compare_digest(entry_mac(entry, key_id=entry.key_id), entry.mac or "")


def legacy_entry_digest(entry) -> str:
    """The digest seals made before keys existed cover (kept exactly as it was)."""
    document = {
        "id": entry.pk,
        "occurred_at": entry.occurred_at.astimezone(dt.UTC).isoformat(),
        "actor_type": entry.actor_type,
        "actor_id": entry.actor_id,
        "merchant_id": entry.merchant_id,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "result": entry.result,
        "details": entry.details,
        "correlation_id": entry.correlation_id,
        "origin_ip": entry.origin_ip,
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def entry_digest(entry) -> str:
    """What a seal covers of one entry. A signed entry: its id, key id, nonce and MAC (the
    MAC covers the rest and is checked on its own). A legacy entry: its whole content."""
    if entry.key_id is None:
        return legacy_entry_digest(entry)
    return hashlib.sha256(f"{entry.pk}|{entry.key_id}|{entry.nonce}|{entry.mac}".encode()).hexdigest()


# --- seals and anchors --------------------------------------------------------------------
def seal_hash(*, previous_hash: str, after_id: int, last_id: int, digests: list[str], key_id: str | None) -> str:
    """HMAC-SHA256 with the seal key of key_id; plain SHA-256 for a legacy seal (key_id None)."""
    header = f"{previous_hash}|{after_id}|{last_id}|{len(digests)}|"
    if key_id is None:
        chain = hashlib.sha256(header.encode())
        for digest in digests:
            chain.update(digest.encode())
        return chain.hexdigest()
    return _mac(key_id, "seal", f"{header}{key_id}|" + "".join(digests))


ANCHOR_FIELDS = ("sealId", "lastEntryId", "entryCount", "hash", "keyId")


def anchor_signature(anchor: dict) -> str:
    """The anchor key's MAC over an anchor's fields (ANCHOR_FIELDS)."""
    return _mac(str(anchor["keyId"]), "anchor", canonical_json({name: anchor[name] for name in ANCHOR_FIELDS}))
