"""Never paying a refund twice: one gateway attempt at a time (the attempt claim), successes
recorded whoever reports them (recovery of failed refunds), unknown outcomes looked up at
the gateway once the idempotency key may have been forgotten, and unknown-outcome refunds
settled by the gateway's own report.

The gateway ("PSP") is the simulator unless said otherwise: its refund records
(SimulatorCharge rows with status "refund", one per idempotency key) count the refunds that
really went out."""

import datetime as dt
import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEntry
from core.actors import Actor
from core.errors import InvalidState
from gateways import registry
from gateways.base import (
    GatewayRequestError,
    GatewayTimeout,
    GatewayUnavailableError,
    OperationResult,
)
from gateways.simulator.adapter import SimulatorGateway
from gateways.stripe.adapter import StripeGateway
from refunds.models import Refund
from refunds.services import create, execution, outcome, recovery
from refunds.tasks import REFUND_MAX_RETRIES, refund_execute_task
from tests.support.refunds import charge_of, run_queued, simulator_refund_records

pytestmark = pytest.mark.django_db

WORKER = Actor.worker("refunds.execute")


def merchant_actor(account) -> Actor:
    return Actor(type="api", id="test-key", merchant_id=account.merchant.pk)


@pytest.fixture
def breaker_off(settings):
    settings.FLOWPAY_BREAKER_FAILURE_THRESHOLD = 10_000


@pytest.fixture
def refund_of(merchant_a, make_payment, queued_refunds, breaker_off):
    """A completed payment and a pending refund of it, queued (not run yet)."""

    def make(amount: int = 500, payment_amount: int = 2000) -> Refund:
        txn = make_payment(merchant_a, amount=payment_amount)
        refund = create.refund_create(transaction_id=txn.pk, amount=amount, reason="Customer service request",
                                      actor=merchant_actor(merchant_a))
        queued_refunds.clear()
        return refund

    return make


@pytest.fixture
def gateway_calls(monkeypatch) -> list[dict]:
    """Every refund call that reaches the simulator."""
    calls: list[dict] = []
    original = SimulatorGateway.refund
    monkeypatch.setattr(SimulatorGateway, "refund", lambda self, **kw: calls.append(kw) or original(self, **kw))
    return calls


def refunds_then_times_out(monkeypatch) -> None:
    """The simulator refunds, then the answer is lost."""
    original = SimulatorGateway.refund

    def refund(self, **kwargs):
        original(self, **kwargs)
        raise GatewayTimeout("response lost")

    monkeypatch.setattr(SimulatorGateway, "refund", refund)


def actions(refund: Refund) -> list[str]:
    return list(AuditEntry.objects.filter(object_id=refund.public_id).order_by("id").values_list("action", flat=True))


def expire_claim(refund: Refund) -> None:
    Refund.objects.filter(pk=refund.pk).update(in_flight_until=timezone.now() - dt.timedelta(seconds=1))


def age_key(refund: Refund, *, days: int = 2) -> None:
    Refund.objects.filter(pk=refund.pk).update(key_sent_at=timezone.now() - dt.timedelta(days=days))


# --- defect 1: one attempt at the gateway at a time --------------------------------------
def test_a_second_run_does_not_reach_the_gateway_while_an_attempt_is_in_flight(refund_of, gateway_calls, merchant_a,
                                                                              queued_refunds):
    # given run 1 has claimed the attempt (the reviewer's staging: a duplicate task arrives)
    refund = refund_of(amount=500)
    first = execution._refund_begin_attempt(refund_id=refund.pk, actor=WORKER)
    assert first is not None and first.token

    # when run 2 (requeue_stalled / acks_late redelivery) begins meanwhile, it is refused
    assert execution._refund_begin_attempt(refund_id=refund.pk, actor=WORKER) is None
    assert execution.refund_execute(refund_id=refund.pk, actor=WORKER).status == "processing"
    assert gateway_calls == []

    # and an error reported by a run that does not hold the claim is not recorded
    ignored = outcome.refund_record_outcome(refund_id=refund.pk, result=GatewayUnavailableError("x"), actor=WORKER,
                                            final_attempt=True, token="not-the-holder")
    assert ignored.status == "processing"

    # when run 1's final try finds the gateway unavailable: failed, nothing refunded, released
    out = outcome.refund_record_outcome(refund_id=refund.pk, result=GatewayUnavailableError("down"), actor=WORKER,
                                        final_attempt=True, token=first.token)
    assert (out.status, out.outcome_unknown, out.holds_reservation, out.attempt_token) == ("failed", False, False, "")

    # then a retry (fresh key) refunds exactly once at the gateway
    recovery.refund_retry(refund_id=refund.pk, actor=merchant_actor(merchant_a))
    execution.refund_execute(refund_id=refund.pk, actor=WORKER)
    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.attempts == 2
    assert [c["idempotency_key"] for c in gateway_calls] == [f"flowpay:{refund.public_id}:refund:2"]
    assert simulator_refund_records(refund.transaction).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_make_one_gateway_call_and_one_refund(merchant_a, make_payment, queued_refunds, breaker_off,
                                                             monkeypatch):
    # given a pending refund and a slow gateway
    txn = make_payment(merchant_a, amount=2000)
    refund = create.refund_create(transaction_id=txn.pk, amount=700, reason="x", actor=merchant_actor(merchant_a))
    calls: list[str] = []
    original = SimulatorGateway.refund

    def slow(self, **kwargs):
        calls.append(kwargs["idempotency_key"])
        time.sleep(0.5)
        return original(self, **kwargs)

    monkeypatch.setattr(SimulatorGateway, "refund", slow)

    # when five workers run it at the same moment
    barrier = threading.Barrier(5)
    errors: list[Exception] = []

    def work() -> None:
        try:
            barrier.wait(timeout=30)
            execution.refund_execute(refund_id=refund.pk, actor=WORKER, final_attempt=False)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then one call reached the gateway and the customer was refunded once
    assert not errors, errors
    refund.refresh_from_db()
    txn.refresh_from_db()
    assert calls == [refund.idempotency_key]
    assert refund.status == "succeeded" and refund.attempts == 1
    assert simulator_refund_records(txn).count() == 1 and charge_of(txn).amount_refunded == 700 == txn.amount_refunded


def test_an_expired_claim_is_taken_over_with_the_same_key_and_the_outcome_treated_as_unknown(refund_of, gateway_calls):
    refund = refund_of(amount=500)
    first = execution._refund_begin_attempt(refund_id=refund.pk, actor=WORKER)
    expire_claim(refund)  # the worker holding it was killed

    second = execution._refund_begin_attempt(refund_id=refund.pk, actor=WORKER)

    assert second is not None and second.token != first.token
    assert second.idempotency_key == first.idempotency_key
    assert second.refund.outcome_unknown and second.refund.attempts == 2
    assert "refund.claim_expired" in actions(refund)
    # the new holder's gateway unavailable on the final try: failed but still reserved (run 1 may have refunded)
    out = outcome.refund_record_outcome(refund_id=refund.pk, result=GatewayUnavailableError("down"), actor=WORKER,
                                        final_attempt=True, token=second.token)
    assert (out.status, out.outcome_unknown, out.holds_reservation) == ("failed", True, True)


def test_requeue_stalled_skips_a_refund_whose_attempt_is_in_flight(refund_of, queued_refunds):
    refund = refund_of(amount=500)
    execution._refund_begin_attempt(refund_id=refund.pk, actor=WORKER)
    Refund.objects.filter(pk=refund.pk).update(updated_at=timezone.now() - dt.timedelta(minutes=30),
                                               in_flight_until=timezone.now() + dt.timedelta(minutes=1))
    assert execution.refunds_requeue_stalled() == 0
    expire_claim(refund)
    assert execution.refunds_requeue_stalled() == 1 and queued_refunds == [refund.pk]


# --- defect 1: a late success is recovered, never dropped -------------------------------------
def test_a_late_holders_success_after_the_refund_failed_is_recovered_and_not_refunded_again(refund_of, merchant_a):
    # given run 1 is at the gateway when its claim expires; run 2 takes over and fails for good
    refund = refund_of(amount=500)
    late = execution._refund_begin_attempt(refund_id=refund.pk, actor=WORKER)
    expire_claim(refund)
    taker = execution._refund_begin_attempt(refund_id=refund.pk, actor=WORKER)
    outcome.refund_record_outcome(refund_id=refund.pk, result=GatewayUnavailableError("down"), actor=WORKER,
                                  final_attempt=True, token=taker.token)

    # when run 1's call finally refunds at the gateway and it reports back
    result = execution._gateway_refund(gateway_name=late.gateway_name, reference=late.charge_reference, refund=late.refund)
    out = outcome.refund_record_outcome(refund_id=refund.pk, result=result, actor=WORKER, final_attempt=False,
                                        token=late.token, idempotency_key=late.idempotency_key)

    # then the refund is recovered as succeeded, and a retry is refused: refunded once
    txn = refund.transaction
    txn.refresh_from_db()
    assert (out.status, out.gateway_reference) == ("succeeded", result.reference)
    assert (txn.status, txn.amount_refunded, txn.amount_refund_reserved) == ("partially_refunded", 500, 500)
    assert actions(refund)[-2:] == ["refund.recovered", "refund.succeeded"]
    with pytest.raises(InvalidState):
        recovery.refund_retry(refund_id=refund.pk, actor=merchant_actor(merchant_a))
    assert simulator_refund_records(txn).count() == 1


def test_a_success_after_a_known_failure_takes_the_reservation_again(refund_of, merchant_a):
    # given a refund failed with a known outcome (reservation released)
    refund = refund_of(amount=500)
    attempt = execution._refund_begin_attempt(refund_id=refund.pk, actor=WORKER)
    outcome.refund_record_outcome(refund_id=refund.pk, result=GatewayUnavailableError("down"), actor=WORKER,
                                  final_attempt=True, token=attempt.token)
    txn = refund.transaction
    txn.refresh_from_db()
    assert txn.amount_refund_reserved == 0

    # when a success for its key arrives all the same (a stale run: the reviewer's scenario)
    result = execution._gateway_refund(gateway_name=attempt.gateway_name, reference=attempt.charge_reference, refund=attempt.refund)
    out = outcome.refund_record_outcome(refund_id=refund.pk, result=result, actor=WORKER, final_attempt=False,
                                        token="stale", idempotency_key=attempt.idempotency_key)

    # then it is recorded, reserved again, and never refunded again by a retry
    txn.refresh_from_db()
    assert out.status == "succeeded" and out.holds_reservation
    assert (txn.amount_refunded, txn.amount_refund_reserved) == (500, 500)
    entry = AuditEntry.objects.get(action="refund.recovered", object_id=refund.public_id)
    assert entry.details["re_reserved"] is True
    with pytest.raises(InvalidState):
        recovery.refund_retry(refund_id=refund.pk, actor=merchant_actor(merchant_a))
    assert simulator_refund_records(txn).count() == 1


def test_a_success_whose_amount_was_taken_meanwhile_is_recorded_with_an_over_refund_alert(refund_of, merchant_a):
    # given a 15.00 refund of a 20.00 payment failed with a known outcome, and 10.00 refunded since
    refund = refund_of(amount=1500, payment_amount=2000)
    attempt = execution._refund_begin_attempt(refund_id=refund.pk, actor=WORKER)
    outcome.refund_record_outcome(refund_id=refund.pk, result=GatewayUnavailableError("down"), actor=WORKER,
                                  final_attempt=True, token=attempt.token)
    other = create.refund_create(transaction_id=refund.transaction_id, amount=1000, reason="x", actor=merchant_actor(merchant_a))
    run_queued([other.pk])

    # when the gateway reports the first one succeeded after all (inbound webhook)
    out, changed = recovery.refund_apply_gateway_result(refund_id=refund.pk, succeeded=True, reference="sim_re_late",
                                                        failure_code=None, actor=Actor.system("webhook"))

    # then it is succeeded (the money left) and an over-refund alert is raised for reconciliation
    assert changed and (out.status, out.gateway_reference) == ("succeeded", "sim_re_late")
    txn = refund.transaction
    txn.refresh_from_db()
    assert (txn.amount_refunded, txn.amount_refund_reserved) == (1000, 1000)  # within captured (CHECK constraints)
    alert = AuditEntry.objects.get(action="refund.over_refund_alert", object_id=refund.public_id)
    assert alert.result == "failure" and alert.details["amount"] == 1500
    assert AuditEntry.objects.get(action="refund.recovered", object_id=refund.public_id).details["re_reserved"] is False


def test_a_crashed_run_gives_up_its_claim(refund_of, monkeypatch):
    refund = refund_of(amount=500)
    monkeypatch.setattr(execution, "refund_record_outcome", lambda **kw: (_ for _ in ()).throw(RuntimeError("killed")))
    with pytest.raises(RuntimeError):
        execution.refund_execute(refund_id=refund.pk, actor=WORKER)
    refund.refresh_from_db()
    assert (refund.status, refund.attempt_token, refund.in_flight_until, refund.outcome_unknown) == (
        "processing", "", None, True)


# --- defect 2: unknown outcomes and forgotten keys ---------------------------------------
def test_an_unknown_outcome_with_a_key_older_than_retention_is_not_resent_without_a_lookup(
    refund_of, monkeypatch, merchant_a, django_capture_on_commit_callbacks, queued_refunds,
):
    # given a refund whose every call timed out, and a day and more since its key was first sent
    refund = refund_of(amount=800, payment_amount=1000)
    refunds_then_times_out(monkeypatch)
    refund_execute_task.apply(args=[refund.pk], retries=REFUND_MAX_RETRIES)
    refund.refresh_from_db()
    assert (refund.status, refund.outcome_unknown, refund.holds_reservation) == ("failed", True, True)
    age_key(refund)

    # and a gateway that cannot look refunds up (like PayPal)
    monkeypatch.delattr(SimulatorGateway, "find_refund")
    calls: list = []
    monkeypatch.setattr(SimulatorGateway, "refund", lambda self, **kw: calls.append(kw))

    # when it is retried
    with django_capture_on_commit_callbacks(execute=True):
        recovery.refund_retry(refund_id=refund.pk, actor=merchant_actor(merchant_a))
    run_queued(queued_refunds)

    # then nothing is re-sent: failed, outcome still unknown, still reserved, with a clear message
    refund.refresh_from_db()
    assert calls == []
    assert (refund.status, refund.failure_code, refund.outcome_unknown, refund.holds_reservation) == (
        "failed", "idempotency_key_expired", True, True)
    assert "reconcile manually" in refund.failure_message and refund.idempotency_key in refund.failure_message
    txn = refund.transaction
    txn.refresh_from_db()
    assert txn.amount_refund_reserved == 800 and simulator_refund_records(txn).count() == 1


def test_an_unknown_outcome_with_an_old_key_is_looked_up_and_found_without_resending(
    refund_of, monkeypatch, merchant_a, django_capture_on_commit_callbacks, queued_refunds,
):
    refund = refund_of(amount=800, payment_amount=1000)
    refunds_then_times_out(monkeypatch)
    refund_execute_task.apply(args=[refund.pk], retries=REFUND_MAX_RETRIES)
    age_key(refund)
    calls: list = []
    monkeypatch.setattr(SimulatorGateway, "refund", lambda self, **kw: calls.append(kw))

    with django_capture_on_commit_callbacks(execute=True):
        recovery.refund_retry(refund_id=refund.pk, actor=merchant_actor(merchant_a))
    run_queued(queued_refunds)

    refund.refresh_from_db()
    txn = refund.transaction
    txn.refresh_from_db()
    record = simulator_refund_records(txn).get()
    assert calls == []  # found by the lookup: the key was not sent again
    assert (refund.status, refund.gateway_reference) == ("succeeded", record.reference)
    assert txn.amount_refunded == 800 == charge_of(txn).amount_refunded


def test_an_unknown_outcome_with_an_old_key_that_the_gateway_never_made_is_sent_once(
    refund_of, monkeypatch, merchant_a, django_capture_on_commit_callbacks, queued_refunds, gateway_calls,
):
    # given a refund whose calls timed out before reaching the gateway (nothing refunded)
    refund = refund_of(amount=800, payment_amount=1000)
    original = SimulatorGateway.refund
    monkeypatch.setattr(SimulatorGateway, "refund", lambda self, **kw: (_ for _ in ()).throw(GatewayTimeout("lost")))
    refund_execute_task.apply(args=[refund.pk], retries=REFUND_MAX_RETRIES)
    age_key(refund)
    monkeypatch.setattr(SimulatorGateway, "refund", original)

    with django_capture_on_commit_callbacks(execute=True):
        recovery.refund_retry(refund_id=refund.pk, actor=merchant_actor(merchant_a))
    run_queued(queued_refunds)

    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.idempotency_key.endswith(":refund")
    assert simulator_refund_records(refund.transaction).count() == 1


def test_charge_already_refunded_after_a_timeout_means_the_money_went_out(refund_of, monkeypatch):
    # given a first call that timed out (outcome unknown)
    refund = refund_of(amount=500)
    answers = iter([
        GatewayTimeout("response lost"),
        OperationResult(succeeded=False, reference="ch", error_code="charge_already_refunded", message="already refunded"),
    ])

    def refund_call(self, **kwargs):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(SimulatorGateway, "refund", refund_call)
    assert execution.refund_execute(refund_id=refund.pk, actor=WORKER, final_attempt=False).outcome_unknown

    # when the re-send is refused as charge_already_refunded
    out = execution.refund_execute(refund_id=refund.pk, actor=WORKER, final_attempt=False)

    # then it is recorded succeeded (recovered), never failed with its reservation released
    txn = refund.transaction
    txn.refresh_from_db()
    assert (out.status, out.outcome_unknown, out.gateway_reference) == ("succeeded", False, refund.idempotency_key)
    assert (txn.amount_refunded, txn.amount_refund_reserved) == (500, 500)
    assert AuditEntry.objects.get(action="refund.recovered", object_id=refund.public_id).details["inferred_from"] == (
        "charge_already_refunded")


@pytest.mark.parametrize("error", [
    GatewayRequestError("No such charge", code="resource_missing"),
    GatewayRequestError("Keys for idempotent requests can only be used with the same parameters", code="idempotency_error"),
])
def test_a_refusal_after_a_timeout_never_clears_the_unknown_outcome(refund_of, monkeypatch, error):
    refund = refund_of(amount=500)
    answers = iter([GatewayTimeout("response lost"), error])
    monkeypatch.setattr(SimulatorGateway, "refund", lambda self, **kw: (_ for _ in ()).throw(next(answers)))
    execution.refund_execute(refund_id=refund.pk, actor=WORKER, final_attempt=False)

    out = execution.refund_execute(refund_id=refund.pk, actor=WORKER, final_attempt=True)

    assert (out.status, out.outcome_unknown, out.holds_reservation) == ("failed", True, True)
    txn = refund.transaction
    txn.refresh_from_db()
    assert txn.amount_refund_reserved == 500


# --- defect 3: the gateway settles an unknown outcome -------------------------------------
def test_a_gateway_reported_failure_of_an_unknown_outcome_refund_releases_its_reservation(
    refund_of, monkeypatch, merchant_a, django_capture_on_commit_callbacks, queued_refunds, gateway_calls,
):
    # given a refund failed with an unknown outcome (every call timed out before the gateway)
    refund = refund_of(amount=800, payment_amount=1000)
    original = SimulatorGateway.refund
    monkeypatch.setattr(SimulatorGateway, "refund", lambda self, **kw: (_ for _ in ()).throw(GatewayTimeout("lost")))
    refund_execute_task.apply(args=[refund.pk], retries=REFUND_MAX_RETRIES)
    refund.refresh_from_db()
    assert (refund.status, refund.outcome_unknown, refund.holds_reservation) == ("failed", True, True)

    # when the gateway reports that refund failed (inbound webhook)
    out, changed = recovery.refund_apply_gateway_result(refund_id=refund.pk, succeeded=False, reference=None,
                                                        failure_code="expired_or_canceled_card", actor=Actor.system("webhook"))

    # then its outcome is known and the reservation released, audited
    assert changed
    assert (out.status, out.outcome_unknown, out.holds_reservation, out.failure_code) == (
        "failed", False, False, "expired_or_canceled_card")
    txn = refund.transaction
    txn.refresh_from_db()
    assert txn.amount_refund_reserved == 0 and txn.amount_refundable == 1000
    assert AuditEntry.objects.get(action="refund.outcome_resolved", object_id=refund.public_id).details[
        "reservation_released"] is True
    # a second report changes nothing; a retry now uses a fresh key and refunds once
    assert recovery.refund_apply_gateway_result(refund_id=refund.pk, succeeded=False, reference=None,
                                                failure_code="expired_or_canceled_card", actor=Actor.system("webhook"))[1] is False
    monkeypatch.setattr(SimulatorGateway, "refund", original)
    with django_capture_on_commit_callbacks(execute=True):
        recovery.refund_retry(refund_id=refund.pk, actor=merchant_actor(merchant_a))
    run_queued(queued_refunds)
    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.idempotency_key.endswith(":refund:2")
    assert simulator_refund_records(refund.transaction).count() == 1


# --- Stripe (localstripe): the lookup by refund metadata ---------------------------------
@pytest.fixture
def stripe_is_primary(stripe_gateway, settings, monkeypatch):
    settings.FLOWPAY_GATEWAYS = ["stripe"]
    monkeypatch.setitem(registry.GATEWAY_CLASSES, "stripe", StripeGateway)
    registry.gateway_named.cache_clear()
    yield stripe_gateway
    registry.gateway_named.cache_clear()


def test_stripe_find_refund_matches_the_idempotency_key_metadata(stripe_is_primary, merchant_a, make_payment):
    txn = make_payment(merchant_a, amount=3000)
    assert txn.gateway == "stripe"
    made = stripe_is_primary.refund(reference=txn.gateway_reference, amount=700, idempotency_key="flowpay:re_x:refund")

    found = stripe_is_primary.find_refund(reference=txn.gateway_reference, idempotency_key="flowpay:re_x:refund")

    assert found == OperationResult(succeeded=True, reference=made.reference, amount=700)
    assert stripe_is_primary.find_refund(reference=txn.gateway_reference, idempotency_key="flowpay:re_y:refund") is None


def test_an_old_unknown_outcome_stripe_refund_is_found_not_refunded_again(
    stripe_is_primary, localstripe_url, merchant_a, make_payment, monkeypatch, breaker_off,
    django_capture_on_commit_callbacks, queued_refunds,
):
    # given a Stripe refund whose answers were all lost, a day and more ago
    txn = make_payment(merchant_a, amount=3000)
    refund = create.refund_create(transaction_id=txn.pk, amount=900, reason="x", actor=merchant_actor(merchant_a))
    queued_refunds.clear()
    original = StripeGateway.refund

    def lost(self, **kwargs):
        original(self, **kwargs)
        raise GatewayTimeout("Stripe did not answer the refund (outcome unknown): test")

    monkeypatch.setattr(StripeGateway, "refund", lost)
    execution.refund_execute(refund_id=refund.pk, actor=WORKER, final_attempt=True)
    age_key(refund)
    monkeypatch.setattr(StripeGateway, "refund", original)  # localstripe forgets keys: a re-send would refund again

    # when it is retried
    with django_capture_on_commit_callbacks(execute=True):
        recovery.refund_retry(refund_id=refund.pk, actor=merchant_actor(merchant_a))
    run_queued(queued_refunds)

    # then Stripe's refund was found by its metadata and nothing was refunded again
    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.gateway_reference.startswith("re_")
    listed = stripe_is_primary._client()[0].v1.refunds.list(params={"payment_intent": txn.gateway_reference})
    assert [r.id for r in listed.data] == [refund.gateway_reference]


def test_a_second_gateway_refund_for_a_succeeded_refund_raises_an_over_refund_alert(refund_of):
    refund = refund_of(amount=500)
    done = execution.refund_execute(refund_id=refund.pk, actor=WORKER)
    assert done.status == "succeeded"

    # the same refund confirmed again changes nothing
    outcome.refund_record_outcome(refund_id=refund.pk, result=OperationResult(succeeded=True, reference=done.gateway_reference),
                                  actor=WORKER, final_attempt=False, token="stale")
    assert not AuditEntry.objects.filter(action="refund.over_refund_alert").exists()
    # another gateway refund reported for it (an earlier key) is flagged for reconciliation
    outcome.refund_record_outcome(refund_id=refund.pk, result=OperationResult(succeeded=True, reference="sim_re_other"),
                                  actor=WORKER, final_attempt=False, token="stale", idempotency_key="flowpay:x:refund:1")
    refund.refresh_from_db()
    assert refund.gateway_reference == done.gateway_reference
    assert AuditEntry.objects.get(action="refund.over_refund_alert", object_id=refund.public_id).result == "failure"
