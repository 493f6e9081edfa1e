"""The runbook's management commands (`python manage.py <name>`): a readable table by
default, one JSON document with --format json, exit status 1 when they find the problem
they look for and 0 when there is none, usage errors as CommandError."""

import datetime as dt
import json
import socket
import time
from dataclasses import dataclass
from io import StringIO

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from audit.models import AuditEntry
from core.cli import format_duration, parse_duration
from gateways.breaker import breaker_for
from gateways.credentials import credentials_reload
from gateways.models import SimulatorCharge
from gateways.simulator.adapter import SimulatorFaults, simulator_faults_clear, simulator_faults_set
from gateways.stats import gateway_recent_stats
from payments.models import PaymentAttempt, Transaction

pytestmark = pytest.mark.django_db

CREDENTIAL_VARIABLES = [
    "STRIPE_API_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_KEY_CREATED_AT", "PAYPAL_CLIENT_ID",
    "PAYPAL_CLIENT_SECRET", "PAYPAL_API_BASE", "PAYPAL_WEBHOOK_ID", "PAYPAL_CLIENT_SECRET_CREATED_AT", "FLOWPAY_SECRETS_FILE",
]
STRIPE_KEY = "sk_test_51HxFlowPaySecretKeyMaterial7Q2Z"  # last 4: 7Q2Z


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)


def run(*args, expect: int = 0) -> Outcome:
    """Run a command; `expect` is its exit status (0: returns normally, else SystemExit)."""
    out, err = StringIO(), StringIO()
    if expect == 0:
        call_command(*args, stdout=out, stderr=err)
    else:
        with pytest.raises(SystemExit) as exited:
            call_command(*args, stdout=out, stderr=err)
        assert exited.value.code == expect, out.getvalue() + err.getvalue()
    return Outcome(expect, out.getvalue(), err.getvalue())


def run_json(*args, expect: int = 0) -> dict:
    outcome = run(*args, "--format", "json", expect=expect)
    document = outcome.json  # exactly one JSON document on stdout
    assert document["ok"] is (expect == 0)
    return document


@pytest.fixture(autouse=True)
def _simulator_only(settings):
    """The simulator is the one enabled gateway (and the primary) unless a test says otherwise."""
    settings.FLOWPAY_GATEWAYS = ["simulator"]
    yield
    simulator_faults_clear()


@pytest.fixture
def gateway_env():
    """A clean credentials environment for one test (no keys, no secrets file), reloaded
    into the process; the real environment's credentials are reloaded afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        for name in CREDENTIAL_VARIABLES:
            patch.delenv(name, raising=False)
        credentials_reload()
        yield patch
    credentials_reload()


@pytest.fixture
def stuck_payment(merchant_a, make_payment):
    """A payment charged at the simulator whose response was lost: processing, 15 min old."""

    def make(amount: int = 1999) -> Transaction:
        simulator_faults_set(SimulatorFaults(timeout_after_charge=True))
        txn = make_payment(merchant_a, amount=amount)
        simulator_faults_clear()
        assert txn.status == "processing"
        long_ago = timezone.now() - dt.timedelta(minutes=16)  # past the stuck threshold and the no-record grace
        Transaction.objects.filter(pk=txn.pk).update(processing_started_at=long_ago)
        PaymentAttempt.objects.filter(transaction_id=txn.pk).update(started_at=long_ago)
        return Transaction.objects.get(pk=txn.pk)

    return make


# --- core.cli -------------------------------------------------------------------------
def test_durations_parse_in_one_place():
    assert parse_duration("30s") == dt.timedelta(seconds=30)
    assert parse_duration("10m") == dt.timedelta(minutes=10)
    assert parse_duration("2h") == dt.timedelta(hours=2)
    assert parse_duration("1d") == dt.timedelta(days=1)
    assert parse_duration("1.5h") == dt.timedelta(minutes=90)
    for bad in ("", "10", "m", "-5m", "0s", "10 minutes", "1h30m"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert [format_duration(s) for s in (5, 125, 7500, 90000)] == ["5s", "2m 05s", "2h 05m", "1d 01h"]


def test_an_unparsable_duration_or_a_bad_choice_is_a_usage_error():
    with pytest.raises(CommandError, match="invalid duration"):
        run("query_failed_transactions", "--since", "yesterday")
    with pytest.raises(CommandError):
        run("query_failed_transactions", "--last-hour", "--since", "2h")
    with pytest.raises(CommandError):
        run("gateway_health_check", "--format", "xml")


# --- query_failed_transactions --------------------------------------------------------------
def test_query_failed_transactions_finds_nothing_and_exits_zero():
    assert "OK: no failed transactions" in run("query_failed_transactions", "--last-hour").out
    document = run_json("query_failed_transactions", "--last-hour")
    assert document["failedTotal"] == 0 and document["byFailureCode"] == [] and document["latest"] == []
    assert document["windowSeconds"] == 3600


def test_query_failed_transactions_groups_by_failure_code_and_gateway(merchant_a, make_payment):
    make_payment(merchant_a, amount=1999, payment_method="pm_card_chargeDeclinedInsufficientFunds")
    make_payment(merchant_a, amount=500, payment_method="pm_card_chargeDeclinedInsufficientFunds")
    make_payment(merchant_a, amount=1000, currency="JPY", payment_method="pm_card_visa_chargeDeclined")
    make_payment(merchant_a, payment_method="pm_card_visa")  # succeeded: not listed
    old = make_payment(merchant_a, payment_method="pm_card_chargeDeclinedExpiredCard")
    Transaction.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(hours=2))

    text = run("query_failed_transactions", "--last-hour", expect=1).out
    assert "FAILURE CODE" in text and "insufficient_funds" in text and "card_declined" in text
    assert "19.99 USD" in text and "1000 JPY" in text and merchant_a.merchant.public_id in text
    assert "expired_card" not in text  # outside the window
    assert "PROBLEM: 3 failed transaction(s)" in text

    document = run_json("query_failed_transactions", "--last-hour", expect=1)
    assert document["failedTotal"] == 3
    assert document["byFailureCode"] == [
        {"failureCode": "insufficient_funds", "gateway": "simulator", "count": 2, "sharePercent": 66.7},
        {"failureCode": "card_declined", "gateway": "simulator", "count": 1, "sharePercent": 33.3},
    ]
    assert [row["failureCode"] for row in document["latest"]] == ["card_declined", "insufficient_funds", "insufficient_funds"]
    assert document["latest"][1] | {"created": None} == {
        "id": document["latest"][1]["id"], "merchant": merchant_a.merchant.public_id, "merchantName": "Merchant A",
        "amount": 500, "currency": "USD", "amountDisplay": "5.00 USD", "gateway": "simulator",
        "failureCode": "insufficient_funds", "failureMessage": "Your card has insufficient funds.", "created": None,
    }

    assert len(run_json("query_failed_transactions", "--limit", "1", expect=1)["latest"]) == 1
    assert run_json("query_failed_transactions", "--since", "3h", expect=1)["failedTotal"] == 4
    Transaction.objects.filter(status="failed").update(created_at=timezone.now() - dt.timedelta(minutes=45))
    run_json("query_failed_transactions", "--since", "30m")


# --- payment_method_success_rates -----------------------------------------------------------
def test_payment_method_success_rates_with_no_payments_exits_zero():
    assert "(no payments in the window)" in run("payment_method_success_rates").out
    document = run_json("payment_method_success_rates")
    assert document["byMethod"] == [] and document["minRatePercent"] == 90.0 and document["minVolume"] == 10


def test_payment_method_success_rates_flags_a_method_below_90_percent(merchant_a, make_payment):
    for _ in range(8):
        make_payment(merchant_a, payment_method="pm_card_visa")
    for _ in range(2):
        make_payment(merchant_a, payment_method="pm_card_visa_chargeDeclined")  # a visa card, declined
    make_payment(merchant_a, payment_method="pm_card_mastercard")
    make_payment(merchant_a, payment_method="pm_card_chargeDeclined")  # a card of no named brand: "card"

    text = run("payment_method_success_rates", expect=1).out
    assert "By payment method" in text and "By payment method and gateway" in text and "SUCCESS %" in text
    assert "PROBLEM: visa: success rate 80.0% over 10 attempts is below 90%" in text

    document = run_json("payment_method_success_rates", "--since", "24h", expect=1)
    by_method = {row["method"]: row for row in document["byMethod"]}
    assert set(by_method) == {"visa", "mastercard", "card"}
    assert by_method["visa"] == {
        "method": "visa", "attempts": 10, "succeeded": 8, "failed": 2, "inFlight": 0, "successRatePercent": 80.0,
        "belowThreshold": True,
    }
    assert by_method["mastercard"]["successRatePercent"] == 100.0 and not by_method["mastercard"]["belowThreshold"]
    # 0% but only one attempt: below the volume that is judged
    assert by_method["card"]["successRatePercent"] == 0.0 and not by_method["card"]["belowThreshold"]
    assert {(r["method"], r["gateway"], r["attempts"]) for r in document["byMethodAndGateway"]} == {
        ("visa", "simulator", 10), ("mastercard", "simulator", 1), ("card", "simulator", 1),
    }

    run_json("payment_method_success_rates", "--min-volume", "11")
    run_json("payment_method_success_rates", "--min-rate", "75")
    Transaction.objects.update(created_at=timezone.now() - dt.timedelta(days=2))
    assert run_json("payment_method_success_rates", "--since", "1d")["byMethod"] == []


# --- check_api_key_rotation -----------------------------------------------------------------
def test_check_api_key_rotation_with_no_keys_configured(gateway_env):
    assert "no gateway API key is configured" in run("check_api_key_rotation").out
    assert run_json("check_api_key_rotation")["keys"] == []


def test_check_api_key_rotation_flags_an_old_key_and_shows_only_its_last_4(gateway_env):
    created = timezone.localdate() - dt.timedelta(days=120)
    gateway_env.setenv("STRIPE_API_KEY", STRIPE_KEY)
    gateway_env.setenv("STRIPE_API_KEY_CREATED_AT", created.isoformat())
    credentials_reload()

    outcome = run("check_api_key_rotation", expect=1)
    assert "…7Q2Z" in outcome.out and "DUE" in outcome.out and "120" in outcome.out
    assert "PROBLEM: stripe: key …7Q2Z is 120 days old (rotation due after 90)" in outcome.out

    document = run_json("check_api_key_rotation", expect=1)
    assert document["keys"] == [{
        "gateway": "stripe", "enabled": False, "key": "…7Q2Z", "source": "environment", "createdAt": created.isoformat(),
        "ageDays": 120, "rotationDueOn": (created + dt.timedelta(days=90)).isoformat(), "daysLeft": -30, "status": "DUE",
    }]
    for text in (outcome.out, outcome.err, json.dumps(document)):
        assert STRIPE_KEY not in text and STRIPE_KEY[:-4] not in text and "MaterialQ" not in text


def test_check_api_key_rotation_passes_a_young_key_and_flags_a_key_without_a_date(gateway_env, settings):
    gateway_env.setenv("STRIPE_API_KEY", STRIPE_KEY)
    gateway_env.setenv("STRIPE_API_KEY_CREATED_AT", (timezone.localdate() - dt.timedelta(days=10)).isoformat())
    credentials_reload()
    [row] = run_json("check_api_key_rotation")["keys"]
    assert (row["status"], row["ageDays"], row["daysLeft"]) == ("ok", 10, 80)

    settings.FLOWPAY_KEY_ROTATION_DAYS = 7
    assert run_json("check_api_key_rotation", expect=1)["keys"][0]["status"] == "DUE"

    gateway_env.delenv("STRIPE_API_KEY_CREATED_AT")
    credentials_reload()
    document = run_json("check_api_key_rotation", expect=1)
    assert document["keys"][0]["status"] == "UNKNOWN DATE" and document["keys"][0]["createdAt"] is None
    assert "has no creation date" in document["problems"][0]


def test_check_api_key_rotation_reads_the_secrets_file(gateway_env, tmp_path, settings):
    secret = "paypal-client-secret-XyZ9"
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({
        "paypal": {"client_id": "AbCd-client", "client_secret": secret, "created_at": "2020-01-31"},
    }))
    gateway_env.setenv("FLOWPAY_SECRETS_FILE", str(path))
    credentials_reload()
    settings.FLOWPAY_GATEWAYS = ["simulator", "stripe", "paypal"]

    outcome = run("check_api_key_rotation", expect=1)
    assert secret not in outcome.out and "…XyZ9" in outcome.out and "secrets file" in outcome.out
    rows = {row["gateway"]: row for row in run_json("check_api_key_rotation", expect=1)["keys"]}
    assert rows["paypal"]["status"] == "DUE" and rows["paypal"]["createdAt"] == "2020-01-31"
    assert rows["stripe"]["status"] == "not configured" and rows["stripe"]["key"] is None  # enabled, no key
    assert "simulator" not in rows  # needs no key


# --- verify_api_keys --------------------------------------------------------------------------
def test_verify_api_keys_with_the_simulator_only(gateway_env):
    assert "valid" in run("verify_api_keys").out
    [row] = run_json("verify_api_keys")["gateways"]
    assert (row["gateway"], row["key"], row["result"]) == ("simulator", "(none needed)", "valid")


def test_verify_api_keys_flags_an_enabled_gateway_without_a_key(gateway_env, settings):
    settings.FLOWPAY_GATEWAYS = ["simulator", "stripe"]
    text = run("verify_api_keys", expect=1).out
    assert "NOT CONFIGURED" in text and "PROBLEM: stripe: no API key is configured" in text


def test_verify_api_keys_flags_a_key_that_does_not_work(gateway_env, settings):
    with socket.socket() as sock:  # a local port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gateway_env.setenv("STRIPE_API_KEY", STRIPE_KEY)
    gateway_env.setenv("STRIPE_API_BASE", f"http://127.0.0.1:{port}")
    credentials_reload()
    settings.FLOWPAY_GATEWAYS = ["simulator", "stripe"]

    outcome = run("verify_api_keys", expect=1)
    assert "FAILED" in outcome.out and "…7Q2Z" in outcome.out and STRIPE_KEY not in outcome.out + outcome.err
    rows = {row["gateway"]: row for row in run_json("verify_api_keys", expect=1)["gateways"]}
    assert rows["stripe"]["result"] == "FAILED" and rows["simulator"]["result"] == "valid"
    # a refused key is not a gateway outage: the circuit stays closed
    assert breaker_for("stripe").status().state == "closed"


def test_verify_api_keys_against_localstripe(stripe_gateway, settings):
    settings.FLOWPAY_GATEWAYS = ["stripe", "simulator"]
    document = run_json("verify_api_keys")
    assert [(row["gateway"], row["result"]) for row in document["gateways"]] == [("stripe", "valid"), ("simulator", "valid")]
    assert document["gateways"][0]["key"].startswith("…") and len(document["gateways"][0]["key"]) == 5
    # the call went through the router's observed_call (operation "health")
    assert gateway_recent_stats("stripe").by_operation["health"].calls == 1


# --- gateway_health_check ---------------------------------------------------------------------
def test_gateway_health_check_all_healthy():
    text = run("gateway_health_check").out
    assert "GATEWAY" in text and "CIRCUIT" in text and "simulator" in text and "OK:" in text
    document = run_json("gateway_health_check", "--gateway", "simulator")
    assert document["primaryGateway"] == "simulator" and document["fallbackMode"] is False
    [row] = document["gateways"]
    assert row["healthy"] is True and row["circuit"] == "closed" and row["primary"] is True
    assert row["latencyMs"] >= 0 and row["recentErrorRatePercent"] == 0.0


def test_gateway_health_check_flags_an_unhealthy_gateway():
    simulator_faults_set(SimulatorFaults(error_rate=1.0))
    assert "PROBLEM: simulator: unhealthy (injected outage)" in run("gateway_health_check", expect=1).out
    [row] = run_json("gateway_health_check", expect=1)["gateways"]
    assert row["healthy"] is False and row["detail"] == "injected outage"


def test_gateway_health_check_flags_an_open_circuit_and_leaves_it_open(settings):
    settings.FLOWPAY_BREAKER_FAILURE_THRESHOLD = 2
    breaker_for("simulator").record_failure()
    breaker_for("simulator").record_failure()
    document = run_json("gateway_health_check", expect=1)
    assert document["gateways"][0]["healthy"] is True and document["gateways"][0]["circuit"] == "open"
    assert "circuit breaker is open" in document["problems"][0]
    assert breaker_for("simulator").status().state == "open"  # a diagnostic does not close the circuit


def test_gateway_health_check_rejects_an_unknown_gateway():
    with pytest.raises(CommandError, match="unknown gateway 'nope'"):
        run("gateway_health_check", "--gateway", "nope")


# --- gateway_latency_check --------------------------------------------------------------------
def test_gateway_latency_check_within_threshold():
    text = run("gateway_latency_check", "--samples", "3").out
    assert "P95" in text and "MEDIAN" in text and "RECENT AVG" in text
    [row] = run_json("gateway_latency_check", "--samples", "3", "--gateway", "simulator")["gateways"]
    assert row["samples"] == 3 and row["failedSamples"] == 0
    assert row["minMs"] <= row["medianMs"] <= row["p95Ms"] <= row["maxMs"] < 3000


def test_gateway_latency_check_flags_a_slow_gateway():
    simulator_faults_set(SimulatorFaults(latency_ms=4000))  # the simulator reports it without sleeping
    text = run("gateway_latency_check", "--samples", "2", expect=1).out
    assert "PROBLEM: simulator: p95 latency" in text and "exceeds 3000 ms" in text
    [row] = run_json("gateway_latency_check", "--samples", "2", expect=1)["gateways"]
    assert row["p95Ms"] >= 4000 and row["overThreshold"] is True
    run_json("gateway_latency_check", "--samples", "2", "--threshold-ms", "5000")


def test_gateway_latency_check_flags_a_gateway_with_no_successful_sample():
    simulator_faults_set(SimulatorFaults(error_rate=1.0))
    [row] = run_json("gateway_latency_check", "--samples", "2", expect=1)["gateways"]
    assert row["failedSamples"] == 2 and row["p95Ms"] is None


# --- monitor_gateway_health -------------------------------------------------------------------
def test_monitor_gateway_health_once():
    lines = run("monitor_gateway_health", "--gateway=simulator", "--once").out.splitlines()
    assert len(lines) == 2 and lines[0].split()[:3] == ["TIME", "GATEWAY", "STATUS"]
    assert "simulator" in lines[1] and "healthy" in lines[1] and "closed" in lines[1]


def test_monitor_gateway_health_count_and_json_lines():
    out = run("monitor_gateway_health", "--count", "3", "--interval", "0", "--format", "json").out
    checks = [json.loads(line) for line in out.splitlines()]
    assert len(checks) == 3 and all(c["gateway"] == "simulator" and c["ok"] for c in checks)  # default: the primary
    assert {"time", "healthy", "latencyMs", "circuit", "recentErrorRatePercent"} <= set(checks[0])


def test_monitor_gateway_health_exit_status_is_the_last_check():
    simulator_faults_set(SimulatorFaults(error_rate=1.0))
    assert "UNHEALTHY" in run("monitor_gateway_health", "--gateway=simulator", "--once", expect=1).out


def test_monitor_gateway_health_shows_the_recovery(monkeypatch):
    from gateways.management.commands import monitor_gateway_health

    simulator_faults_set(SimulatorFaults(error_rate=1.0))
    monkeypatch.setattr(monitor_gateway_health.time, "sleep", lambda seconds: simulator_faults_clear())
    lines = run("monitor_gateway_health", "--gateway=simulator", "--count", "2", "--interval", "5").out.splitlines()
    assert "UNHEALTHY" in lines[1] and "healthy" in lines[2] and "recovered" in lines[2]


def test_monitor_gateway_health_runs_until_interrupted(monkeypatch):
    from gateways.management.commands import monitor_gateway_health

    def interrupt(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(monitor_gateway_health.time, "sleep", interrupt)
    out = run("monitor_gateway_health", "--gateway=simulator", "--format", "json").out
    assert len(out.splitlines()) == 1 and json.loads(out)["ok"] is True


# --- db_pool_stats ----------------------------------------------------------------------------
def test_db_pool_stats_on_postgresql():
    text = run("db_pool_stats").out
    assert "Database:" in text and "postgresql" in text and "max_connections" in text and "CONN_MAX_AGE" in text
    document = run_json("db_pool_stats")
    assert document["vendor"] == "postgresql" and document["maxConnections"] > 0
    assert document["connections"]["total"] >= 1 and document["connections"]["active"] >= 1
    assert 0 < document["usagePercent"] < 80
    assert document["poolConfigured"] is False and document["connHealthChecks"] is True
    assert document["idleInTransactionSessions"] == []


def test_db_pool_stats_flags_high_usage():
    document = run_json("db_pool_stats", "--max-usage-percent", "0", expect=1)
    assert "connections in use" in document["problems"][0]


def test_db_pool_stats_flags_a_session_idle_in_transaction():
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}, application_name="stuck-worker") as other:
        other.execute("SELECT 1")  # opens a transaction and leaves it idle
        time.sleep(0.3)
        pid = other.info.backend_pid
        outcome = run("db_pool_stats", "--idle-in-transaction-seconds", "0.1", expect=1)
        assert "stuck-worker" in outcome.out and f"(pid {pid})" in outcome.out
        document = run_json("db_pool_stats", "--idle-in-transaction-seconds", "0.1", expect=1)
        assert document["connections"]["idleInTransaction"] >= 1
        assert pid in [s["pid"] for s in document["idleInTransactionSessions"]]
        run_json("db_pool_stats")  # 60 s by default: not yet a problem
        other.rollback()


# --- find_stuck_transactions, check_gateway_transaction, resolve_stuck_transaction ---------------
def test_find_stuck_transactions_finds_none(merchant_a, make_payment):
    make_payment(merchant_a)
    assert "OK: no transaction processing" in run("find_stuck_transactions").out
    assert run_json("find_stuck_transactions")["transactions"] == []


def test_find_stuck_transactions_lists_the_processing_ones(stuck_payment, merchant_a, make_payment):
    make_payment(merchant_a)  # completed: not stuck
    txn = stuck_payment(amount=2500)
    fresh = stuck_payment()
    Transaction.objects.filter(pk=fresh.pk).update(processing_started_at=timezone.now())  # processing, but young
    PaymentAttempt.objects.filter(transaction_id=fresh.pk).update(started_at=timezone.now())

    text = run("find_stuck_transactions", "--older-than", "10m", expect=1).out
    assert txn.public_id in text and fresh.public_id not in text
    assert "25.00 USD" in text and "16m" in text and "#1 authorize unknown (gateway_timeout)" in text

    document = run_json("find_stuck_transactions", "--older-than", "10m", expect=1)
    assert document["count"] == 1 and document["olderThanSeconds"] == 600
    [row] = document["transactions"]
    assert (row["id"], row["merchant"], row["amount"], row["gateway"]) == (txn.public_id, merchant_a.merchant.public_id, 2500, "simulator")
    assert row["lastAttempt"] == {"number": 1, "operation": "authorize", "outcome": "unknown", "errorCode": "gateway_timeout"}
    assert 890 <= row["ageSeconds"] <= 960

    run_json("find_stuck_transactions", "--older-than", "1h")
    assert run_json("find_stuck_transactions", expect=1)["olderThanSeconds"] == 120  # FLOWPAY_STUCK_AFTER_SECONDS


def test_a_stuck_transaction_is_checked_then_resolved_completed(stuck_payment):
    txn = stuck_payment()

    text = run("check_gateway_transaction", f"--transaction-id={txn.public_id}", expect=1).out
    assert "succeeded (→ completed)" in text and "MISMATCH" in text and "--status=completed" in text
    document = run_json("check_gateway_transaction", "--transaction-id", txn.public_id, expect=1)
    assert document["verdict"] == "mismatch" and document["flowpay"]["status"] == "processing"
    assert document["gateway"] == "simulator" and document["atGateway"]["status"] == "succeeded"
    assert document["atGateway"]["impliedStatus"] == "completed"
    assert document["atGateway"]["amount"] == 1999 and document["atGateway"]["flowpayReference"] == txn.public_id

    # the gateway says it succeeded: marking it failed is refused, and nothing changes
    refused = run("resolve_stuck_transaction", f"--transaction-id={txn.public_id}", "--status=failed", expect=1)
    assert "Refused" in refused.err and "succeeded" in refused.err and "--force" in refused.err
    assert Transaction.objects.get(pk=txn.pk).status == "processing"
    assert not AuditEntry.objects.filter(object_id=txn.public_id, action__startswith="transaction.resolved").exists()

    resolved = run_json("resolve_stuck_transaction", f"--transaction-id={txn.public_id}", "--status=completed")
    assert resolved["result"][0]["previousStatus"] == "processing" and resolved["result"][0]["status"] == "completed"
    txn.refresh_from_db()
    assert txn.status == "completed" and txn.amount_captured == 1999 and txn.gateway_reference.startswith("sim_ch")
    entry = AuditEntry.objects.get(object_id=txn.public_id, action="transaction.resolved")
    assert (entry.actor_type, entry.actor_id) == ("system", "manage.py resolve_stuck_transaction")
    assert entry.details["gateway_status"] == "succeeded"
    assert SimulatorCharge.objects.filter(flowpay_reference=txn.public_id).count() == 1  # charged once

    assert "consistent" in run("check_gateway_transaction", f"--transaction-id={txn.public_id}").out
    assert run_json("check_gateway_transaction", f"--transaction-id={txn.public_id}")["verdict"] == "consistent"
    # nothing left to resolve
    again = run("resolve_stuck_transaction", f"--transaction-id={txn.public_id}", "--status=completed", expect=1)
    assert "not processing" in again.err


def test_resolve_stuck_transaction_table_output(stuck_payment):
    txn = stuck_payment()
    text = run("resolve_stuck_transaction", f"--transaction-id={txn.public_id}", "--status=completed").out
    assert "BEFORE" in text and "processing" in text and "completed" in text and f"Resolved: {txn.public_id}" in text


def test_resolve_stuck_transaction_force_against_the_gateway_needs_a_reason(stuck_payment):
    txn = stuck_payment()
    missing = run("resolve_stuck_transaction", f"--transaction-id={txn.public_id}", "--status=failed", "--force", expect=1)
    assert "--reason" in missing.err and Transaction.objects.get(pk=txn.pk).status == "processing"
    refused = run_json("resolve_stuck_transaction", f"--transaction-id={txn.public_id}", "--status=failed", "--force", expect=1)
    assert refused["refused"] is True and refused["status"] == "processing"

    run("resolve_stuck_transaction", f"--transaction-id={txn.public_id}", "--status=failed", "--force",
        "--reason", "refunded at the gateway by hand")
    txn.refresh_from_db()
    assert txn.status == "failed"
    entry = AuditEntry.objects.get(object_id=txn.public_id, action="transaction.resolved_forced")
    assert entry.details["reason"] == "refunded at the gateway by hand" and entry.details["gateway_status"] == "succeeded"
    assert entry.actor_id == "manage.py resolve_stuck_transaction"


def test_check_gateway_transaction_no_record_and_unreachable(stuck_payment, gateway_env):
    txn = stuck_payment()
    SimulatorCharge.objects.filter(flowpay_reference=txn.public_id).delete()
    document = run_json("check_gateway_transaction", f"--transaction-id={txn.public_id}", expect=1)
    assert document["verdict"] == "no_record_at_gateway" and document["atGateway"] is None
    assert "no record at gateway" in run("check_gateway_transaction", f"--transaction-id={txn.public_id}", expect=1).out

    Transaction.objects.filter(pk=txn.pk).update(gateway="stripe")  # no Stripe key configured: cannot ask
    document = run_json("check_gateway_transaction", f"--transaction-id={txn.public_id}", expect=1)
    assert document["verdict"] == "gateway_unreachable" and "gateway_not_configured" in document["problems"][0]


def test_check_gateway_transaction_on_settled_payments(merchant_a, make_payment):
    completed = make_payment(merchant_a)
    declined = make_payment(merchant_a, payment_method="pm_card_visa_chargeDeclined")
    assert run_json("check_gateway_transaction", f"--transaction-id={completed.public_id}")["verdict"] == "consistent"
    document = run_json("check_gateway_transaction", f"--transaction-id={declined.public_id}")
    assert document["verdict"] == "consistent" and document["atGateway"]["status"] == "failed"


def test_unknown_transaction_ids_are_usage_errors():
    with pytest.raises(CommandError, match="No such transaction"):
        run("check_gateway_transaction", "--transaction-id=txn_doesnotexist")
    with pytest.raises(CommandError, match="No such transaction"):
        run("resolve_stuck_transaction", "--transaction-id=txn_doesnotexist", "--status=completed")
    with pytest.raises(CommandError):
        run("resolve_stuck_transaction", "--transaction-id=txn_x", "--status=refunded")


def test_a_payment_failed_here_but_completed_at_the_gateway_is_recovered(stuck_payment):
    # given a payment forced to failed (say, before the gateway's record showed up)
    txn = stuck_payment()
    run("resolve_stuck_transaction", f"--transaction-id={txn.public_id}", "--status=failed", "--force",
        "--reason", "gateway had no record yet")
    assert Transaction.objects.get(pk=txn.pk).status == "failed"
    run("check_gateway_transaction", f"--transaction-id={txn.public_id}", expect=1)  # MISMATCH

    # when the operator resolves it as completed, which the gateway confirms
    run("resolve_stuck_transaction", f"--transaction-id={txn.public_id}", "--status=completed")

    # then it is completed, audited as a recovery, and the gateway still has one charge
    recovered = Transaction.objects.get(pk=txn.pk)
    assert (recovered.status, recovered.amount_captured, recovered.failure_code) == ("completed", 1999, "")
    assert AuditEntry.objects.filter(object_id=txn.public_id, action="transaction.recovered").exists()
    assert SimulatorCharge.objects.filter(flowpay_reference=txn.public_id).count() == 1
    run("check_gateway_transaction", f"--transaction-id={txn.public_id}")
    # a failed payment the gateway never charged cannot be "recovered"
    other = stuck_payment(amount=500)
    SimulatorCharge.objects.filter(flowpay_reference=other.public_id).update(status="failed")
    run("resolve_stuck_transaction", f"--transaction-id={other.public_id}", "--status=failed")
    run("resolve_stuck_transaction", f"--transaction-id={other.public_id}", "--status=completed", expect=1)
    assert Transaction.objects.get(pk=other.pk).status == "failed"
