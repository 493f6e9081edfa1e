"""Gateway idempotency keys of payment attempts.

Rule: an authorization attempt of a payment created under a merchant's Idempotency-Key is
sent under a key derived from that key — sha256 of the record's scope (the merchant), the
key and the request's fingerprint, then the attempt number — rather than from FlowPay's
transaction id. The same request therefore reaches the gateway under the same keys even
through a second FlowPay transaction, e.g. after a database failover lost the first one
(its transaction and its idempotency record) but not the gateway's charge: the gateway
answers the first charge instead of charging again. Other parameters under the same key
give other keys.

FlowPay keeps its attempt keys unique. A derived key FlowPay has already used belongs to a
request whose idempotency record is gone — purged after FLOWPAY_IDEMPOTENCY_TTL or released
because the request provably did nothing (a FlowPay take-over of a live record finds its
transaction and sends nothing) — and such a key is free again, as at Stripe: the attempt is
a new payment under the per-transaction key. Without an Idempotency-Key, and for captures
and voids, keys are per transaction and attempt (`flowpay:<transaction>:<operation>:<n>`).
"""

from __future__ import annotations

import hashlib
import json

from core.models import IdempotencyRecord
from payments.models import PaymentAttempt, Transaction

AUTHORIZE = PaymentAttempt.Operation.AUTHORIZE


def gateway_key_base(*, idempotency_record_id: int | None) -> str | None:
    """The prefix of the keys derived from the request's Idempotency-Key, or None. The
    merchant's key itself is never sent to the gateway."""
    if idempotency_record_id is None:
        return None
    row = IdempotencyRecord.objects.filter(pk=idempotency_record_id).values_list("scope", "key", "fingerprint").first()
    if row is None:
        return None
    return gateway_key_base_for(scope=row[0], key=row[1], fingerprint=row[2])


def gateway_key_base_for(*, scope: str, key: str, fingerprint: str) -> str:
    """gateway_key_base of the record with this scope, key and fingerprint (known to the
    request that claims it, without reading it back)."""
    digest = hashlib.sha256(json.dumps([scope, key, fingerprint], separators=(",", ":")).encode("utf-8")).hexdigest()[:40]
    return f"flowpay:ik_{digest}"


def derived_key(*, base: str, number: int) -> str:
    return f"{base}:{AUTHORIZE}:{number}"


def transaction_key(*, txn: Transaction, operation: str, number: int) -> str:
    return f"flowpay:{txn.public_id}:{operation}:{number}"


def authorize_key(*, txn: Transaction, number: int, base: str | None) -> str:
    """The gateway key of authorization attempt `number` of `txn` (see the module's rule)."""
    if base is not None:
        key = derived_key(base=base, number=number)
        if not PaymentAttempt.objects.filter(idempotency_key=key).exists():
            return key
    return transaction_key(txn=txn, operation=AUTHORIZE, number=number)
