"""The simulator gateway's fault injection (the simulator_faults command), seen by every process."""

import json

import pytest


@pytest.mark.django_db
def test_simulator_faults_command_sets_and_clears_faults_for_every_process():
    from io import StringIO

    from django.core.management import CommandError, call_command

    from gateways.simulator.adapter import simulator_faults_get

    out = StringIO()
    call_command("simulator_faults", "--error-rate", "0.5", "--latency-ms", "20", stdout=out)
    assert json.loads(out.getvalue())["error_rate"] == 0.5
    assert simulator_faults_get().latency_ms == 20
    with pytest.raises(CommandError):
        call_command("simulator_faults", "--error-rate", "2")
    call_command("simulator_faults", "--clear", stdout=StringIO())
    assert not simulator_faults_get().active
