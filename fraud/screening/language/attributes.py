"""The vocabulary of the rules language: every `:attribute:` a rule may name (with its
kind), the lists a rule may test membership of (`@blocked_emails`), and which kind of
value each list holds.

Rule: the names follow Stripe Radar's where Radar has one (`:risk_score:`, `:ip_country:`,
`:card_country:`, `:billing_address_country:`, `:total_charges_per_card_number_hourly:`),
so that a merchant's Radar rules read the same here. An attribute's value for a payment is
the signal of the same name (fraud.screening.signals); a missing value never matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    NUMBER = "number"
    TEXT = "text"
    BOOLEAN = "boolean"


class ListKind(StrEnum):
    """What a fraud list holds, and how its values are normalised (fraud.screening.lists)."""

    EMAIL = "email"
    CARD_FINGERPRINT = "card_fingerprint"
    IP_ADDRESS = "ip_address"
    CUSTOMER = "customer"
    COUNTRY = "country"


# The plural each list name is made of: allowed_<plural>, blocked_<plural>.
LIST_PLURALS = {
    ListKind.EMAIL: "emails",
    ListKind.CARD_FINGERPRINT: "card_fingerprints",
    ListKind.IP_ADDRESS: "ip_addresses",
    ListKind.CUSTOMER: "customers",
    ListKind.COUNTRY: "countries",
}
LISTS: dict[str, ListKind] = {
    f"{purpose}_{plural}": kind for kind, plural in LIST_PLURALS.items() for purpose in ("allowed", "blocked")
}


@dataclass(frozen=True)
class Attribute:
    name: str
    kind: Kind
    description: str
    list_kind: ListKind | None = None  # the lists this attribute may be tested against
    velocity: bool = False  # a velocity counter (missing when the counters are out of reach)
    scored: bool = False  # the risk score (missing in simplified flow and when degraded)


VELOCITY_SUBJECTS = {
    "card_fingerprint": "card fingerprint",
    "customer": "customer",
    "email": "email address",
    "ip_address": "client IP address",
}
VELOCITY_WINDOWS = {"hourly": "hour", "daily": "24 hours", "weekly": "7 days"}
VELOCITY_COUNTS = {"total_charges": "payments", "declined_charges": "declined payments"}


def _velocity_attributes() -> list[Attribute]:
    return [
        Attribute(
            f"{count}_per_{subject}_{window}", Kind.NUMBER,
            f"{what} with this {label} over the last {span}, this one included", velocity=True,
        )
        for count, what in VELOCITY_COUNTS.items()
        for subject, label in VELOCITY_SUBJECTS.items()
        for window, span in VELOCITY_WINDOWS.items()
    ]


_ATTRIBUTES = [
    Attribute("amount", Kind.NUMBER, "the amount, in minor units of the payment's currency (1999 is 19.99 USD)"),
    Attribute("currency", Kind.TEXT, "the payment's currency (ISO 4217, upper case)"),
    Attribute("amount_in_reference", Kind.NUMBER,
              "the amount in minor units of the reference currency (FLOWPAY_FRAUD_REFERENCE_CURRENCY), by the rate table"),
    Attribute("amount_in_usd", Kind.NUMBER, "the amount in US cents, by the rate table"),
    Attribute("merchant", Kind.TEXT, "the merchant's id"),
    Attribute("customer", Kind.TEXT, "the customer's id (cus_…)", list_kind=ListKind.CUSTOMER),
    Attribute("email", Kind.TEXT, "the customer's email address (the payment's `email`, else the customer's)",
              list_kind=ListKind.EMAIL),
    Attribute("email_domain", Kind.TEXT, "the domain of that email address"),
    Attribute("ip_address", Kind.TEXT, "the client's IP address (`clientIp`, else behind the trusted proxies)",
              list_kind=ListKind.IP_ADDRESS),
    Attribute("ip_country", Kind.TEXT, "the country of that address (offline table)", list_kind=ListKind.COUNTRY),
    Attribute("card_fingerprint", Kind.TEXT, "the card's fingerprint at the gateway (the same card, the same value)",
              list_kind=ListKind.CARD_FINGERPRINT),
    Attribute("card_brand", Kind.TEXT, "the card's brand (visa, mastercard, amex, …)"),
    Attribute("card_funding", Kind.TEXT, "credit, debit, prepaid or unknown"),
    Attribute("card_country", Kind.TEXT, "the country of the card's issuer", list_kind=ListKind.COUNTRY),
    Attribute("billing_address_country", Kind.TEXT, "the billing address's country (`billingCountry`)",
              list_kind=ListKind.COUNTRY),
    Attribute("is_new_customer", Kind.BOOLEAN, "no customer, or one with no successful payment yet"),
    Attribute("customer_age_days", Kind.NUMBER, "days since the customer was created"),
    Attribute("customer_successful_payments", Kind.NUMBER, "the customer's earlier payments that succeeded"),
    Attribute("customer_prior_disputes", Kind.NUMBER, "the customer's earlier payments that were disputed"),
    Attribute("customer_average_amount", Kind.NUMBER,
              "the average of the customer's earlier successful payments in this currency (minor units)"),
    Attribute("has_metadata", Kind.BOOLEAN, "the payment carries metadata"),
    Attribute("risk_score", Kind.NUMBER, "the risk score, 0 to 100", scored=True),
    Attribute("risk_level", Kind.TEXT, "normal, elevated or highest", scored=True),
    *_velocity_attributes(),
]
ATTRIBUTES: dict[str, Attribute] = {attribute.name: attribute for attribute in _ATTRIBUTES}

# Radar's spelling of the same signals.
ALIASES = {
    **{
        f"{count}_per_card_number_{window}": f"{count}_per_card_fingerprint_{window}"
        for count in VELOCITY_COUNTS for window in VELOCITY_WINDOWS
    },
    "billing_country": "billing_address_country",
    "client_ip": "ip_address",
}


def attribute_named(name: str) -> Attribute | None:
    return ATTRIBUTES.get(ALIASES.get(name, name))
