"""Four-eyes limits cannot be split: what one support user refunds on one payment, and over
24 hours in one currency, counts all their refunds that may move money, and two concurrent
requests are decided one after the other."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.test import APIClient

from accounts.services import staff_token_create
from audit.models import AuditEntry
from core.actors import Actor
from payments.models import Transaction
from refunds.models import Refund
from tests.refunds.test_concurrency import run_in_threads
from tests.support.refunds import refund_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    settings.FLOWPAY_SUPPORT_REFUND_LIMIT = 10000
    settings.FLOWPAY_SUPPORT_REFUND_DAILY_LIMIT = 25000


def _refund(client, txn, amount: int):
    response = client.post(refund_url(txn), {"amount": amount, "reason": "customer asked"}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def _statuses(txn) -> list[str]:
    return list(Refund.objects.filter(transaction=txn).order_by("id").values_list("status", flat=True))


def test_five_refunds_of_the_limit_on_one_payment_need_approval_after_the_first(
    merchant_a, make_payment, staff_api, limits, queued_refunds
):
    # given a 50,000 payment, whose refund in one go would need approval
    txn = make_payment(merchant_a, amount=50000)
    support = staff_api("support", "sam")

    # when a support user asks for it as five 10,000 refunds
    results = [_refund(support, txn, 10000)["status"] for _ in range(5)]

    # then only the first, within the limit, goes alone; the rest wait for a second person
    assert results == ["pending"] + ["requires_approval"] * 4
    entry = AuditEntry.objects.filter(action="refund.create", object_id=Refund.objects.filter(transaction=txn).order_by("id").last().public_id).get()
    assert entry.details["requester_total_on_payment"] == 50000 and entry.details["limit"] == 10000


def test_awaiting_in_flight_and_unknown_outcomes_count_but_known_failures_do_not(
    merchant_a, make_payment, staff_api, limits, queued_refunds
):
    txn = make_payment(merchant_a, amount=50000)
    support = staff_api("support", "sam")
    assert _refund(support, txn, 8000)["status"] == "pending"
    # a refund known to have refunded nothing no longer counts
    Refund.objects.filter(transaction=txn).update(status="failed", holds_reservation=False)
    assert _refund(support, txn, 8000)["status"] == "pending"
    # one whose outcome is unknown may have refunded: it counts
    Refund.objects.filter(transaction=txn, status="pending").update(status="failed", outcome_unknown=True)
    assert _refund(support, txn, 3000)["status"] == "requires_approval"
    # and what awaits approval counts too
    assert _refund(support, txn, 1000)["status"] == "requires_approval"


def test_another_users_refunds_do_not_count_and_approvers_and_merchants_are_not_limited(
    merchant_a, make_payment, staff_api, limits, queued_refunds
):
    txn = make_payment(merchant_a, amount=50000)
    assert _refund(staff_api("support", "sam"), txn, 9000)["status"] == "pending"
    assert _refund(staff_api("support", "sue"), txn, 9000)["status"] == "pending"
    assert _refund(staff_api("finance", "fay"), txn, 20000)["status"] == "pending"
    assert _refund(merchant_a.client, txn, 12000)["status"] == "pending"


def test_the_daily_limit_counts_every_payment_in_one_currency_over_24_hours(
    merchant_a, make_payment, staff_api, limits, queued_refunds
):
    support = staff_api("support", "sam")
    usd = [make_payment(merchant_a, amount=20000) for _ in range(4)]
    eur = make_payment(merchant_a, amount=20000, currency="EUR")

    assert [_refund(support, txn, 9000)["status"] for txn in usd[:3]] == ["pending", "pending", "requires_approval"]
    assert _refund(support, eur, 9000)["status"] == "pending"  # another currency, its own total
    # refunds older than 24 hours no longer count
    Refund.objects.filter(currency="USD").update(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=25))
    assert _refund(support, usd[3], 9000)["status"] == "pending"


def test_a_support_user_retries_a_failed_refund_only_within_their_limits(
    merchant_a, make_payment, staff_api, limits, queued_refunds
):
    txn = make_payment(merchant_a, amount=50000)
    support = staff_api("support", "sam")
    first = _refund(support, txn, 9000)
    Refund.objects.filter(public_id=first["id"]).update(status="failed", holds_reservation=False)
    Transaction.objects.filter(pk=txn.pk).update(amount_refund_reserved=0)
    assert _refund(support, txn, 9000)["status"] == "pending"

    refused = support.post(f"/payment/refunds/{first['id']}/retry", {}, format="json")
    assert refused.status_code == 403 and "four-eyes" in refused.json()["error"]["message"]
    assert Refund.objects.get(public_id=first["id"]).status == "failed"
    assert staff_api("finance", "fay").post(f"/payment/refunds/{first['id']}/retry", {}, format="json").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_by_one_user_cannot_both_pass_the_daily_limit(merchant_a, make_payment, limits, queued_refunds):
    # given one support user, two payments, and room under the daily limit for one 9,000 refund more
    secret = staff_token_create(username="sam", role="support", actor=Actor.system("test")).secret
    warmup, first, second = (make_payment(merchant_a, amount=20000) for _ in range(3))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert _refund(client, warmup, 9000)["status"] == "pending"

    def refund(index: int):
        thread_client = APIClient()
        thread_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        response = thread_client.post(refund_url((first, second)[index % 2]), {"amount": 9000, "reason": "x"}, format="json")
        return response.status_code, response.json()["status"]

    # when it sends four 9,000 refunds on the two payments at once
    results = run_in_threads(4, refund)

    # then exactly one goes alone
    assert sorted(results) == [(201, "pending"), (201, "requires_approval"), (201, "requires_approval"), (201, "requires_approval")]
    user = get_user_model().objects.get(username="sam")
    assert Refund.objects.filter(requested_by_user=user, approval_required=False).count() == 2
    connection.close()
