"""Stripe's settlement report: balance transactions as SettlementRecords, read from the API
(`/v1/balance_transactions`, auto-paginated, newest first) or from the itemized
balance-change CSV report (`balance_change_from_activity.itemized.*`) for days too large for
the API.

References are what FlowPay stores: a charge's PaymentIntent (`pi_…`, the charge `ch_…` when
it has none), a refund's `re_…`, a dispute's `dp_…`; the PaymentIntent is the parent of a
refund or dispute. Rows are keyed by the balance transaction's id (`txn_…`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator

import stripe

from gateways.base import SettlementFileFormat, SettlementKind, SettlementRecord, SettlementStatus
from gateways.stripe.client import stripe_client, stripe_error
from gateways.stripe.mapping import METADATA_IDEMPOTENCY_KEY, METADATA_TRANSACTION, plain, utc

logger = logging.getLogger("gateways.stripe.adapter")

PAGE_SIZE = 100
K = SettlementKind
# reporting_category -> kind (Stripe's finance grouping of balance transactions).
REPORTING_CATEGORIES = {
    "charge": K.CHARGE,
    "refund": K.REFUND,
    "dispute": K.DISPUTE,
    "dispute_reversal": K.DISPUTE_REVERSAL,
    "fee": K.FEE,
    "payout": K.PAYOUT,
    "partial_capture_reversal": K.PARTIAL_CAPTURE_REVERSAL,
}
# `type`, for a balance transaction without reporting_category.
TYPES = {"charge": K.CHARGE, "payment": K.CHARGE, "refund": K.REFUND, "payment_refund": K.REFUND,
         "payout": K.PAYOUT, "stripe_fee": K.FEE}
SOURCE_STATUSES = {
    "succeeded": SettlementStatus.SUCCEEDED,
    "pending": SettlementStatus.PENDING,
    "requires_action": SettlementStatus.PENDING,
    "failed": SettlementStatus.FAILED,
    "canceled": SettlementStatus.FAILED,
}

# The itemized balance-change report: gross and fee in major units of `currency` (lower case),
# created_utc as "YYYY-MM-DD HH:MM:SS", FlowPay's metadata in payment_metadata[...] and
# refund_metadata[...] columns (when the report is run with them).
ITEMIZED_REPORT = SettlementFileFormat(
    name="Stripe balance_change_from_activity.itemized",
    key=("balance_transaction_id",),
    kind="reporting_category",
    kinds=REPORTING_CATEGORIES,
    references={K.CHARGE: ("payment_intent_id", "source_id"), None: ("source_id",)},
    parent_reference=("payment_intent_id", "charge_id"),
    amount="gross",
    fee="fee",
    currency="currency",
    created="created_utc",
    major_units=True,
    flowpay_reference=(f"payment_metadata[{METADATA_TRANSACTION}]",),
    idempotency_key=(f"refund_metadata[{METADATA_IDEMPOTENCY_KEY}]", f"payment_metadata[{METADATA_IDEMPOTENCY_KEY}]"),
)


def _id(value) -> str:
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def settlement_record(txn: dict) -> SettlementRecord:
    """A balance transaction (its `source` expanded or not) as a SettlementRecord."""
    kind = REPORTING_CATEGORIES.get(str(txn.get("reporting_category") or "")) or TYPES.get(str(txn.get("type")), K.OTHER)
    source = txn.get("source")
    source = source if isinstance(source, dict) else {"id": source}
    metadata = source.get("metadata") if isinstance(source.get("metadata"), dict) else {}
    payment_intent = _id(source.get("payment_intent"))
    if kind == K.CHARGE:
        reference, parent = payment_intent or _id(source.get("id")), ""
    else:
        reference, parent = _id(source.get("id")), payment_intent or _id(source.get("charge"))
    return SettlementRecord(
        key=str(txn["id"]),
        reference=reference or str(txn["id"]),
        kind=kind,
        amount=int(txn.get("amount") or 0),
        currency=str(txn.get("currency") or "").upper(),
        created=utc(txn.get("created") or 0),
        status=SOURCE_STATUSES.get(str(source.get("status") or "succeeded"), SettlementStatus.SUCCEEDED),
        fee=int(txn["fee"]) if txn.get("fee") is not None else None,
        parent_reference=parent,
        flowpay_reference=str(metadata.get(METADATA_TRANSACTION) or ""),
        idempotency_key=str(metadata.get(METADATA_IDEMPOTENCY_KEY) or ""),
    )


def balance_transactions(*, start: dt.datetime, end: dt.datetime) -> Iterator[SettlementRecord]:
    """Balance transactions created in [start, end), streamed page by page. Stripe filters by
    `created`; localstripe (the test and demo peer) refuses the filter, so the newest-first
    list is then read until the first transaction before `start`."""
    start_ts, end_ts = int(start.timestamp()), int(end.timestamp())
    client, creds = stripe_client()
    params = {"limit": PAGE_SIZE, "expand": ["data.source"]}
    try:
        try:
            page = client.v1.balance_transactions.list(params={**params, "created": {"gte": start_ts, "lt": end_ts}})
        except stripe.InvalidRequestError as exc:
            logger.info("stripe balance transactions: created filter refused, filtering by date locally",
                        extra={"gateway": "stripe", "status": exc.http_status})
            page = client.v1.balance_transactions.list(params=params)
        for item in page.auto_paging_iter():
            txn = plain(item)
            created = int(txn.get("created") or 0)
            if created >= end_ts:
                continue
            if created < start_ts:
                break
            yield settlement_record(txn)
    except stripe.StripeError as exc:
        raise stripe_error(exc, operation="settlement_records", creds=creds, money_moving=False) from exc
