"""A payment's signals: everything screening knows about it, by attribute name (the
vocabulary of fraud.screening.language.attributes). Stored with each decision, so that the
backtest evaluates a new rule against exactly what screening saw.

What comes from where:
- the request: amount, currency, merchant, metadata, email (else the customer's), client IP
  (`clientIp`, else behind the trusted proxies), billing country;
- FlowPay: the customer's history, computed by the caller (payments) and only when needed;
- the offline IP table: the client's country (no network);
- the gateway's payment method look-up: the card's fingerprint, brand, funding and country
  (never its number), cached per process (a token's card does not change);
- the rate table: the amount in the reference currency (Decimal arithmetic, rounded half up
  to the reference's minor unit; floats never touch money).
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.utils import timezone

from core.money import CURRENCY_EXPONENTS
from fraud.checks import parse_rates
from fraud.screening.geoip import ip_country
from gateways.base import GatewayError, PaymentMethodDetails
from gateways.registry import gateway_named

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CustomerHistory:
    created_at: dt.datetime
    successful_payments: int
    prior_disputes: int
    average_amount: int | None  # of the successful payments in the payment's currency


@dataclass(frozen=True)
class ScreeningRequest:
    """What the payment service hands screening (no payments model crosses the layer)."""

    merchant_id: int
    merchant_public_id: str
    livemode: bool
    transaction_id: int
    transaction_public_id: str
    amount: int
    currency: str
    gateway: str
    payment_method_token: str
    count_key: str  # the velocity member: one per payment request (see fraud.screening.velocity)
    customer_public_id: str | None = None
    customer_email: str | None = None
    email: str | None = None
    client_ip: str | None = None
    billing_country: str | None = None
    metadata: dict = field(default_factory=dict)
    # Called only when the history is needed (not in simplified flow): one query.
    customer_history: Callable[[], CustomerHistory | None] | None = None


def normalise_email(value: str | None) -> str | None:
    value = (value or "").strip().lower()
    return value or None


def normalise_ip(value: str | None) -> str | None:
    try:
        address = ipaddress.ip_address((value or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def amount_in(amount: int, currency: str, target: str) -> int | None:
    """`amount` (minor units of `currency`) in minor units of `target`, by the rate table
    (whose rates are to the reference currency); None when a rate is missing."""
    reference = settings.FLOWPAY_FRAUD_REFERENCE_CURRENCY
    rates = _rates(tuple(settings.FLOWPAY_FRAUD_REFERENCE_RATES))
    rate_from = Decimal(1) if currency == reference else rates.get(currency)
    rate_to = Decimal(1) if target == reference else rates.get(target)
    if rate_from is None or rate_to is None or currency not in CURRENCY_EXPONENTS or target not in CURRENCY_EXPONENTS:
        return None
    major = Decimal(amount).scaleb(-CURRENCY_EXPONENTS[currency])
    converted = (major * rate_from / rate_to).scaleb(CURRENCY_EXPONENTS[target])
    return int(converted.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@functools.lru_cache(maxsize=8)
def _rates(entries: tuple[str, ...]) -> dict[str, Decimal]:
    return parse_rates(entries)


# --- the card, from the gateway ---------------------------------------------------------------
_CARD_CACHE_SIZE = 4096
_cards: OrderedDict[tuple[str, str], PaymentMethodDetails | None] = OrderedDict()
_cards_lock = threading.Lock()


def card_details(*, gateway: str, token: str) -> PaymentMethodDetails | None:
    """The gateway's description of the card behind `token`, cached per process (only
    answers are cached: a failed look-up is asked again next time). A look-up that fails
    leaves the card signals missing, never the payment."""
    key = (gateway, token)
    with _cards_lock:
        if key in _cards:
            _cards.move_to_end(key)
            return _cards[key]
    try:
        adapter = gateway_named(gateway)
        describe = getattr(adapter, "describe_payment_method", None)
        details = describe(token=token) if describe is not None else None
    except (GatewayError, KeyError, ValueError) as exc:
        logger.warning("payment method look-up failed; screening without card signals",
                       extra={"gateway": gateway, "error": type(exc).__name__})
        return None
    with _cards_lock:
        _cards[key] = details
        while len(_cards) > _CARD_CACHE_SIZE:
            _cards.popitem(last=False)
    return details


def payment_signals(request: ScreeningRequest, *, with_history: bool) -> dict:
    """Every signal but velocity and the score (added by screening when it has them)."""
    email = normalise_email(request.email) or normalise_email(request.customer_email)
    address = normalise_ip(request.client_ip)
    card = card_details(gateway=request.gateway, token=request.payment_method_token)
    reference = settings.FLOWPAY_FRAUD_REFERENCE_CURRENCY
    signals: dict = {
        "amount": request.amount,
        "currency": request.currency,
        "amount_in_reference": amount_in(request.amount, request.currency, reference),
        "amount_in_usd": amount_in(request.amount, request.currency, "USD"),
        "merchant": request.merchant_public_id,
        "customer": request.customer_public_id,
        "email": email,
        "email_domain": email.rpartition("@")[2] if email and "@" in email else None,
        "ip_address": address,
        "ip_country": ip_country(address),
        "card_fingerprint": card.fingerprint if card else None,
        "card_brand": card.brand if card else None,
        "card_funding": card.funding if card else None,
        "card_country": card.country if card else None,
        "billing_address_country": (request.billing_country or "").upper() or None,
        "has_metadata": bool(request.metadata),
        "metadata": dict(request.metadata or {}),
    }
    if with_history:
        signals.update(_history_signals(request))
    return signals


def _history_signals(request: ScreeningRequest) -> dict:
    history = request.customer_history() if request.customer_history is not None and request.customer_public_id else None
    if history is None:
        return {"is_new_customer": True, "customer_successful_payments": 0, "customer_prior_disputes": 0,
                "customer_age_days": None, "customer_average_amount": None}
    return {
        "is_new_customer": history.successful_payments == 0,
        "customer_age_days": (timezone.now() - history.created_at).days,
        "customer_successful_payments": history.successful_payments,
        "customer_prior_disputes": history.prior_disputes,
        "customer_average_amount": history.average_amount,
    }
