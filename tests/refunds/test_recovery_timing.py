"""A refund whose worker died in the middle of the gateway call settles within two minutes
with the default settings, and never sooner than its claim allows (a call that may still be
on its way is never sent a second time)."""

import datetime as dt

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from core.actors import Actor
from refunds.models import Refund, RefundStatus
from refunds.services import create, execution
from tests.support.refunds import run_queued, simulator_refund_records

pytestmark = pytest.mark.django_db

WORKER = Actor.worker("refunds.execute")


def test_a_refund_whose_worker_died_mid_call_settles_within_two_minutes(merchant_a, make_payment, queued_refunds):
    # given a refund whose worker claimed its attempt and was killed before any answer
    txn = make_payment(merchant_a, amount=2000)
    refund = create.refund_create(transaction_id=txn.pk, amount=500, reason="Customer service request",
                                  actor=Actor(type="api", id="test-key", merchant_id=merchant_a.merchant.pk))
    queued_refunds.clear()
    execution._refund_begin_attempt(refund_id=refund.pk, actor=WORKER)
    killed_at = timezone.now()

    # while its claim may still cover a call on its way, the sweeper leaves it alone
    with time_machine.travel(killed_at + dt.timedelta(seconds=settings.FLOWPAY_REFUND_CLAIM_SECONDS - 5), tick=False):
        assert execution.refunds_requeue_stalled() == 0

    # the first sweep after the claim expired queues it again, and the take-over settles it
    first_sweep = killed_at + dt.timedelta(
        seconds=settings.FLOWPAY_REFUND_CLAIM_SECONDS + settings.FLOWPAY_REFUND_REQUEUE_INTERVAL_SECONDS
    )
    with time_machine.travel(first_sweep, tick=False):
        assert execution.refunds_requeue_stalled() == 1
        run_queued(queued_refunds)
        refund = Refund.objects.get(pk=refund.pk)
    assert refund.status == RefundStatus.SUCCEEDED
    assert first_sweep - killed_at < dt.timedelta(minutes=2)
    assert len(simulator_refund_records(txn)) == 1
