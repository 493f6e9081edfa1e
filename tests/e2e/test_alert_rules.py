"""The runbook's alerts (with the fraud checks' latency, and the chapter's HighPSPErrorRate),
the ledger's and reconciliation's in docker/prometheus/alerts.yml: valid rules, unit-tested
with promtool at their thresholds, on metrics /metrics exports."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings

RULES_DIR = Path(settings.BASE_DIR) / "docker" / "prometheus"
RUNBOOK_ALERTS = {"PaymentServiceHighErrorRate", "PaymentServiceGatewayFailure", "PaymentServiceHighLatency",
                  "PaymentServiceDatabaseIssues", "PaymentServiceHighFraudDetectionLatency", "HighPSPErrorRate"}
# verify_ledger's result (tests/backoffice/test_ledger_verification.py checks /metrics exports them).
LEDGER_ALERTS = {"LedgerImbalance", "LedgerVerifyStale"}
RECONCILIATION_ALERTS = {"ReconciliationMissingLocally", "ReconciliationItemsOpenTooLong", "ReconciliationNotRunning"}


def promtool(*args: str) -> subprocess.CompletedProcess:
    executable = shutil.which("promtool")
    assert executable, "promtool is missing: `make test-deps` installs Debian's prometheus package"
    return subprocess.run([executable, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=120)


def test_alert_rules_are_valid_and_pass_their_unit_tests():
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_runbook_alert_exists_and_is_unit_tested():
    rules = yaml.safe_load((RULES_DIR / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert alerts == RUNBOOK_ALERTS | LEDGER_ALERTS | RECONCILIATION_ALERTS
    tests = yaml.safe_load((RULES_DIR / "alerts_test.yml").read_text())
    exercised = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert exercised == RUNBOOK_ALERTS | LEDGER_ALERTS | RECONCILIATION_ALERTS


@pytest.mark.django_db
def test_the_alerts_use_metrics_that_metrics_exports(client, merchant_a, make_payment, settings):
    from core.errors import GatewayUnavailable
    from gateways.simulator.adapter import SimulatorFaults, simulator_faults_clear, simulator_faults_set
    from tests.support.fraud import pay

    settings.FLOWPAY_GATEWAY_RETRIES = 0
    make_payment(merchant_a)
    make_payment(merchant_a, payment_method="pm_card_chargeDeclinedInsufficientFunds")
    simulator_faults_set(SimulatorFaults(error_rate=1.0))  # one gateway error, for the error metrics
    with pytest.raises(GatewayUnavailable):
        make_payment(merchant_a)
    simulator_faults_clear()
    reconcile_a_day_with_a_charge_missing_locally()
    assert pay(merchant_a).status_code == 201  # screened: the fraud metrics

    exported = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", client.get("/metrics").content.decode(), re.MULTILINE))
    rules = yaml.safe_load((RULES_DIR / "alerts.yml").read_text())
    used = {name for group in rules["groups"] for rule in group["rules"]
            for name in re.findall(r"\b(payment_\w+|gateway_\w+|psp_\w+|reconciliation_\w+|fraud_\w+)\b", rule["expr"])}
    assert used == {"payment_success_rate", "gateway_error_rate", "payment_processing_latency_bucket",
                    "payment_service_database_up", "psp_call_errors_total", "reconciliation_open_items",
                    "reconciliation_oldest_open_item_timestamp", "reconciliation_last_success_timestamp",
                    "fraud_detection_latency_bucket"}
    assert used <= exported, used - exported


def reconcile_a_day_with_a_charge_missing_locally():
    """A simulator day whose report holds a charge FlowPay never made: an open item, a run."""
    import datetime as dt

    from core.actors import Actor
    from gateways.simulator.settlements import ExtraCharge, SettlementDiscrepancies, settlement_discrepancies_set
    from reconciliation.services.runs import reconciliation_run

    now = dt.datetime.now(dt.UTC)
    settlement_discrepancies_set(SettlementDiscrepancies(extra_charges=(
        ExtraCharge(reference="sim_ch_unknown", amount=5000, currency="USD", created=now),)))
    reconciliation_run(gateway="simulator", settlement_date=now.date(), actor=Actor.system("test"))
