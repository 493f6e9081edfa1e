"""The router: retries only for safe errors, failover of new payments, declines final,
timeouts never sent elsewhere and later resolved. (The breaker it consults: test_breaker.py.)"""

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from gateways import registry
from gateways.base import GatewayTimeout, GatewayUnavailableError
from gateways.breaker import breaker_for
from gateways.models import SimulatorCharge
from gateways.simulator.adapter import SimulatorFaults, SimulatorGateway, simulator_faults_clear, simulator_faults_set
from payments.models import PaymentAttempt, Transaction
from payments.tasks import check_stuck_transactions_task
from tests.support.gateways import BODY, URL, attempts_of


@pytest.mark.django_db
def test_new_payments_fail_over_to_the_next_gateway_when_the_primary_is_unavailable(merchant_a, two_gateways):
    simulator_faults_set(SimulatorFaults(error_rate=1.0), "simulator")

    response = merchant_a.client.post(URL, BODY, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["gateway"]) == ("completed", "backup")
    # one try and one retry (with backoff) at the primary, then the backup
    assert attempts_of(body["id"]) == [("simulator", "error"), ("simulator", "error"), ("backup", "succeeded")]
    actions = list(AuditEntry.objects.filter(object_id=body["id"]).values_list("action", flat=True))
    assert "transaction.retry" in actions and "transaction.failover" in actions


@pytest.mark.django_db
def test_a_decline_is_final_and_never_failed_over(merchant_a, two_gateways):
    response = merchant_a.client.post(URL, {**BODY, "paymentMethod": "pm_card_chargeDeclinedInsufficientFunds"}, format="json")
    assert response.status_code == 402
    txn_id = response.json()["error"]["transaction"]["id"]
    assert attempts_of(txn_id) == [("simulator", "declined")]
    assert SimulatorCharge.objects.count() == 1
    assert breaker_for("simulator").status().failures_in_window == 0  # a decline is not a gateway failure


@pytest.mark.django_db
def test_no_healthy_gateway_answers_503_and_records_the_failed_payment(merchant_a, two_gateways):
    simulator_faults_set(SimulatorFaults(error_rate=1.0), "simulator")
    simulator_faults_set(SimulatorFaults(error_rate=1.0), "backup")
    response = merchant_a.client.post(URL, BODY, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "gateway_unavailable"
    txn = Transaction.objects.get()
    assert (txn.status, txn.failure_code) == ("failed", "gateway_unavailable")
    assert not SimulatorCharge.objects.exists()


class ScriptedGateway(SimulatorGateway):
    """The simulator, answering its first authorize calls from a script of exceptions."""

    script: list = []
    calls = 0

    def authorize(self, *, payment, idempotency_key):
        type(self).calls += 1
        if self.script:
            raise self.script.pop(0)
        return super().authorize(payment=payment, idempotency_key=idempotency_key)


@pytest.fixture
def scripted(settings, monkeypatch):
    settings.FLOWPAY_GATEWAYS = ["simulator", "backup"]
    settings.FLOWPAY_GATEWAY_RETRIES = 2
    settings.FLOWPAY_GATEWAY_BACKOFF_BASE_SECONDS = 0.01
    ScriptedGateway.script, ScriptedGateway.calls = [], 0
    monkeypatch.setitem(registry.GATEWAY_CLASSES, "simulator", ScriptedGateway)
    monkeypatch.setitem(registry.GATEWAY_CLASSES, "backup", lambda: SimulatorGateway("backup"))
    registry.gateway_named.cache_clear()
    return ScriptedGateway


@pytest.mark.django_db
def test_an_unavailable_gateway_is_retried_with_backoff_then_succeeds(merchant_a, scripted):
    scripted.script = [GatewayUnavailableError("503 from the PSP")]
    body = merchant_a.client.post(URL, BODY, format="json").json()
    assert body["status"] == "completed" and body["gateway"] == "simulator"
    assert attempts_of(body["id"]) == [("simulator", "error"), ("simulator", "succeeded")]
    keys = list(Transaction.objects.get(public_id=body["id"]).attempts.values_list("idempotency_key", flat=True))
    assert len(set(keys)) == 2  # each try has its own gateway idempotency key


@pytest.mark.django_db
def test_a_timeout_is_never_retried_nor_failed_over(merchant_a, scripted):
    scripted.script = [GatewayTimeout("read timed out")]
    response = merchant_a.client.post(URL, BODY, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "processing"
    assert attempts_of(body["id"]) == [("simulator", "unknown")]
    assert scripted.calls == 1


@pytest.mark.django_db
def test_a_gateway_timeout_after_the_charge_is_resolved_completed_by_the_checker_and_never_sent_elsewhere(
    merchant_a, two_gateways, celery_eager, caplog
):
    # given the primary takes the charge but the response is lost
    simulator_faults_set(SimulatorFaults(timeout_after_charge=True), "simulator")
    response = merchant_a.client.post(URL, BODY, format="json")
    body = response.json()
    assert response.status_code == 201 and body["status"] == "processing"
    assert "gateway timeout" in caplog.text
    assert SimulatorCharge.objects.count() == 1
    assert attempts_of(body["id"]) == [("simulator", "unknown")]

    # when the beat checker runs after the stuck threshold
    simulator_faults_clear("simulator")
    five_minutes_ago = timezone.now() - dt.timedelta(minutes=5)
    Transaction.objects.filter(public_id=body["id"]).update(processing_started_at=five_minutes_ago)
    PaymentAttempt.objects.filter(transaction__public_id=body["id"]).update(started_at=five_minutes_ago)
    assert check_stuck_transactions_task() == 1

    # then it is completed from the gateway's record, with exactly one charge, at the primary only
    txn = Transaction.objects.get(public_id=body["id"])
    assert (txn.status, txn.gateway, txn.amount_captured) == ("completed", "simulator", 1999)
    assert SimulatorCharge.objects.count() == 1 and SimulatorCharge.objects.get().call_count == 1
    assert attempts_of(body["id"]) == [("simulator", "succeeded")]
    assert AuditEntry.objects.filter(object_id=txn.public_id, action="transaction.resolved", actor_type="worker").exists()
    assert check_stuck_transactions_task() == 0


@pytest.mark.django_db
def test_a_resolved_automatic_payment_found_authorized_continues_to_capture(merchant_a, scripted):
    # the gateway authorized but did not capture before the answer was lost
    from payments.services.stuck import transaction_resolve_stuck

    class LostAfterAuthorize(ScriptedGateway):
        def authorize(self, *, payment, idempotency_key):
            from dataclasses import replace

            super().authorize(payment=replace(payment, capture=False), idempotency_key=idempotency_key)
            raise GatewayTimeout("lost")

    registry.GATEWAY_CLASSES["simulator"] = LostAfterAuthorize
    registry.gateway_named.cache_clear()
    body = merchant_a.client.post(URL, BODY, format="json").json()
    assert body["status"] == "processing"
    from core.actors import Actor

    txn = transaction_resolve_stuck(transaction_id=Transaction.objects.get(public_id=body["id"]).pk, actor=Actor.worker("test"))
    assert (txn.status, txn.amount_captured) == ("completed", 1999)
    assert SimulatorCharge.objects.get().status == "succeeded"


@pytest.mark.django_db
def test_saved_payment_methods_stay_at_their_gateway(merchant_a, two_gateways):
    customer = merchant_a.client.post("/payment/customers", {"name": "Ann"}, format="json").json()
    method = merchant_a.client.post(
        f"/payment/customers/{customer['id']}/payment-methods", {"token": "pm_card_visa", "gateway": "simulator"}, format="json"
    ).json()
    simulator_faults_set(SimulatorFaults(error_rate=1.0), "simulator")
    response = merchant_a.client.post(URL, {**BODY, "paymentMethod": method["id"]}, format="json")
    assert response.status_code == 503
    assert {g for g, _ in attempts_of(Transaction.objects.get().public_id)} == {"simulator"}


@pytest.mark.django_db
def test_gateway_metrics_are_exported(merchant_a, two_gateways, client):
    merchant_a.client.post(URL, BODY, format="json")
    simulator_faults_set(SimulatorFaults(error_rate=1.0), "simulator")
    merchant_a.client.post(URL, BODY, format="json")
    text = client.get("/metrics").content.decode()
    assert 'gateway_requests_total{gateway="simulator",operation="authorize",outcome="ok"}' in text
    assert 'psp_call_errors_total{error="gateway_unavailable",gateway="simulator",operation="authorize"}' in text
    assert 'gateway_request_duration_seconds_bucket{gateway="backup",le="0.025",operation="authorize"}' in text
    rate_line = next(line for line in text.splitlines() if line.startswith('gateway_error_rate{gateway="simulator",operation="authorize"}'))
    assert float(rate_line.split()[-1]) == pytest.approx(2 / 3)


@pytest.mark.django_db
def test_no_record_at_the_gateway_fails_a_sent_payment_only_after_the_grace_period(merchant_a, two_gateways, settings):
    from core.actors import Actor
    from payments.services.stuck import transaction_resolve_stuck

    # the call was sent and timed out; the gateway shows no record (yet)
    simulator_faults_set(SimulatorFaults(timeout_rate=1.0), "simulator")
    body = merchant_a.client.post(URL, BODY, format="json").json()
    simulator_faults_clear("simulator")
    txn = Transaction.objects.get(public_id=body["id"])
    assert txn.status == "processing" and not SimulatorCharge.objects.exists()

    # within the grace period "no record" may mean "not visible yet": left processing
    assert transaction_resolve_stuck(transaction_id=txn.pk, actor=Actor.worker("test")).status == "processing"

    # after it, the gateway's silence is an answer: failed, nothing was charged
    settings.FLOWPAY_STUCK_NO_RECORD_GRACE_SECONDS = 0
    resolved = transaction_resolve_stuck(transaction_id=txn.pk, actor=Actor.worker("test"))
    assert (resolved.status, resolved.failure_code) == ("failed", "gateway_no_record")


@pytest.mark.django_db
def test_a_late_gateway_success_recovers_a_payment_settled_as_failed_meanwhile(merchant_a, scripted):
    from core.actors import Actor
    from payments.services.stuck import transaction_resolve_manually

    class SettledWhileInFlight(ScriptedGateway):
        def authorize(self, *, payment, idempotency_key):
            txn = Transaction.objects.get(public_id=payment.flowpay_reference)
            transaction_resolve_manually(transaction_id=txn.pk, status="failed", force=True,
                                         reason="operator thought it stuck", actor=Actor.system("test"))
            return super().authorize(payment=payment, idempotency_key=idempotency_key)

    registry.GATEWAY_CLASSES["simulator"] = SettledWhileInFlight
    registry.gateway_named.cache_clear()
    body = merchant_a.client.post(URL, BODY, format="json").json()

    txn = Transaction.objects.get(public_id=body["id"])
    assert (txn.status, txn.amount_captured) == ("completed", 1999)  # the money was taken: not "failed"
    assert body["status"] == "completed"
    assert AuditEntry.objects.filter(object_id=txn.public_id, action="transaction.recovered").exists()
    assert SimulatorCharge.objects.count() == 1
