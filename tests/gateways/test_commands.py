"""The gateways' runbook commands: check_api_key_rotation, verify_api_keys,
gateway_health_check, gateway_latency_check, monitor_gateway_health.

Like every runbook command: a readable table by default, one JSON document with --format
json, exit status 1 when it finds the problem it looks for and 0 when there is none,
usage errors as CommandError (tests/support/commands.py runs them)."""

import datetime as dt
import json
import socket

import pytest
from django.core.management import CommandError
from django.utils import timezone

from gateways.breaker import breaker_for
from gateways.credentials import credentials_reload
from gateways.simulator.adapter import SimulatorFaults, simulator_faults_clear, simulator_faults_set
from gateways.stats import gateway_recent_stats
from tests.support.commands import run, run_json

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("simulator_only")]

STRIPE_KEY = "sk_test_51HxFlowPaySecretKeyMaterial7Q2Z"  # last 4: 7Q2Z


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
