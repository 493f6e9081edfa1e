"""The `gateway timeout` log line: operators find timeouts with
`kubectl logs -l app=payment-service -n payment | grep "gateway timeout"`, so the words are
stable, and the line names the gateway, the operation and the FlowPay object."""

import json

import pytest

from gateways.simulator.adapter import SimulatorFaults, simulator_faults_clear, simulator_faults_set
from refunds.models import Refund
from tests.support.gateways import BODY, URL
from tests.support.refunds import refund_url, run_queued


def _timeout_lines(buffer) -> list[dict]:
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    return [line for line in lines if "gateway timeout" in line["message"]]


@pytest.mark.django_db
def test_an_authorization_timeout_logs_gateway_timeout_with_the_gateway_operation_and_transaction_id(
    merchant_a, json_log_lines
):
    # given a gateway that takes the charge and loses the answer
    buffer = json_log_lines("gateways.router")
    simulator_faults_set(SimulatorFaults(timeout_after_charge=True))
    try:
        # when a merchant creates a payment
        response = merchant_a.client.post(URL, BODY, format="json")
    finally:
        simulator_faults_clear()
    txn_id = response.json()["id"]

    # then one JSON line says "gateway timeout" and names the gateway, operation and payment
    [line] = _timeout_lines(buffer)
    assert line["message"] == f"gateway timeout: simulator authorize {txn_id} outcome unknown"
    assert (line["gateway"], line["operation"], line["flowpay_id"], line["level"]) == (
        "simulator", "authorize", txn_id, "WARNING")
    assert line["correlation_id"]


@pytest.mark.django_db
def test_a_refund_timeout_logs_gateway_timeout_with_the_refund_id(
    merchant_a, make_payment, queued_refunds, json_log_lines, django_capture_on_commit_callbacks
):
    # given a completed payment and a refund queued for it
    txn = make_payment(merchant_a, amount=2000)
    with django_capture_on_commit_callbacks(execute=True):
        response = merchant_a.client.post(
            refund_url(txn), {"amount": 500, "reason": "requested_by_customer"}, format="json")
    assert response.status_code in (200, 201), response.content
    assert queued_refunds
    refund = Refund.objects.get(public_id=response.json()["id"])
    buffer = json_log_lines("gateways.router")

    # when the worker's refund call times out
    simulator_faults_set(SimulatorFaults(timeout_rate=1.0))
    try:
        run_queued(queued_refunds)
    finally:
        simulator_faults_clear()

    # then the timeout line names the refund, not only the gateway
    lines = _timeout_lines(buffer)
    assert lines, "no gateway timeout line was logged"
    assert all(line["message"] == f"gateway timeout: simulator refund {refund.public_id} outcome unknown" for line in lines)
    assert {(line["gateway"], line["operation"], line["flowpay_id"]) for line in lines} == {
        ("simulator", "refund", refund.public_id)}
