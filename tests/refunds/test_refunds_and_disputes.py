"""Refunds and disputes together never take out more than was captured: a dispute on money
already refunded (or being refunded) is recorded as such and withdraws only what the payment
still holds, enforced by a database constraint, under concurrency too."""

import threading

import pytest
from django.db import IntegrityError, connection, transaction

from core.actors import Actor
from payments.models import Transaction
from refunds.models import Chargeback, Refund, RefundStatus
from refunds.services.chargebacks import chargeback_accept, chargeback_create, chargeback_record_outcome
from refunds.services.create import refund_create, refund_reject
from refunds.services.execution import refund_execute

SYSTEM = Actor.system("test")


def _money_out(txn: Transaction) -> int:
    txn.refresh_from_db()
    return txn.amount_refunded + txn.amount_disputed


def test_a_dispute_on_a_fully_refunded_payment_is_recorded_but_takes_nothing_twice(merchant_a, make_payment, queued_refunds):
    # given a 30.00 payment refunded in full
    txn = make_payment(merchant_a, amount=3000)
    refund = refund_create(transaction_id=txn.pk, amount=None, reason="customer asked", actor=SYSTEM)
    refund_execute(refund_id=refund.pk, actor=SYSTEM)
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.SUCCEEDED

    # when the cardholder disputes it anyway and the merchant accepts
    chargeback, _ = chargeback_create(transaction_id=txn.pk, chargeback_reference="CB-R1", amount=3000,
                                      reason="fraudulent", actor=SYSTEM)
    chargeback = chargeback_accept(chargeback_id=chargeback.pk, actor=SYSTEM)

    # then the dispute is recorded, on refunded money, and the books lose the 30.00 once
    assert (chargeback.status, chargeback.amount_withdrawn, chargeback.amount_on_refunded_funds) == ("accepted", 0, 3000)
    assert _money_out(txn) == 3000
    txn.refresh_from_db()
    assert (txn.amount_refunded, txn.amount_disputed) == (3000, 0)


def test_a_dispute_lost_while_a_refund_is_in_flight_withdraws_only_what_is_left(merchant_a, make_payment, queued_refunds):
    txn = make_payment(merchant_a, amount=10000)
    refund = refund_create(transaction_id=txn.pk, amount=4000, reason="partial", actor=SYSTEM)  # reserved, queued
    chargeback, _ = chargeback_create(transaction_id=txn.pk, chargeback_reference="CB-R2", amount=10000,
                                      reason="fraudulent", actor=SYSTEM)

    chargeback = chargeback_record_outcome(chargeback_id=chargeback.pk, outcome="lost", actor=SYSTEM)
    assert (chargeback.amount_withdrawn, chargeback.amount_on_refunded_funds) == (6000, 4000)

    # the refund then succeeds: 4,000 refunded + 6,000 withdrawn = what was captured
    refund_execute(refund_id=refund.pk, actor=SYSTEM)
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.SUCCEEDED
    assert _money_out(txn) == 10000


def test_when_the_covered_refund_does_not_happen_the_dispute_takes_that_part_instead(
    merchant_a, make_payment, settings, staff_user,
):
    settings.FLOWPAY_SUPPORT_REFUND_LIMIT = 100
    txn = make_payment(merchant_a, amount=10000)
    support = Actor.staff(user=staff_user("sue-support", "support"), ip=None)
    refund = refund_create(transaction_id=txn.pk, amount=4000, reason="needs approval", actor=support)
    assert refund.status == RefundStatus.REQUIRES_APPROVAL  # reserved until approved or rejected
    chargeback, _ = chargeback_create(transaction_id=txn.pk, chargeback_reference="CB-R3", amount=10000,
                                      reason="fraudulent", actor=SYSTEM)
    chargeback_record_outcome(chargeback_id=chargeback.pk, outcome="lost", actor=SYSTEM)

    # when finance rejects the refund, its reservation goes to the lost dispute
    refund_reject(refund_id=refund.pk, actor=Actor.staff(user=staff_user("fred-finance", "finance"), ip=None), reason="disputed")

    chargeback = Chargeback.objects.get(pk=chargeback.pk)
    assert (chargeback.amount_withdrawn, chargeback.amount_on_refunded_funds) == (10000, 0)
    txn.refresh_from_db()
    assert (txn.amount_refund_reserved, txn.amount_refunded, txn.amount_disputed) == (0, 0, 10000)


def test_the_database_refuses_refunds_and_disputes_beyond_the_capture(merchant_a, make_payment):
    txn = make_payment(merchant_a, amount=5000)
    Transaction.objects.filter(pk=txn.pk).update(amount_refund_reserved=3000)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE transactions SET amount_disputed = 2001, disputed = true WHERE id = %s", [txn.pk])


@pytest.mark.django_db(transaction=True)
def test_refunds_racing_a_lost_dispute_never_take_out_more_than_was_captured(merchant_a, make_payment, queued_refunds):
    # given a 100.00 payment, ten 10.00 refunds and the full dispute lost, all at once
    txn = make_payment(merchant_a, amount=10000)
    chargeback, _ = chargeback_create(transaction_id=txn.pk, chargeback_reference="CB-RACE", amount=10000,
                                      reason="fraudulent", actor=SYSTEM)
    start = threading.Barrier(11)
    errors: list[BaseException] = []

    def refund():
        try:
            start.wait()
            created = refund_create(transaction_id=txn.pk, amount=1000, reason="race", actor=SYSTEM)
            refund_execute(refund_id=created.pk, actor=SYSTEM)
        except Exception as exc:  # refused ones are expected: the dispute is open
            errors.append(exc)
        finally:
            connection.close()

    def lose():
        try:
            start.wait()
            chargeback_record_outcome(chargeback_id=chargeback.pk, outcome="lost", actor=SYSTEM)
        finally:
            connection.close()

    threads = [threading.Thread(target=refund) for _ in range(10)] + [threading.Thread(target=lose)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then money out (refunds made + funds withdrawn) is at most what came in
    assert _money_out(txn) <= 10000
    cb = Chargeback.objects.get(pk=chargeback.pk)
    assert cb.status == "lost" and cb.amount_withdrawn + cb.amount_on_refunded_funds == 10000
