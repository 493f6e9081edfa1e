"""The simulator's settlement report: built from its own charge store (gateways.models
.SimulatorCharge), with discrepancies injected at runtime for drills and tests, shared by
every process through the cache like the simulator's faults.

Each succeeded charge settles as a `charge` row for its captured amount (reference = the
simulator's charge id, FlowPay's transaction id and idempotency key echoed), each refund as a
`refund` row (negative, parent = the charge); the simulator takes a fee of
FEE_PERCENT_BPS + FEE_FIXED on charges (none on refunds).

Discrepancies (`SettlementDiscrepancies`, by the simulator's reference of the row):
missing (the row is left out), amount_delta (added to the row's amount), currency (the row
reports another currency), refunded (a refund of the whole charge that FlowPay never asked
for is added), fee (the fee reported instead), duplicate (the row is reported twice, under
two keys), extra_charges (charges FlowPay knows nothing of).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from django.core.cache import cache

from gateways.base import SettlementFileFormat, SettlementKind, SettlementRecord, SettlementStatus
from gateways.models import SimulatorCharge
from gateways.models import SimulatorChargeStatus as ChargeStatus

DISCREPANCIES_CACHE_KEY = "flowpay:simulator:settlement-discrepancies"
FEE_PERCENT_BPS = 290  # 2.90 %
FEE_FIXED = 30  # minor units
CHUNK = 2000

# The simulator's own CSV report (its `--file` format): amounts in minor units.
SETTLEMENT_REPORT = SettlementFileFormat(
    name="simulator settlement report",
    key=("key",),
    kind="type",
    kinds={"charge": SettlementKind.CHARGE, "refund": SettlementKind.REFUND},
    references={None: ("reference",)},
    parent_reference=("parent_reference",),
    amount="amount",
    fee="fee",
    currency="currency",
    created="created",
    major_units=False,
    flowpay_reference=("flowpay_reference",),
    idempotency_key=("idempotency_key",),
    status="status",
    statuses={s.value: s for s in SettlementStatus},
)
REPORT_COLUMNS = ["key", "reference", "type", "amount", "fee", "currency", "created", "status", "parent_reference",
                  "flowpay_reference", "idempotency_key"]


@dataclass(frozen=True)
class ExtraCharge:
    reference: str
    amount: int
    currency: str
    created: dt.datetime


@dataclass(frozen=True)
class SettlementDiscrepancies:
    missing: tuple[str, ...] = ()
    amount_delta: dict[str, int] = field(default_factory=dict)
    currency: dict[str, str] = field(default_factory=dict)
    refunded: tuple[str, ...] = ()
    fee: dict[str, int] = field(default_factory=dict)
    duplicate: tuple[str, ...] = ()
    extra_charges: tuple[ExtraCharge, ...] = ()

    @property
    def active(self) -> bool:
        return any(asdict(self).values())


def simulator_fee(amount: int) -> int:
    return (amount * FEE_PERCENT_BPS + 5000) // 10000 + FEE_FIXED


def settlement_discrepancies_get(name: str = "simulator") -> SettlementDiscrepancies:
    stored = cache.get(f"{DISCREPANCIES_CACHE_KEY}:{name}")
    if not stored:
        return SettlementDiscrepancies()
    extras = tuple(
        ExtraCharge(reference=e["reference"], amount=e["amount"], currency=e["currency"],
                    created=dt.datetime.fromisoformat(e["created"]))
        for e in stored.get("extra_charges") or ()
    )
    return SettlementDiscrepancies(
        missing=tuple(stored.get("missing") or ()), amount_delta=dict(stored.get("amount_delta") or {}),
        currency=dict(stored.get("currency") or {}), refunded=tuple(stored.get("refunded") or ()),
        fee=dict(stored.get("fee") or {}), duplicate=tuple(stored.get("duplicate") or ()), extra_charges=extras,
    )


def settlement_discrepancies_set(discrepancies: SettlementDiscrepancies, name: str = "simulator") -> SettlementDiscrepancies:
    for extra in discrepancies.extra_charges:
        if extra.amount <= 0 or extra.created.tzinfo is None:
            raise ValueError("an extra charge needs a positive amount and an aware creation time")
    stored = asdict(discrepancies)
    stored["extra_charges"] = [{**asdict(e), "created": e.created.isoformat()} for e in discrepancies.extra_charges]
    cache.set(f"{DISCREPANCIES_CACHE_KEY}:{name}", stored, timeout=None)
    return discrepancies


def settlement_discrepancies_clear(name: str = "simulator") -> None:
    cache.delete(f"{DISCREPANCIES_CACHE_KEY}:{name}")


def _record(charge: SimulatorCharge) -> SettlementRecord:
    if charge.status == ChargeStatus.REFUND:
        return SettlementRecord(
            key=f"sim_bt_{charge.reference}", reference=charge.reference, kind=SettlementKind.REFUND,
            amount=-charge.amount, currency=charge.currency, created=charge.created_at, fee=0,
            parent_reference=charge.flowpay_reference, idempotency_key=charge.idempotency_key,
        )
    return SettlementRecord(
        key=f"sim_bt_{charge.reference}", reference=charge.reference, kind=SettlementKind.CHARGE,
        amount=charge.amount_captured, currency=charge.currency, created=charge.created_at,
        fee=simulator_fee(charge.amount_captured), flowpay_reference=charge.flowpay_reference,
        idempotency_key=charge.idempotency_key,
    )


def _perturbed(record: SettlementRecord, d: SettlementDiscrepancies) -> Iterator[SettlementRecord]:
    ref = record.reference
    if ref in d.missing:
        return
    changes: dict = {}
    if ref in d.amount_delta:
        changes["amount"] = record.amount + d.amount_delta[ref]
    if ref in d.currency:
        changes["currency"] = d.currency[ref]
    if ref in d.fee:
        changes["fee"] = d.fee[ref]
    record = SettlementRecord(**{**asdict(record), **changes})
    yield record
    if ref in d.duplicate:
        yield SettlementRecord(**{**asdict(record), "key": f"{record.key}:again"})
    if ref in d.refunded and record.kind == SettlementKind.CHARGE:
        yield SettlementRecord(
            key=f"{record.key}:refund", reference=f"sim_re_unrequested_{ref}", kind=SettlementKind.REFUND,
            amount=-record.amount, currency=record.currency, created=record.created, fee=0, parent_reference=ref,
        )


def settlement_report(*, start: dt.datetime, end: dt.datetime, name: str = "simulator") -> Iterator[SettlementRecord]:
    """The rows of [start, end), oldest first, streamed from the charge store (the adapter
    applies the simulator's injected faults first: an outage makes the report unavailable)."""
    discrepancies = settlement_discrepancies_get(name)
    charges = SimulatorCharge.objects.filter(
        created_at__gte=start, created_at__lt=end, status__in=[ChargeStatus.SUCCEEDED, ChargeStatus.REFUND],
    ).order_by("id")
    for charge in charges.iterator(chunk_size=CHUNK):
        yield from _perturbed(_record(charge), discrepancies)
    for extra in discrepancies.extra_charges:
        if start <= extra.created < end:
            yield SettlementRecord(
                key=f"sim_bt_{extra.reference}", reference=extra.reference, kind=SettlementKind.CHARGE,
                amount=extra.amount, currency=extra.currency, created=extra.created, fee=simulator_fee(extra.amount),
            )
