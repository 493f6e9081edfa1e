"""The circuit breaker (gateways.breaker) as the router uses it: it opens after N failures so
that new payments skip the primary, a half-open probe closes or reopens it, and its state
is shared by every process through Redis."""

import json
import subprocess
import sys
import time

import pytest
from django.conf import settings as django_settings

from gateways.breaker import BreakerState, breaker_for
from gateways.simulator.adapter import SimulatorFaults, simulator_faults_clear, simulator_faults_set
from tests.support.gateways import BODY, URL, attempts_of
from tests.support.processes import sibling_env


@pytest.mark.django_db
def test_breaker_opens_after_n_failures_then_new_payments_skip_the_primary(merchant_a, two_gateways, time_machine):
    # The clock stands still: the three failures fall in one window of the breaker's count, and
    # its one-second cooldown cannot elapse on a slow machine before the third payment.
    time_machine.move_to(time.time(), tick=False)
    simulator_faults_set(SimulatorFaults(error_rate=1.0), "simulator")
    merchant_a.client.post(URL, BODY, format="json")  # 2 failures
    merchant_a.client.post(URL, BODY, format="json")  # 3rd failure opens the breaker
    assert breaker_for("simulator").status().state == BreakerState.OPEN

    response = merchant_a.client.post(URL, BODY, format="json")

    assert attempts_of(response.json()["id"]) == [("backup", "succeeded")]  # the primary is not even tried
    health = merchant_a.client.get("/payment/health").json()
    circuits = {g["name"]: g["circuit"] for g in health["gateways"]}
    assert circuits == {"simulator": "open", "backup": "closed"}


@pytest.mark.django_db
def test_half_open_probe_closes_the_breaker_when_the_gateway_recovers(merchant_a, two_gateways):
    simulator_faults_set(SimulatorFaults(error_rate=1.0), "simulator")
    for _ in range(2):
        merchant_a.client.post(URL, BODY, format="json")
    assert breaker_for("simulator").status().state == BreakerState.OPEN
    simulator_faults_clear("simulator")
    time.sleep(1.1)  # the cooldown
    assert breaker_for("simulator").status().state == BreakerState.HALF_OPEN

    probe = merchant_a.client.post(URL, BODY, format="json").json()

    assert attempts_of(probe["id"]) == [("simulator", "succeeded")]
    assert breaker_for("simulator").status().state == BreakerState.CLOSED


@pytest.mark.django_db
def test_a_failed_half_open_probe_opens_the_breaker_again(merchant_a, two_gateways):
    simulator_faults_set(SimulatorFaults(error_rate=1.0), "simulator")
    for _ in range(2):
        merchant_a.client.post(URL, BODY, format="json")
    time.sleep(1.1)
    probe = merchant_a.client.post(URL, BODY, format="json").json()
    assert attempts_of(probe["id"])[0] == ("simulator", "error")  # the single probe failed
    assert probe["gateway"] == "backup"
    assert breaker_for("simulator").status().state == BreakerState.OPEN


# The processes of the cross-process test must agree on a cool-down longer than starting a
# few Django processes can take on a loaded machine, or the breaker half-opens in between.
LONG_COOLDOWN_SECONDS = 3600


def _subprocess_env() -> dict:
    return sibling_env(FLOWPAY_GATEWAYS="simulator", FLOWPAY_BREAKER_COOLDOWN_SECONDS=str(LONG_COOLDOWN_SECONDS))


def _in_another_process(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=django_settings.BASE_DIR, env=_subprocess_env(),
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.django_db
def test_the_breaker_state_is_shared_by_two_processes(settings):
    settings.FLOWPAY_BREAKER_COOLDOWN_SECONDS = LONG_COOLDOWN_SECONDS
    # opened here, seen there
    for _ in range(django_settings.FLOWPAY_BREAKER_FAILURE_THRESHOLD):
        breaker_for("simulator").record_failure()
    assert _in_another_process(
        "from gateways.breaker import breaker_for; print(breaker_for('simulator').status().state)"
    ) == "open"
    # failures recorded there open the breaker here
    assert _in_another_process(
        "from gateways.breaker import breaker_for\n"
        "[breaker_for('paypal').record_failure() for _ in range(5)]\n"
        "print(breaker_for('paypal').status().state)"
    ) == "open"
    assert breaker_for("paypal").status().state == BreakerState.OPEN
    assert json.loads(_in_another_process("import json; from gateways.breaker import breaker_for; "
                                          "print(json.dumps(breaker_for('simulator').allow_request()))")) is False
