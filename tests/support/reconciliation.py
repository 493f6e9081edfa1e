"""Helpers of the reconciliation tests: running the runbook command for a day, reading its
JSON, counting every table's rows, the fees "the ledger recorded" (a test that is not about
the ledger gives reconciliation.ledger_link.recorded_fees_sql a known answer), and a clock that is not about to cross midnight (a golden day must not
straddle two days). A pytest plugin (tests/conftest.py loads it)."""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict

import pytest
from django.apps import apps
from django.utils import timezone

from tests.support.commands import run, run_json

CATEGORIES = ["matched", "missing_at_gateway", "missing_locally", "amount_mismatch", "currency_mismatch",
              "status_mismatch", "fee_mismatch", "duplicate_at_gateway"]


def today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def reconcile(gateway: str, day: dt.date | str, *flags: str, expect: int = 0) -> dict:
    """`reconcile_payments --gateway=… --date=… [flags] --format json`: its JSON document."""
    return run_json("reconcile_payments", f"--gateway={gateway}", f"--date={day}", *flags, expect=expect)


def reconcile_failing(gateway: str, day: dt.date | str, *flags: str):
    """A run that must end with exit status 2: (its JSON document, the error message)."""
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as raised:
        run("reconcile_payments", f"--gateway={gateway}", f"--date={day}", *flags, "--format", "json")
    assert raised.value.returncode == 2
    return raised.value


def by_category(document: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = defaultdict(list)
    for item in document["items"]:
        found[item["category"]].append(item)
    return dict(found)


def discrepancy_counts(document: dict) -> dict[str, int]:
    return {category: n for category, n in document["counts"].items() if n and category != "matched"}


def net_by_currency(items: list[dict]) -> dict[str, int]:
    """Σ (gateway − FlowPay) of the items, per currency (an item in two currencies counts in both)."""
    net: dict[str, int] = defaultdict(int)
    for item in items:
        if item["gatewayAmount"] is not None:
            net[item["gatewayCurrency"]] += item["gatewayAmount"]
        if item["flowpayAmount"] is not None:
            net[item["flowpayCurrency"]] -= item["flowpayAmount"]
    return {currency: n for currency, n in net.items() if n}


def row_counts() -> dict[str, int]:
    """Rows of every table of the project's models."""
    return {model._meta.db_table: model._default_manager.count() for model in apps.get_models()
            if model._meta.managed and not model._meta.proxy}


def fees_query(fees: dict[int, int]) -> tuple[str, dict]:
    """A recorded-fees query (transaction id -> fee) in the seam's form."""
    if not fees:
        return "SELECT NULL::bigint AS transaction_id, NULL::bigint AS fee WHERE false", {}
    values = ", ".join(f"({int(pk)}::bigint, {int(fee)}::bigint)" for pk, fee in fees.items())
    return f"SELECT * FROM (VALUES {values}) AS recorded(transaction_id, fee)", {}


@pytest.fixture
def recorded_fees(monkeypatch):
    """Call with {transaction pk: fee}: the fees "the ledger recorded" for the next runs."""

    def use(fees: dict[int, int]) -> None:
        monkeypatch.setattr("reconciliation.services.runs.recorded_fees_sql", lambda *, gateway: fees_query(fees))

    return use


@pytest.fixture
def away_from_midnight():
    """Wait out the last 20 seconds of a UTC day: the day's records and rows must share one date."""
    now = timezone.now().astimezone(dt.UTC)
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    if (midnight - now).total_seconds() < 20:
        time.sleep((midnight - now).total_seconds() + 1)


def settled_payment(merchant, *, gateway: str, reference: str, amount: int, currency: str = "USD",
                    settled_at: dt.datetime):
    """A payment FlowPay recorded completed at `gateway` under `reference`, captured at
    `settled_at` (through the model's transitions, without a gateway call: for report files)."""
    from payments.models import Transaction

    txn = Transaction(merchant=merchant, amount=amount, currency=currency, payment_method="pm_card_visa",
                      payment_method_token="pm_card_visa")
    txn.start_processing(gateway=gateway, now=settled_at)
    txn.mark_completed(reference=reference, amount_captured=amount, now=settled_at)
    txn.save()
    return txn
