"""PayPal's settlement report: the Transaction Search API (`GET /v1/reporting/transactions`)
as SettlementRecords.

- A search covers at most 31 days: a longer range is read in windows of 31 days.
- Each window is read page by page (`page`, `total_pages`, up to 500 rows a page).
- A transaction id is not unique in the report: one movement may be listed balance-affecting
  and another, with the same id, not (an authorization, a hold, a display-only row). Each
  window is read twice: first only the balance-affecting rows
  (`balance_affecting_records_only=Y`), then every row (`=N`); a row of the second read that
  the first did not account for is not balance-affecting. Rows are keyed by
  id + event code + balance-affecting (+ an occurrence number for a repeat).
- T-codes map to kinds: T00xx received payments are charges, T1107 refunds, T1106 (payment
  reversal) and T1201 (chargeback) disputes, T1202 dispute reversals, T01xx fees, T04xx
  withdrawals (payouts), T13xx authorizations (no money moved).
- FlowPay's transaction id comes back as `custom_field`, the idempotency key it sent as
  `invoice_id`; a refund's payment is its `paypal_reference_id`.
PayPal lists a transaction up to three hours after it happened (the settlement delay of
reconciliation covers that).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator, Mapping

from gateways.base import GatewayRequestError, SettlementKind, SettlementRecord, SettlementStatus
from gateways.paypal.mapping import minor_units, parse_time

SEARCH_PATH = "/v1/reporting/transactions"
MAX_WINDOW = dt.timedelta(days=31)
PAGE_SIZE = 500  # the Transaction Search maximum
MAX_PAGES = 10_000  # a bound on one window's pages (5 million rows)

K = SettlementKind
EVENT_KINDS = {"T1107": K.REFUND, "T1106": K.DISPUTE, "T1201": K.DISPUTE, "T1202": K.DISPUTE_REVERSAL}
EVENT_FAMILIES = {"T01": K.FEE, "T04": K.PAYOUT, "T13": K.AUTHORIZATION}
STATUSES = {
    "S": SettlementStatus.SUCCEEDED,
    "P": SettlementStatus.PENDING,
    "D": SettlementStatus.FAILED,
    "V": SettlementStatus.REVERSED,
    "F": SettlementStatus.PARTIALLY_REFUNDED,
}


def search_windows(start: dt.datetime, end: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """[start, end) in consecutive windows of at most 31 days."""
    cursor = start
    while cursor < end:
        upto = min(cursor + MAX_WINDOW, end)
        yield cursor, upto
        cursor = upto


def search_params(start: dt.datetime, end: dt.datetime, *, page: int, balance_affecting_only: bool) -> dict:
    """One page of the search over [start, end) (PayPal's end_date is inclusive, to the second)."""
    last = end - dt.timedelta(seconds=1)
    return {
        "start_date": start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_date": last.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fields": "transaction_info",
        "balance_affecting_records_only": "Y" if balance_affecting_only else "N",
        "page_size": PAGE_SIZE,
        "page": page,
    }


def event_kind(code: str, amount: int) -> SettlementKind:
    if code in EVENT_KINDS:
        return EVENT_KINDS[code]
    if code.startswith("T00"):
        return K.CHARGE if amount > 0 else K.OTHER  # a negative T00xx is a payment FlowPay sent
    return EVENT_FAMILIES.get(code[:3], K.OTHER)


def settlement_record(info: Mapping, *, balance_affecting: bool, occurrence: int = 1) -> SettlementRecord:
    """A `transaction_info` entry as a SettlementRecord."""
    transaction_id = str(info.get("transaction_id") or "")
    code = str(info.get("transaction_event_code") or "")
    money = info.get("transaction_amount") or {}
    amount = minor_units(money)
    fee_money = info.get("fee_amount")
    created = parse_time(info.get("transaction_initiation_date") or info.get("transaction_updated_date"))
    if not transaction_id or created is None or not money.get("currency_code"):
        raise GatewayRequestError(f"PayPal listed a transaction without id, date or currency: {transaction_id!r}",
                                  code="invalid_settlement_row")
    key = f"{transaction_id}:{code}:{'Y' if balance_affecting else 'N'}"
    return SettlementRecord(
        key=key if occurrence == 1 else f"{key}:{occurrence}",
        reference=transaction_id,
        kind=event_kind(code, amount),
        amount=amount,
        currency=str(money["currency_code"]).upper(),
        created=created.astimezone(dt.UTC),
        status=STATUSES.get(str(info.get("transaction_status") or ""), SettlementStatus.PENDING),
        # PayPal writes the fee it takes as a negative amount.
        fee=-minor_units(fee_money) if fee_money else None,
        parent_reference=str(info.get("paypal_reference_id") or ""),
        flowpay_reference=str(info.get("custom_field") or ""),
        idempotency_key=str(info.get("invoice_id") or ""),
        balance_affecting=balance_affecting,
    )


def transaction_search(client, *, start: dt.datetime, end: dt.datetime) -> Iterator[SettlementRecord]:
    """Every row of [start, end), balance-affecting ones first (see the module docstring).
    `client` is a gateways.paypal.client.PayPalClient."""
    for window_start, window_end in search_windows(start, end):
        affecting: Counter[tuple[str, str]] = Counter()
        for info in _pages(client, window_start, window_end, balance_affecting_only=True):
            pair = (str(info.get("transaction_id") or ""), str(info.get("transaction_event_code") or ""))
            affecting[pair] += 1
            yield settlement_record(info, balance_affecting=True, occurrence=affecting[pair])
        others: Counter[tuple[str, str]] = Counter()
        for info in _pages(client, window_start, window_end, balance_affecting_only=False):
            pair = (str(info.get("transaction_id") or ""), str(info.get("transaction_event_code") or ""))
            if affecting[pair]:
                affecting[pair] -= 1  # the balance-affecting row, listed again
                continue
            others[pair] += 1
            yield settlement_record(info, balance_affecting=False, occurrence=others[pair])


def _pages(client, start: dt.datetime, end: dt.datetime, *, balance_affecting_only: bool) -> Iterator[Mapping]:
    page, total_pages = 1, 1
    while page <= total_pages and page <= MAX_PAGES:
        body = client.get(SEARCH_PATH, params=search_params(start, end, page=page,
                                                            balance_affecting_only=balance_affecting_only))
        for detail in body.get("transaction_details") or []:
            yield detail.get("transaction_info") or {}
        total_pages = int(body.get("total_pages") or 1)
        page += 1
