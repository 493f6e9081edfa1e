"""What one CSV row of a list holds: each column is a database path read with
`values_list` (no model instances, so memory stays flat as rows grow), rendered as text.

Money is two columns, the integer minor units and the decimal in the currency's exponent
(`1999` and `19.99` for USD, `1999` and `1999` for JPY), beside the currency column. Times
are UTC ISO 8601 (`2026-12-01T17:05:00Z`)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from core.money import CURRENCY_EXPONENTS

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportColumn:
    header: str
    path: str  # a values_list path: "public_id", "merchant__public_id", "customer__email"
    currency_path: str | None = None  # set for money: the path of its currency

    @property
    def headers(self) -> tuple[str, ...]:
        if self.currency_path:
            return (f"{self.header}_minor", f"{self.header}_decimal")
        return (self.header,)


def money(header: str, path: str, currency_path: str = "currency") -> ExportColumn:
    return ExportColumn(header=header, path=path, currency_path=currency_path)


def export_headers(columns: Sequence[ExportColumn]) -> list[str]:
    return [header for column in columns for header in column.headers]


def export_paths(columns: Sequence[ExportColumn]) -> list[str]:
    """The distinct paths to read, currencies included."""
    paths: list[str] = []
    for column in columns:
        for path in (column.path, column.currency_path):
            if path and path not in paths:
                paths.append(path)
    return paths


def decimal_text(amount: int, currency: str) -> str:
    """1999, "USD" -> "19.99"; 1999, "JPY" -> "1999"; 1999, "KWD" -> "1.999" (exact: no float)."""
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    return str(Decimal(amount).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent)))


def utc_iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return utc_iso(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, str) and value[:1] in FORMULA_PREFIXES:
        # A spreadsheet would run "=HYPERLINK(…)" typed into a customer's name: keep it text.
        return f"'{value}"
    return str(value)


def export_rows(columns: Sequence[ExportColumn], rows: Iterable[tuple]) -> Iterator[list[str]]:
    """The CSV cells of each row of `values_list(*export_paths(columns))`."""
    paths = export_paths(columns)
    position = {path: index for index, path in enumerate(paths)}
    for row in rows:
        cells: list[str] = []
        for column in columns:
            value = row[position[column.path]]
            if column.currency_path:
                currency = row[position[column.currency_path]]
                cells += ["", ""] if value is None else [str(value), decimal_text(value, currency)]
            else:
                cells.append(_text(value))
        yield cells
