"""Read queries of the payments app. Merchant-scoped selectors take the caller's Scope
(core.selectors) and return only its merchant's rows of its mode: another merchant's id,
or an id of the other mode, is indistinguishable from a missing one."""

import datetime as dt

from django.conf import settings
from django.db.models import Case, CharField, Count, Max, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Lower
from django.utils import timezone

from core.db_routing import reads_from_replica
from core.selectors import Scope, get_by_public_id
from fraud.screening.signals import CustomerHistory
from payments.models import Customer, PaymentAttempt, PaymentMethod, Transaction, TransactionStatus
from payments.models.transactions import CAPTURED_STATES, INFLIGHT_STATES


def transaction_get(*, public_id: str, scope: Scope) -> Transaction:
    """UNSCOPED (staff, commands) sees every merchant's transactions in both modes."""
    query = Transaction.objects.select_related("merchant", "customer", "fraud_decision")
    return get_by_public_id(query, public_id=public_id, label="transaction", scope=scope)


def transactions_list(
    *,
    scope: Scope,
    statuses: list[str] | None = None,
    gateway: str | None = None,
    customer_public_id: str | None = None,
    created_gte: dt.datetime | None = None,
    created_lte: dt.datetime | None = None,
) -> QuerySet[Transaction]:
    query = scope.apply(Transaction.objects.select_related("customer", "fraud_decision"))
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


def transaction_outcomes_since(since: dt.datetime) -> tuple[int, int]:
    """(processed, failed): payments created since `since` that reached a final outcome,
    and how many of them failed. One aggregate on the created_at index."""
    counts = (
        Transaction.objects.filter(created_at__gte=since)
        .exclude(status__in=INFLIGHT_STATES)
        .aggregate(processed=Count("id"), failed=Count("id", filter=Q(status=TransactionStatus.FAILED)))
    )
    return counts["processed"], counts["failed"]


def customer_fraud_history(*, customer: Customer, currency: str, exclude_transaction_id: int | None = None) -> CustomerHistory:
    """What fraud screening weighs of a customer: earlier successful (captured) payments, the
    ones disputed (a chargeback took funds), and the average successful amount in `currency`
    (integer division of minor units: no floats). One aggregate on the customer's payments."""
    query = Transaction.objects.filter(customer=customer)
    if exclude_transaction_id is not None:
        query = query.exclude(pk=exclude_transaction_id)
    in_currency = Q(status__in=CAPTURED_STATES, currency=currency)
    totals = query.aggregate(
        successful=Count("id", filter=Q(status__in=CAPTURED_STATES)),
        disputed=Count("id", filter=Q(disputed=True)),
        in_currency=Count("id", filter=in_currency),
        amount_in_currency=Sum("amount", filter=in_currency, default=0),
    )
    average = totals["amount_in_currency"] // totals["in_currency"] if totals["in_currency"] else None
    return CustomerHistory(created_at=customer.created_at, successful_payments=totals["successful"],
                           prior_disputes=totals["disputed"], average_amount=average)


def customer_get(*, public_id: str, scope: Scope, param: str = "id") -> Customer:
    return get_by_public_id(Customer.objects.all(), public_id=public_id, label="customer", scope=scope, param=param)


def customers_list(*, scope: Scope, email: str | None = None) -> QuerySet[Customer]:
    query = scope.apply(Customer.objects.all())
    if email:
        query = query.filter(email__iexact=email)
    return query


def payment_method_get_saved(*, public_id: str, scope: Scope) -> PaymentMethod | None:
    """The saved method with this id in the caller's scope (None when it has none)."""
    return scope.apply(PaymentMethod.objects.filter(public_id=public_id)).select_related("customer").first()


def payment_methods_for_customer(*, customer: Customer) -> QuerySet[PaymentMethod]:
    return PaymentMethod.objects.filter(customer=customer)


# --- runbook commands (query_failed_transactions, payment_method_success_rates,
# find_stuck_transactions): aggregates are computed by the database ------------------------


def transactions_failed_since(*, since: dt.datetime) -> QuerySet[Transaction]:
    """Failed payments created at or after `since` (every merchant)."""
    return Transaction.objects.filter(status=TransactionStatus.FAILED, created_at__gte=since)


def transactions_failed_summary(*, since: dt.datetime) -> list[dict]:
    """[{"failure_code", "gateway", "count"}] of failed payments since `since`, most frequent first."""
    return list(
        transactions_failed_since(since=since)
        .order_by()
        .values("failure_code", "gateway")
        .annotate(count=Count("id"))
        .order_by("-count", "failure_code", "gateway")
    )


def transactions_failed_latest(*, since: dt.datetime, limit: int) -> list[Transaction]:
    return list(transactions_failed_since(since=since).select_related("merchant").order_by("-created_at", "-id")[:limit])


# Card brands recognised in Stripe-style test tokens (pm_card_visa, tok_mastercard, ...).
CARD_BRANDS = ("visa", "mastercard", "amex", "discover", "diners", "jcb", "unionpay")
# A payment succeeded when it was authorized (captured or not, refunded since or not).
SUCCESSFUL_PAYMENT_STATES = (TransactionStatus.AUTHORIZED, *CAPTURED_STATES)


def payment_method_family():
    """The payment method family of a transaction, as a database expression:
    1. a saved method with a brand → that brand, lower-cased (visa, mastercard, ...);
    2. a PayPal payment → "paypal";
    3. a gateway token naming a brand (pm_card_visa, pm_card_visa_debit, tok_visa) → the brand;
    4. any other card token (pm_card_…, tok_…, card_…) → "card";
    5. anything else (opaque tokens) → "other"."""
    brand_rules = [
        When(
            Q(payment_method_token__startswith=f"pm_card_{brand}") | Q(payment_method_token__startswith=f"tok_{brand}"),
            then=Value(brand),
        )
        for brand in CARD_BRANDS
    ]
    return Case(
        When(saved_payment_method__brand__gt="", then=Lower("saved_payment_method__brand")),
        When(gateway="paypal", then=Value("paypal")),
        *brand_rules,
        When(
            Q(payment_method_token__startswith="pm_card_")
            | Q(payment_method_token__startswith="tok_")
            | Q(payment_method_token__startswith="card_"),
            then=Value("card"),
        ),
        default=Value("other"),
        output_field=CharField(),
    )


@reads_from_replica
def payment_success_counts(*, since: dt.datetime, by_gateway: bool) -> list[dict]:
    """Payments created since `since` with a final outcome, grouped by payment method family
    (and gateway): [{"method", ("gateway",) "attempts", "succeeded", "failed", "in_flight"}].
    `attempts` = succeeded + failed; in-flight and canceled payments are not attempts."""
    keys = ["method", "gateway"] if by_gateway else ["method"]
    rows = (
        Transaction.objects.filter(created_at__gte=since)
        .order_by()
        .annotate(method=payment_method_family())
        .values(*keys)
        .annotate(
            succeeded=Count("id", filter=Q(status__in=SUCCESSFUL_PAYMENT_STATES)),
            failed=Count("id", filter=Q(status=TransactionStatus.FAILED)),
            in_flight=Count("id", filter=Q(status__in=INFLIGHT_STATES)),
        )
        .order_by(*keys)
    )
    return [{**row, "attempts": row["succeeded"] + row["failed"]} for row in rows]


def stuck_threshold() -> dt.timedelta:
    """Processing this long is stuck for operators (find_stuck_transactions)."""
    return dt.timedelta(seconds=settings.FLOWPAY_STUCK_AFTER_SECONDS)


def stuck_check_threshold() -> dt.timedelta:
    """The checker asks the gateway about a call whose answer is missing once it is this old."""
    return dt.timedelta(seconds=settings.FLOWPAY_STUCK_CHECK_AFTER_SECONDS)


def transactions_stuck(*, older_than: dt.timedelta | None = None):
    """Processing payments whose last gateway call started before the threshold (counted
    from the last attempt, so retries and failovers in progress are not mistaken for stuck)."""
    cutoff = timezone.now() - (older_than or stuck_threshold())
    return (
        Transaction.objects.filter(status=TransactionStatus.PROCESSING, processing_started_at__lt=cutoff)
        .annotate(last_attempt_started_at=Max("attempts__started_at"))
        .filter(Q(last_attempt_started_at__lt=cutoff) | Q(last_attempt_started_at__isnull=True))
        .select_related("merchant")
        .order_by("processing_started_at")
    )


def unanswered_attempts(*, cutoff: dt.datetime) -> Q:
    """Attempts whose answer is missing: lost (outcome unknown), or started before `cutoff`
    and never finished (the process died during the call; callers pass a cutoff later than
    any gateway call can last)."""
    return Q(outcome=PaymentAttempt.Outcome.UNKNOWN) | Q(outcome=PaymentAttempt.Outcome.STARTED, started_at__lt=cutoff)


def transactions_with_unknown_capture_or_void(*, older_than: dt.timedelta | None = None) -> QuerySet[Transaction]:
    """Authorized (or requires_action) payments with a capture or void whose answer is
    missing (unanswered_attempts) and that started before the threshold: the gateway may have
    captured or canceled them while FlowPay still shows them authorized."""
    cutoff = timezone.now() - (older_than or stuck_check_threshold())
    lost = PaymentAttempt.objects.filter(  # a few rows, through the partial index attempt_unanswered_idx
        unanswered_attempts(cutoff=cutoff), started_at__lt=cutoff,
        operation__in=[PaymentAttempt.Operation.CAPTURE, PaymentAttempt.Operation.VOID],
    )
    return (
        Transaction.objects.filter(status__in=[TransactionStatus.AUTHORIZED, TransactionStatus.REQUIRES_ACTION])
        .filter(pk__in=lost.values("transaction_id"))
        .select_related("merchant")
        .order_by("updated_at")
    )


def transactions_with_unknown_capture_or_void_and_attempt(*, older_than: dt.timedelta | None = None) -> QuerySet[Transaction]:
    """transactions_with_unknown_capture_or_void, each annotated with its latest unanswered
    capture or void (one statement however many rows): unanswered_number, unanswered_operation,
    unanswered_error, unanswered_started_at."""
    cutoff = timezone.now() - (older_than or stuck_check_threshold())
    unanswered = PaymentAttempt.objects.filter(
        unanswered_attempts(cutoff=cutoff), transaction=OuterRef("pk"),
        operation__in=[PaymentAttempt.Operation.CAPTURE, PaymentAttempt.Operation.VOID],
    ).order_by("-number")
    return transactions_with_unknown_capture_or_void(older_than=older_than).annotate(
        unanswered_number=Subquery(unanswered.values("number")[:1]),
        unanswered_operation=Subquery(unanswered.values("operation")[:1]),
        unanswered_error=Subquery(unanswered.values("error_code")[:1]),
        unanswered_started_at=Subquery(unanswered.values("started_at")[:1]),
    )


def transactions_stuck_with_last_attempt(*, older_than: dt.timedelta | None) -> QuerySet[Transaction]:
    """The stuck transactions (transactions_stuck) annotated with
    their last gateway attempt: last_attempt_number, last_attempt_operation,
    last_attempt_outcome, last_attempt_error."""
    last = PaymentAttempt.objects.filter(transaction=OuterRef("pk")).order_by("-number")
    return transactions_stuck(older_than=older_than).annotate(
        last_attempt_number=Subquery(last.values("number")[:1]),
        last_attempt_operation=Subquery(last.values("operation")[:1]),
        last_attempt_outcome=Subquery(last.values("outcome")[:1]),
        last_attempt_error=Subquery(last.values("error_code")[:1]),
    )
