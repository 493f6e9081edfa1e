"""The refund invariant under real concurrency (threads, real PostgreSQL): succeeded +
in-flight refunds never exceed the captured amount."""

import threading
from collections import Counter

import pytest
from django.db import connection
from django.db.models import Sum
from rest_framework.test import APIClient

from payments.models import Transaction
from refunds.models import Refund, RefundStatus
from refunds.services.create import refund_create
from tests.support.refunds import charge_of, refund_url

THREADS = 50


def run_in_threads(count: int, work) -> list:
    """Start `count` threads at once (a barrier) and collect what each returns; every thread
    closes its own database connection."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def target(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a refund thread hung"
    return results


@pytest.mark.django_db(transaction=True)
def test_50_concurrent_partial_refunds_never_exceed_the_captured_amount(merchant_a, make_payment, tasks_run_on_commit):
    # given a captured 100.00 payment and 50 clients refunding 3.00 each at once (150.00 asked)
    txn = make_payment(merchant_a, amount=10000)
    api_key = merchant_a.api_key

    def refund(index: int):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
        response = client.post(refund_url(txn), {"amount": 300, "reason": f"partial #{index}"}, format="json")
        return response.status_code, response.json()

    # when they all hit the API (each accepted refund is executed by the task at commit)
    results = run_in_threads(THREADS, refund)

    # then exactly 33 are accepted and the others get a stable 4xx code, never a 5xx
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 33, 400: 17}, statuses
    assert {body["error"]["code"] for status, body in results if status == 400} == {"amount_too_large"}

    # and the money adds up everywhere: refunds, the transaction and the gateway
    txn.refresh_from_db()
    succeeded = Refund.objects.filter(transaction=txn, status=RefundStatus.SUCCEEDED).aggregate(total=Sum("amount"))["total"]
    assert succeeded == txn.amount_refunded == txn.amount_refund_reserved == 9900 <= txn.amount_captured
    assert txn.status == "partially_refunded"
    assert charge_of(txn).amount_refunded == 9900
    assert not Transaction.objects.filter(pk=txn.pk, amount_refund_reserved__gt=txn.amount_captured).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_of_different_sizes_and_omitted_amounts_stay_within_captured(merchant_a, make_payment,
                                                                                        queued_refunds):
    # given a 50.00 payment and 40 services refunding 1.00 to 4.00, or "what remains", at once
    from core.actors import Actor

    txn = make_payment(merchant_a, amount=5000)
    actor = Actor(type="api", id="concurrency", merchant_id=merchant_a.merchant.pk)

    def refund(index: int):
        amount = None if index % 10 == 0 else 100 * (1 + index % 4)
        try:
            return refund_create(transaction_id=txn.pk, amount=amount, reason="", actor=actor).amount
        except Exception as exc:  # noqa: BLE001
            return type(exc).__name__

    results = run_in_threads(40, refund)

    # then the reserved refunds sum to at most the captured amount, and the refusals are amount_too_large
    accepted = [r for r in results if isinstance(r, int)]
    assert sum(accepted) <= 5000
    assert set(r for r in results if not isinstance(r, int)) <= {"AmountTooLarge"}
    txn.refresh_from_db()
    assert txn.amount_refund_reserved == sum(accepted) == Refund.objects.aggregate(total=Sum("amount"))["total"]
