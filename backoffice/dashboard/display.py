"""How the dashboard shows figures: money with the currency's exponent, rates, deltas, and
links to the admin changelist a figure counts (Django admin's standard lookups)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from urllib.parse import urlencode

from django.urls import NoReverseMatch, reverse

from core.money import CURRENCY_EXPONENTS


def money(amount: int | None, currency: str) -> str:
    """1234567, "USD" -> "12,345.67 USD"; JPY 1999 -> "1,999 JPY"; KWD 1999 -> "1.999 KWD"."""
    if amount is None:
        return "–"
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    return f"{Decimal(amount).scaleb(-exponent):,.{exponent}f} {currency}"


def money_value(amount: int, currency: str) -> str:
    """The decimal string of an amount for a chart's data (exact, never a float)."""
    return str(Decimal(amount).scaleb(-CURRENCY_EXPONENTS.get(currency, 2)))


def percent(rate: Fraction | None, digits: int = 1) -> str:
    if rate is None:
        return "–"
    return f"{Decimal(rate.numerator * 100) / Decimal(rate.denominator):.{digits}f} %"


def delta(current: int | Fraction | None, previous: int | Fraction | None) -> str:
    """The change from the previous period, as a signed percentage ("" when it has no base)."""
    if current is None or previous is None or previous == 0:
        return ""
    change = Fraction(current) / Fraction(previous) - 1
    sign = "+" if change >= 0 else "−"
    return f"{sign}{abs(Decimal(change.numerator * 100) / Decimal(change.denominator)):.1f} %"


def when(moment: dt.datetime | None) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "–"


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def changelist(model: str, **params: str) -> str:
    """'payments.transaction' -> /admin/payments/transaction/?params ("" if not installed)."""
    app_label, model_name = model.split(".")
    try:
        url = reverse(f"admin:{app_label}_{model_name}_changelist")
    except NoReverseMatch:
        return ""
    query = urlencode({key: value for key, value in params.items() if value != ""})
    return f"{url}?{query}" if query else url
