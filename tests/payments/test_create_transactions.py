"""The create path's two database transactions around the gateway call: before it, the
Idempotency-Key's claim, the payment (processing), its audit entries and its first attempt
commit together; after it, the attempt's outcome, the payment's transition, its audit entry,
the merchant's event and the Idempotency-Key's answer commit together. Observed from a
second PostgreSQL connection (what other processes see) and by the rows' xmin, the id of
the database transaction that wrote them; a crash anywhere leaves a state that a retry or
the stuck-transaction checker settles without charging twice."""

import datetime as dt
import threading

import psycopg
import pytest
import time_machine
from django.db import OperationalError, connection, connections
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEntry
from audit.sealing import audit_seal_pending, audit_verify
from core import idempotency
from core.models import IdempotencyRecord
from gateways.models import SimulatorCharge
from gateways.simulator.adapter import SimulatorGateway
from payments.models import PaymentAttempt, Transaction
from payments.services import transactions as transaction_services
from payments.services.gateway_keys import derived_key, gateway_key_base
from payments.tasks import check_stuck_transactions_task
from webhooks.models import OutboxEvent

URL = "/payment/transactions"
BODY = {"amount": 2750, "currency": "eur", "paymentMethod": "pm_card_visa"}
LATER = dt.timedelta(minutes=10)  # past the idempotency lock timeout and the stuck checker's grace

pytestmark = pytest.mark.django_db(transaction=True)


class Killed(BaseException):
    """The process dies: nothing in the request catches this."""


def committed(sql: str, params=()) -> list[tuple]:
    """What another process sees now: a query on a second connection, in autocommit."""
    db = connection.settings_dict
    with psycopg.connect(dbname=db["NAME"], host=db["HOST"], port=db["PORT"], user=db["USER"], autocommit=True,
                         options=db["OPTIONS"].get("options", "")) as other:  # FlowPay's search_path
        return other.execute(sql, params).fetchall()


def count_commits(monkeypatch) -> list[None]:
    """Every COMMIT this thread's connection makes from now on (one item each)."""
    made: list[None] = []
    wrapper = connections["default"]
    real_commit = wrapper.commit

    def commit():
        made.append(None)
        return real_commit()

    monkeypatch.setattr(wrapper, "commit", commit)
    return made


def writers(txn_id: int) -> dict[str, object]:
    """The committed rows of a payment with the id of the database transaction that last
    wrote each (xmin)."""
    (txn,) = committed("SELECT xmin::text, status, idempotency_record_id FROM transactions WHERE id = %s", [txn_id])
    return {
        "transaction": txn,
        "record": committed("SELECT xmin::text, status FROM payments_idempotencyrecord WHERE id = %s", [txn[2]]) if txn[2] else [],
        "attempts": committed("SELECT xmin::text, outcome FROM payments_paymentattempt WHERE transaction_id = %s ORDER BY number", [txn_id]),
        "audit": committed(
            "SELECT xmin::text, action FROM audit_entry WHERE object_id = (SELECT public_id FROM transactions WHERE id = %s) "
            "ORDER BY id", [txn_id],
        ),
        "events": committed(
            "SELECT xmin::text, type FROM webhooks_outboxevent WHERE payload->>'id' = (SELECT public_id FROM transactions WHERE id = %s)",
            [txn_id],
        ),
    }


def test_claim_payment_audit_and_first_attempt_commit_together_before_the_call_and_the_outcome_after(merchant_a, monkeypatch):
    seen_during_the_call = {}
    charge = SimulatorGateway.authorize

    def authorize_observed(self, *, payment, idempotency_key):
        txn = Transaction.objects.get(public_id=payment.flowpay_reference)
        seen_during_the_call.update(writers(txn.pk), key=idempotency_key)
        return charge(self, payment=payment, idempotency_key=idempotency_key)

    monkeypatch.setattr(SimulatorGateway, "authorize", authorize_observed)
    commits = count_commits(monkeypatch)
    response = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-2750")
    assert response.status_code == 201, response.content
    txn = Transaction.objects.get(public_id=response.json()["id"])

    # before the call, one committed database transaction held the claim, the payment, its
    # two audit entries and its first attempt, under the key derived from the merchant's
    before = seen_during_the_call
    tx_a = before["transaction"][0]
    assert before["transaction"][1] == "processing"
    assert before["record"] == [(tx_a, "in_flight")]
    assert before["attempts"] == [(tx_a, "started")]
    assert before["audit"] == [(tx_a, "transaction.create"), (tx_a, "transaction.processing")]
    assert before["events"] == []
    assert before["key"] == derived_key(base=gateway_key_base(idempotency_record_id=txn.idempotency_record_id), number=1)

    # after it, one other database transaction wrote the outcome, its audit entry, the
    # merchant's event and the key's answer
    after = writers(txn.pk)
    tx_b = after["transaction"][0]
    assert tx_b != tx_a and after["transaction"][1] == "completed"
    assert after["record"] == [(tx_b, "completed")]
    assert after["attempts"] == [(tx_b, "succeeded")]
    assert after["audit"] == [(tx_a, "transaction.create"), (tx_a, "transaction.processing"), (tx_b, "transaction.completed")]
    assert after["events"] == [(tx_b, "transaction.completed")]

    # and the response, the stored answer and the event are one rendering of the payment
    record = IdempotencyRecord.objects.get(pk=txn.idempotency_record_id)
    event = OutboxEvent.objects.get(payload__id=txn.public_id)
    assert record.response_status == 201 and event.payload == response.json()
    replay = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-2750")
    assert replay.json() == response.json() and replay["Idempotent-Replayed"] == "true"

    # those two are the create path's only commits (the simulator's own record is one
    # statement in autocommit; the replay commits nothing)
    assert len(commits) == 2


def test_a_crash_between_the_gateway_call_and_the_outcome_is_settled_once_and_answered_on_retry(
    merchant_a, monkeypatch, celery_eager,
):
    # given a request killed after the gateway charged, before the outcome was recorded
    def killed(**kwargs):
        raise Killed()

    monkeypatch.setattr(transaction_services, "_transaction_record_authorization", killed)
    with pytest.raises(Killed):
        merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-killed")
    monkeypatch.undo()
    (txn,) = Transaction.objects.all()
    assert txn.status == "processing" and [a.outcome for a in txn.attempts.all()] == ["started"]
    assert IdempotencyRecord.objects.get(key="order-killed").status == "in_flight"
    assert SimulatorCharge.objects.count() == 1

    # an immediate retry waits (the first request may still be running)
    assert merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-killed").status_code == 409

    with time_machine.travel(timezone.now() + LATER, tick=True):
        # the stuck-transaction checker asks the gateway under the attempt's key: charged
        assert check_stuck_transactions_task() == 1
        txn.refresh_from_db()
        assert txn.status == "completed"
        # and the retry after the lock timeout answers that payment, charging nothing more
        retry = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-killed")
    assert retry.status_code == 201 and retry.json()["id"] == txn.public_id and retry.json()["status"] == "completed"
    assert Transaction.objects.count() == 1
    assert SimulatorCharge.objects.get().call_count == 1
    assert IdempotencyRecord.objects.get(key="order-killed").status == "completed"


def test_a_failure_before_the_first_commit_leaves_nothing_and_a_retry_runs_afresh(merchant_a, monkeypatch):
    # given the database lost while the payment and its first attempt were being written
    def database_gone(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(transaction_services, "_attempt_insert", database_gone)
    first = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-lost")
    monkeypatch.undo()

    # then nothing was committed: no claim, no payment, no audit entry, nothing sent
    assert first.status_code == 503
    assert not IdempotencyRecord.objects.exists() and not Transaction.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="transaction.").exists()
    assert not SimulatorCharge.objects.exists()
    # and the retry with the same key is a first request
    retry = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-lost")
    assert retry.status_code == 201 and retry.json()["status"] == "completed"
    assert Transaction.objects.count() == SimulatorCharge.objects.count() == 1


def test_the_outcome_its_audit_its_event_and_the_answer_are_written_together_or_not_at_all(merchant_a, monkeypatch, celery_eager):
    # given the database lost as the answer was being stored, the last write of the outcome
    def database_gone(self, *args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(idempotency.IdempotencyClaim, "complete", database_gone)
    first = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-half")
    monkeypatch.undo()
    assert first.status_code == 503

    # then none of the outcome was committed: the payment is as the call left it
    (txn,) = Transaction.objects.all()
    assert (txn.status, txn.attempts.get().outcome) == ("processing", "started")
    assert list(AuditEntry.objects.filter(object_id=txn.public_id).order_by("id").values_list("action", flat=True)) == [
        "transaction.create", "transaction.processing",
    ]
    assert not OutboxEvent.objects.exists()
    assert IdempotencyRecord.objects.get(key="order-half").status == "in_flight"

    # and it is settled from the gateway's record, once, then answered to the retry
    with time_machine.travel(timezone.now() + LATER, tick=True):
        assert check_stuck_transactions_task() == 1
        retry = merchant_a.client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-half")
    assert retry.status_code == 201 and retry.json()["status"] == "completed"
    assert OutboxEvent.objects.filter(type="transaction.completed").count() == 1
    assert SimulatorCharge.objects.get().call_count == 1


def test_a_request_that_loses_the_claim_to_a_concurrent_one_is_answered_409_and_sends_nothing(merchant_a, monkeypatch):
    # given a first request holding its claim uncommitted (inside its first transaction)
    inside_first_transaction, second_looked_up = threading.Event(), threading.Event()
    real_attempt_insert, real_lookup = transaction_services._attempt_insert, idempotency.idempotency_lookup
    lost = []

    def attempt_insert_slowly(**kwargs):  # inside the first transaction, after the claim
        if threading.current_thread().name == "first":
            inside_first_transaction.set()
            second_looked_up.wait(10)
            threading.Event().wait(0.3)  # the second request reaches the claim and waits on it
        return real_attempt_insert(**kwargs)

    def lookup_seen(**kwargs):
        found = real_lookup(**kwargs)
        if threading.current_thread().name == "second":
            second_looked_up.set()
        return found

    def claim_spied(self):
        try:
            return real_claim(self)
        except idempotency.IdempotencyKeyTaken:
            lost.append(threading.current_thread().name)
            raise

    real_claim = idempotency.IdempotencyClaim.claim
    monkeypatch.setattr(transaction_services, "_attempt_insert", attempt_insert_slowly)
    monkeypatch.setattr("core.api.views.idempotency_lookup", lookup_seen)
    monkeypatch.setattr(idempotency.IdempotencyClaim, "claim", claim_spied)
    answers = {}

    def send(name):
        client = APIClient()  # one per thread
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {merchant_a.api_key}")
        answers[name] = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-race").status_code
        connection.close()

    first = threading.Thread(target=send, args=("first",), name="first")
    first.start()
    assert inside_first_transaction.wait(10)
    second = threading.Thread(target=send, args=("second",), name="second")
    second.start()
    first.join(30)
    second.join(30)

    # then the first made the payment and the second, which waited on its claim, lost
    assert answers == {"first": 201, "second": 409}
    assert lost == ["second"]
    assert Transaction.objects.count() == 1 and PaymentAttempt.objects.count() == 1
    assert SimulatorCharge.objects.get().call_count == 1


def test_the_audit_entries_written_together_verify_in_the_sealed_chain(merchant_a, settings):
    settings.FLOWPAY_AUDIT_SEAL_MIN_AGE_SECONDS = 0
    made = [
        merchant_a.client.post(URL, {**BODY, "paymentMethod": method}, format="json", HTTP_IDEMPOTENCY_KEY=f"chain-{n}")
        for n, method in enumerate(["pm_card_visa", "pm_card_chargeDeclinedInsufficientFunds", "pm_card_visa"])
    ]
    assert [response.status_code for response in made] == [201, 402, 201]
    entries = list(AuditEntry.objects.filter(action__startswith="transaction.").order_by("id"))
    assert [entry.action for entry in entries] == [
        "transaction.create", "transaction.processing", "transaction.completed",
        "transaction.create", "transaction.processing", "transaction.failed",
        "transaction.create", "transaction.processing", "transaction.completed",
    ]
    assert all(entry.mac and entry.nonce and entry.key_id for entry in entries)
    assert audit_seal_pending(batch_size=4) >= len(entries)
    report = audit_verify()
    assert report.ok, report.problems
    assert report.entries_unsealed == 0
