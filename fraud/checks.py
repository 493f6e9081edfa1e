"""System checks of the fraud settings (ids fraud.E001 and up): a failure policy, a
reference currency and a rate table screening can work with, and a readable IP table."""

from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.checks import Error, register

from core.money import CURRENCY_EXPONENTS

FAILURE_POLICIES = ("fail_open", "fail_closed")


def parse_rates(entries) -> dict[str, Decimal]:
    """FLOWPAY_FRAUD_REFERENCE_RATES ("EUR=1.08", …) as {currency: rate}; ValueError for an
    entry that is not CURRENCY=positive number."""
    rates = {}
    for entry in entries:
        currency, _, rate = str(entry).partition("=")
        currency = currency.strip().upper()
        try:
            value = Decimal(rate.strip())
        except InvalidOperation:
            raise ValueError(f"{entry!r}: the rate is not a number") from None
        if currency not in CURRENCY_EXPONENTS or not value.is_finite() or value <= 0:
            raise ValueError(f"{entry!r}: expected CURRENCY=rate, an ISO 4217 currency and a positive rate")
        rates[currency] = value
    return rates


@register()
def check_fraud_settings(app_configs, **kwargs) -> list[Error]:
    from fraud.screening.geoip import load_table, table_path

    errors = []
    if settings.FLOWPAY_FRAUD_FAILURE_POLICY not in FAILURE_POLICIES:
        errors.append(Error(f"FLOWPAY_FRAUD_FAILURE_POLICY is {settings.FLOWPAY_FRAUD_FAILURE_POLICY!r}; it must be "
                            "fail_open or fail_closed.", id="fraud.E001"))
    if settings.FLOWPAY_FRAUD_REFERENCE_CURRENCY not in CURRENCY_EXPONENTS:
        errors.append(Error(f"FLOWPAY_FRAUD_REFERENCE_CURRENCY is {settings.FLOWPAY_FRAUD_REFERENCE_CURRENCY!r}; it must "
                            "be an ISO 4217 currency in upper case (USD).", id="fraud.E002"))
    try:
        parse_rates(settings.FLOWPAY_FRAUD_REFERENCE_RATES)
    except ValueError as exc:
        errors.append(Error(f"FLOWPAY_FRAUD_REFERENCE_RATES: {exc}.", hint="e.g. EUR=1.08,GBP=1.27,JPY=0.0067",
                            id="fraud.E003"))
    try:
        load_table(table_path())
    except (OSError, ValueError) as exc:
        errors.append(Error(f"The IP country table cannot be read: {exc}.", hint="FLOWPAY_FRAUD_GEOIP_FILE names a CSV "
                            "of cidr,country or first,last,country lines", id="fraud.E004"))
    return errors
