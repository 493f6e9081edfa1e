"""Allow and block lists: adding and removing items (audited), and the one look-up
screening makes per payment.

Rules:
- Values are normalised for their list's kind before they are stored or looked up: emails
  in lower case, IP addresses in their canonical form (IPv4-mapped IPv6 as IPv4), countries
  as two upper-case letters, customers as their `cus_…` id, card fingerprints as given.
  A value not of the list's kind is refused (400 list_item_invalid) and nothing is stored.
- A value is on a list at most once at a time (a partial unique index); adding it again
  while it is there is 409 list_item_exists. An expired item no longer matches; adding its
  value again replaces it (the old item is kept, removed, for the history).
- Removing keeps the item with who removed it and when.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Iterable, Mapping

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import ErrorCode, InvalidRequest, InvalidState
from fraud.models import ListItem
from fraud.screening.language.attributes import LISTS, ListKind
from fraud.screening.signals import normalise_ip

CUSTOMER_ID = re.compile(r"^cus_[A-Za-z0-9]{1,36}$")
FINGERPRINT = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")

# The signals whose values each kind of list is matched against.
SIGNALS_OF_KIND = {
    ListKind.EMAIL: ("email",),
    ListKind.CARD_FINGERPRINT: ("card_fingerprint",),
    ListKind.IP_ADDRESS: ("ip_address",),
    ListKind.CUSTOMER: ("customer",),
    ListKind.COUNTRY: ("ip_country", "card_country", "billing_address_country"),
}


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message, code=ErrorCode.LIST_ITEM_INVALID, param="value")


def list_value_normalise(*, list_name: str, value: str) -> str:
    """`value` as stored on `list_name` (which must exist), or 400 list_item_invalid."""
    kind = LISTS[list_name]
    raw = value.strip() if isinstance(value, str) else ""
    if kind == ListKind.EMAIL:
        try:
            validate_email(raw)
        except ValidationError:
            raise _invalid(f"@{list_name} holds email addresses; {raw[:60]!r} is not one.") from None
        return raw.lower()
    if kind == ListKind.IP_ADDRESS:
        try:
            ipaddress.ip_address(raw)
        except ValueError:
            raise _invalid(f"@{list_name} holds IP addresses; {raw[:60]!r} is not one.") from None
        return normalise_ip(raw)
    if kind == ListKind.COUNTRY:
        if not COUNTRY.match(raw.upper()):
            raise _invalid(f"@{list_name} holds two-letter country codes (ISO 3166-1 alpha-2); {raw[:60]!r} is not one.")
        return raw.upper()
    if kind == ListKind.CUSTOMER:
        if not CUSTOMER_ID.match(raw):
            raise _invalid(f"@{list_name} holds customer ids (cus_…); {raw[:60]!r} is not one.")
        return raw
    if not FINGERPRINT.match(raw):
        raise _invalid(f"@{list_name} holds card fingerprints (letters, digits, - and _); {raw[:60]!r} is not one.")
    return raw


def list_item_add(
    *, merchant, livemode: bool, list_name: str, value: str, reason: str = "", expires_at: dt.datetime | None = None,
    actor: Actor,
) -> ListItem:
    """Put `value` on one of the merchant's lists (of the key's mode), until `expires_at`."""
    if list_name not in LISTS:
        raise InvalidRequest(f"No such list: @{list_name[:60]}", code=ErrorCode.RESOURCE_MISSING, param="list")
    normalised = list_value_normalise(list_name=list_name, value=value)
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise InvalidRequest("expiresAt must be in the future.", param="expires_at")
    try:
        with transaction.atomic():
            # An expired item of the same value gives way to the new one (kept, removed).
            ListItem.objects.filter(
                merchant=merchant, livemode=livemode, list=list_name, value=normalised, removed_at__isnull=True,
                expires_at__lte=now,
            ).update(removed_at=now, removed_by="expired", updated_at=now)
            item = ListItem.objects.create(
                merchant=merchant, livemode=livemode, list=list_name, value=normalised, reason=reason[:500],
                expires_at=expires_at, created_by=actor.id[:150],
            )
            audit_record(actor=actor, action=AuditAction.FRAUD_LIST_ITEM_ADD, target=item,
                         details={"list": list_name, "value": normalised, "reason": reason[:500],
                                  "expires_at": expires_at.isoformat() if expires_at else None})
    except IntegrityError:
        raise InvalidState(f"{normalised[:60]!r} is already on @{list_name}.", code=ErrorCode.LIST_ITEM_EXISTS,
                           param="value") from None
    return item


@transaction.atomic
def list_item_remove(*, item_id: int, actor: Actor) -> ListItem:
    """Take an item off its list (kept, marked removed). Removing it twice is 409."""
    item = ListItem.objects.select_for_update().get(pk=item_id)
    if item.removed_at is not None:
        raise InvalidState(f"{item.public_id} was already removed from @{item.list}.")
    item.removed_at, item.removed_by = timezone.now(), actor.id[:150]
    item.save(update_fields=["removed_at", "removed_by", "updated_at"])
    audit_record(actor=actor, action=AuditAction.FRAUD_LIST_ITEM_REMOVE, target=item,
                 details={"list": item.list, "value": item.value})
    return item


# --- the look-up of screening and the backtest --------------------------------------------------
def candidate_values(signals: Mapping) -> set[str]:
    """The values of a payment that any list could hold."""
    values = set()
    for names in SIGNALS_OF_KIND.values():
        for name in names:
            value = signals.get(name)
            if isinstance(value, str) and value:
                values.add(value)
    return values


def listed_values(*, merchant_id: int, livemode: bool, values: Iterable[str], now: dt.datetime | None = None) -> set[tuple[str, str]]:
    """(list name, value) of the merchant's present, unexpired items holding any of
    `values` (the backtest's look-up; screening's is fraud.screening.reads, in one query
    with the rules)."""
    values = sorted(set(values))
    if not values:
        return set()
    now = now or timezone.now()
    rows = ListItem.objects.filter(
        merchant_id=merchant_id, livemode=livemode, value__in=values, removed_at__isnull=True,
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).values_list("list", "value")
    return set(rows)


def list_lookup(found: set[tuple[str, str]]):
    """The membership test the evaluator calls: values compared as lists store them."""

    def contains(list_name: str, value) -> bool:
        if not isinstance(value, str):
            return False
        kind = LISTS[list_name]
        normalised = value.lower() if kind == ListKind.EMAIL else value.upper() if kind == ListKind.COUNTRY else value
        return (list_name, normalised) in found

    return contains
