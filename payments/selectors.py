"""Read queries of the payments app. Merchant-scoped selectors return only that
merchant's rows: another merchant's id is indistinguishable from a missing one."""

import datetime as dt

from django.db.models import QuerySet

from flowpay.errors import NotFound
from payments.models import Customer, Merchant, PaymentMethod, Transaction
from payments.models.transactions import INFLIGHT_STATES


def transaction_get(*, public_id: str, merchant: Merchant | None) -> Transaction:
    """`merchant=None` means a staff caller who may see every merchant's transactions."""
    query = Transaction.objects.select_related("merchant", "customer")
    if merchant is not None:
        query = query.filter(merchant=merchant)
    txn = query.filter(public_id=public_id).first()
    if txn is None:
        raise NotFound(f"No such transaction: '{public_id[:64]}'", param="id")
    return txn


def transactions_list(
    *,
    merchant: Merchant | None,
    statuses: list[str] | None = None,
    gateway: str | None = None,
    customer_public_id: str | None = None,
    created_gte: dt.datetime | None = None,
    created_lte: dt.datetime | None = None,
) -> QuerySet[Transaction]:
    query = Transaction.objects.select_related("customer")
    if merchant is not None:
        query = query.filter(merchant=merchant)
    if statuses:
        query = query.filter(status__in=statuses)
    if gateway:
        query = query.filter(gateway=gateway)
    if customer_public_id:
        query = query.filter(customer__public_id=customer_public_id)
    if created_gte:
        query = query.filter(created_at__gte=created_gte)
    if created_lte:
        query = query.filter(created_at__lte=created_lte)
    return query


def transactions_inflight_count() -> int:
    return Transaction.objects.filter(status__in=INFLIGHT_STATES).count()


def customer_get(*, public_id: str, merchant: Merchant | None, param: str = "id") -> Customer:
    query = Customer.objects.all()
    if merchant is not None:
        query = query.filter(merchant=merchant)
    customer = query.filter(public_id=public_id).first()
    if customer is None:
        raise NotFound(f"No such customer: '{public_id[:64]}'", param=param)
    return customer


def customers_list(*, merchant: Merchant | None, email: str | None = None) -> QuerySet[Customer]:
    query = Customer.objects.all()
    if merchant is not None:
        query = query.filter(merchant=merchant)
    if email:
        query = query.filter(email__iexact=email)
    return query


def payment_method_get_saved(*, public_id: str, merchant: Merchant) -> PaymentMethod | None:
    return PaymentMethod.objects.filter(merchant=merchant, public_id=public_id).select_related("customer").first()


def payment_methods_for_customer(*, customer: Customer) -> QuerySet[PaymentMethod]:
    return PaymentMethod.objects.filter(customer=customer)
