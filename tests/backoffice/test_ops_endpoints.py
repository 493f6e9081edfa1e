"""The runbook's internal operator endpoints: operator token only, audited with the reason,
and followed by every process (checked from a second process)."""

import json
import subprocess
import sys
import time

import pytest
from django.conf import settings as django_settings

from audit.models import AuditEntry
from core.runtime import runtime_invalidate_local_cache
from gateways import registry
from gateways.simulator.adapter import SimulatorGateway
from tests.support.processes import sibling_env

ENDPOINTS = [
    ("/internal/api/payment/switch-gateway", {"primaryGateway": "backup", "reason": "Stripe outage"}),
    ("/internal/api/system/enable-fallback-gateway", {}),
    ("/internal/api/system/disable-fallback-gateway", {}),
    ("/internal/api/system/reload-api-keys", {}),
    ("/internal/api/system/refresh-db-connections", {}),
    ("/internal/api/system/enable-simplified-flow", {}),
    ("/internal/api/system/disable-simplified-flow", {}),
]


@pytest.fixture
def gateways(settings, monkeypatch):
    settings.FLOWPAY_GATEWAYS = ["simulator", "backup"]
    monkeypatch.setitem(registry.GATEWAY_CLASSES, "backup", lambda: SimulatorGateway("backup"))
    registry.gateway_named.cache_clear()


@pytest.fixture
def operator(staff_client):
    return staff_client("operator", "olga")


@pytest.mark.django_db
@pytest.mark.parametrize("path, body", ENDPOINTS)
def test_only_an_operator_token_may_call_the_internal_endpoints(client, merchant_a, staff_client, gateways, path, body):
    assert client.post(path, body, content_type="application/json").status_code == 401
    assert merchant_a.client.post(path, body, format="json").status_code == 403
    for role in ("support", "finance", "auditor", "admin"):
        response = staff_client(role, f"{role}-1").post(path, body, format="json")
        assert response.status_code == 403, role
        assert response.json()["error"]["type"] == "permission_error"
    assert not AuditEntry.objects.filter(action__startswith="runtime.").exists()


@pytest.mark.django_db
def test_switch_gateway_moves_new_payments_and_is_audited_with_the_reason(operator, merchant_a, gateways):
    response = operator.post("/internal/api/payment/switch-gateway", {"primaryGateway": "backup", "reason": "Stripe outage"}, format="json")

    assert response.status_code == 200
    assert response.json()["primaryGateway"] == "backup"
    entry = AuditEntry.objects.get(action="runtime.primary_gateway")
    assert (entry.actor_type, entry.actor_id) == ("staff", "olga")
    assert entry.details == {"previous": None, "value": "backup", "reason": "Stripe outage"}
    payment = merchant_a.client.post("/payment/transactions", {"amount": 100, "currency": "usd", "paymentMethod": "pm_card_visa"}, format="json")
    assert payment.json()["gateway"] == "backup"
    assert merchant_a.client.get("/payment/health").json()["primaryGateway"] == "backup"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, code",
    [
        ({"primaryGateway": "worldpay", "reason": "x"}, "unknown_gateway"),
        ({"primaryGateway": "paypal", "reason": "x"}, "gateway_disabled"),
        ({"reason": "x"}, "required"),
        ({"primaryGateway": "backup", "force": True}, "parameter_unknown"),
    ],
)
def test_switch_gateway_refuses_unknown_or_disabled_gateways_with_a_clear_400(operator, gateways, body, code):
    response = operator.post("/internal/api/payment/switch-gateway", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert not AuditEntry.objects.filter(action="runtime.primary_gateway").exists()


@pytest.mark.django_db
def test_fallback_mode_sends_new_payments_to_the_fallback_gateway(operator, merchant_a, gateways):
    body = {"amount": 100, "currency": "usd", "paymentMethod": "pm_card_visa"}
    assert operator.post("/internal/api/system/enable-fallback-gateway", {"reason": "primary degraded"}, format="json").json()["fallbackMode"] is True
    assert merchant_a.client.post("/payment/transactions", body, format="json").json()["gateway"] == "backup"
    assert merchant_a.client.get("/payment/health").json()["fallbackMode"] is True
    operator.post("/internal/api/system/disable-fallback-gateway")  # the runbook's call: no body
    assert merchant_a.client.post("/payment/transactions", body, format="json").json()["gateway"] == "simulator"
    reasons = list(AuditEntry.objects.filter(action="runtime.fallback_mode").order_by("id").values_list("details__reason", flat=True))
    assert reasons == ["primary degraded", ""]


@pytest.mark.django_db
def test_simplified_flow_is_reported_in_health(operator, client, gateways):
    operator.post("/internal/api/system/enable-simplified-flow", {"reason": "DR failover"}, format="json")
    assert client.get("/payment/health").json()["simplifiedFlow"] is True
    operator.post("/internal/api/system/disable-simplified-flow", {"reason": "primary back"}, format="json")
    assert client.get("/payment/health").json()["simplifiedFlow"] is False
    assert AuditEntry.objects.filter(action="runtime.simplified_flow").count() == 2


@pytest.mark.django_db
def test_reload_api_keys_refuses_an_unreadable_secrets_file_and_keeps_the_old_keys(operator, monkeypatch, tmp_path):
    from gateways.credentials import gateway_credentials

    good = tmp_path / "secrets.json"
    good.write_text(json.dumps({"stripe": {"api_key": "sk_test_oldkey1111", "created_at": "2026-10-01"}}))
    monkeypatch.setenv("FLOWPAY_SECRETS_FILE", str(good))
    assert operator.post("/internal/api/system/reload-api-keys", {"reason": "rotation"}, format="json").status_code == 200
    assert gateway_credentials("stripe").api_key == "sk_test_oldkey1111"
    good.write_text("{not json")
    response = operator.post("/internal/api/system/reload-api-keys", {"reason": "rotation"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "credentials_invalid"
    assert gateway_credentials("stripe").api_key == "sk_test_oldkey1111"
    body = operator.post("/internal/api/system/refresh-db-connections", {}, format="json").json()
    assert body["dbConnectionsVersion"] == 1
    assert "sk_test_oldkey1111" not in json.dumps(list(AuditEntry.objects.values_list("details", flat=True)))


# --- seen by a second process -----------------------------------------------------------------
WATCHER = r"""
import json, sys, time
from django.db import connection
from core.runtime import follow_db_connection_refresh
from gateways.credentials import gateway_credentials
from gateways.router import fallback_mode_enabled, primary_gateway_name, simplified_flow_enabled

def pid():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]

deadline = time.time() + 45
while time.time() < deadline:
    follow_db_connection_refresh()  # what every request and task does at its start
    print(json.dumps({
        "primary": primary_gateway_name(), "fallback": fallback_mode_enabled(), "simplified": simplified_flow_enabled(),
        "stripe_key_last4": gateway_credentials("stripe").api_key[-4:], "db_pid": pid(),
    }), flush=True)
    line = sys.stdin.readline()
    if not line or line.strip() == "stop":
        break
"""


class Watcher:
    """A second Django process that reports what it sees each time it is poked."""

    def __init__(self, env: dict):
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "shell", "--no-imports", "-c", WATCHER], cwd=django_settings.BASE_DIR, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.last = self._read()

    def _read(self) -> dict:
        while True:
            line = self.process.stdout.readline()
            assert line, self.process.stderr.read()[-2000:]
            if line.startswith("{"):  # skip the shell's own banner lines
                return json.loads(line)

    def poke(self) -> dict:
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        self.last = self._read()
        return self.last

    def wait_for(self, predicate, timeout: float = 15) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.poke()):
                return self.last
            time.sleep(0.3)
        raise AssertionError(f"the second process still sees {self.last}")

    def stop(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.write("stop\n")
                self.process.stdin.flush()
                self.process.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


@pytest.mark.django_db(transaction=True)
def test_switches_key_reloads_and_connection_refreshes_are_followed_by_a_second_process(operator, gateways, monkeypatch, tmp_path):
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"stripe": {"api_key": "sk_test_first0001", "created_at": "2026-10-01"}}))
    monkeypatch.setenv("FLOWPAY_SECRETS_FILE", str(secrets))
    env = sibling_env(FLOWPAY_GATEWAYS="simulator,backup", FLOWPAY_RUNTIME_REFRESH_SECONDS="1")
    watcher = None
    try:
        watcher = Watcher(env)
        assert watcher.last["primary"] == "simulator" and watcher.last["stripe_key_last4"] == "0001"
        first_pid = watcher.last["db_pid"]

        operator.post("/internal/api/payment/switch-gateway", {"primaryGateway": "backup", "reason": "Stripe outage"}, format="json")
        watcher.wait_for(lambda seen: seen["primary"] == "backup")

        operator.post("/internal/api/system/enable-fallback-gateway", {"reason": "drill"}, format="json")
        operator.post("/internal/api/system/enable-simplified-flow", {"reason": "drill"}, format="json")
        watcher.wait_for(lambda seen: seen["fallback"] and seen["simplified"])

        secrets.write_text(json.dumps({"stripe": {"api_key": "sk_test_second0002", "created_at": "2026-11-20"}}))
        assert watcher.poke()["stripe_key_last4"] == "0001"  # no reload yet: the old key stays in force
        operator.post("/internal/api/system/reload-api-keys", {"reason": "scheduled rotation"}, format="json")
        watcher.wait_for(lambda seen: seen["stripe_key_last4"] == "0002")

        operator.post("/internal/api/system/refresh-db-connections", {"reason": "after failover"}, format="json")
        watcher.wait_for(lambda seen: seen["db_pid"] != first_pid)
    finally:
        if watcher is not None:
            watcher.stop()
    runtime_invalidate_local_cache()
    reasons = dict(AuditEntry.objects.filter(action__startswith="runtime.").values_list("action", "details__reason"))
    assert reasons == {
        "runtime.primary_gateway": "Stripe outage", "runtime.fallback_mode": "drill", "runtime.simplified_flow": "drill",
        "runtime.credentials_version": "scheduled rotation", "runtime.db_connections_version": "after failover",
    }
