"""scripts/dr-failover.sh, the runbook's `./scripts/dr-failover.sh payment-service`: the dry run
prints every command in order and runs none; a real run executes exactly those commands (here
against a stand-in `kubectl` that records its calls and runs the in-pod curl calls against a
live FlowPay server), enabling the simplified flow through the real operator endpoint."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from accounts.services import staff_token_create
from audit.models import AuditEntry
from core.actors import Actor
from core.runtime import runtime_invalidate_local_cache, simplified_flow_enabled

ROOT = Path(settings.BASE_DIR)
SCRIPT = ROOT / "scripts" / "dr-failover.sh"
K8S = ROOT / "deploy" / "k8s"
DR = "--context flowmart-dr -n payment"

EXPECTED = [
    "kubectl config get-contexts flowmart-dr",
    f"kubectl {DR} get namespace payment",
    f"kubectl {DR} delete job payment-db-migration --ignore-not-found",
    f"kubectl {DR} apply -f {K8S}/payment-migration-job.yaml",
    f"kubectl {DR} wait --for=condition=complete job/payment-db-migration --timeout=1800s",
    f"kubectl {DR} scale deployment payment-service --replicas=3",
    f"kubectl {DR} scale deployment -l app=payment-worker --replicas=1",
    f"kubectl {DR} scale deployment payment-beat --replicas=2",
    f"kubectl {DR} rollout status deployment/payment-service --timeout=600s",
    f"kubectl {DR} exec deploy/payment-service -- curl -sf localhost:3000/readyz",
    f"kubectl {DR} exec deploy/payment-service -- curl -s localhost:3000/payment/health",
    f"kubectl {DR} exec deploy/payment-service -- curl -sf -X POST localhost:3000/internal/api/system/enable-simplified-flow"
    ' -H Authorization: Bearer $OP -H Content-Type: application/json -d {"reason": "disaster recovery failover"}',
]

FAKE_KUBECTL = """#!/usr/bin/env python3
import json, os, subprocess, sys
args = sys.argv[1:]
with open(os.environ["FAKE_KUBECTL_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[:2] == ["config", "get-contexts"]:
    sys.exit(0 if args[2] in os.environ["FAKE_KUBECTL_CONTEXTS"].split(",") else 1)
if "--" in args:  # kubectl exec … -- <command>: run it against the live server
    command = [a.replace("localhost:3000", os.environ["FAKE_KUBECTL_SERVER"]) for a in args[args.index("--") + 1:]]
    sys.exit(subprocess.call(command))
sys.exit(0)
"""


def _run(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in ("OP", "DR_CONTEXT", "PRIMARY_CONTEXT")}
    environment.update({"DR_ENDPOINT": "dr-lb.elb.example.net", **(env or {})})
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=environment, timeout=120,
                          cwd=cwd or ROOT)


def _commands(stdout: str) -> list[str]:
    return [line[2:] for line in stdout.splitlines() if line.startswith("+ ")]


def test_the_dry_run_prints_every_step_in_order_and_runs_nothing(tmp_path):
    result = _run("payment-service", "--dry-run", env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, cwd=tmp_path)
    # no kubectl on that PATH: nothing was run, yet every command is printed
    assert result.returncode == 0, result.stderr
    printed = [" ".join(command.split()) for command in _commands(result.stdout)]
    assert printed == [" ".join(command.split()) for command in EXPECTED]
    # the DNS change the runbook's next step applies, printed, not written
    change = json.loads(result.stdout.split("would write dr-dns-change.json:\n", 1)[1].split("\n\nnext:", 1)[0])
    record = change["Changes"][0]["ResourceRecordSet"]
    assert (change["Changes"][0]["Action"], record["Name"], record["ResourceRecords"]) == (
        "UPSERT", "api.internal.flowmart.com", [{"Value": "dr-lb.elb.example.net"}])
    assert ("next: aws route53 change-resource-record-sets --hosted-zone-id $HOSTED_ZONE_ID "
            "--change-batch file://dr-dns-change.json") in result.stdout
    assert not (tmp_path / "dr-dns-change.json").exists()


def test_the_dry_run_never_prints_the_operator_token():
    result = _run("payment-service", "--dry-run", env={"OP": "fp_staff_supersecret"})
    assert result.returncode == 0 and "fp_staff_supersecret" not in result.stdout + result.stderr
    assert "Bearer $OP" in result.stdout


@pytest.mark.parametrize("args,env,message", [
    ((), {}, "usage"),
    (("orders-service", "--dry-run"), {}, "only payment-service"),
    (("payment-service", "--dry-run"), {"DR_CONTEXT": "flowmart-primary"}, "primary"),
    (("payment-service", "--dry-run", "--replicas", "0"), {}, "--replicas"),
    (("payment-service",), {}, "OP"),  # a real run without an operator token
    (("payment-service", "--dry-run"), {"DR_ENDPOINT": ""}, "load balancer"),
])
def test_bad_usage_is_refused_before_anything_runs(args, env, message):
    result = _run(*args, env=env)
    assert result.returncode == 2
    assert message in result.stderr or (message == "usage" and "dr-failover.sh payment-service" in result.stderr)
    assert "+ " not in result.stdout


@pytest.mark.django_db(transaction=True)
def test_a_real_run_executes_those_commands_and_enables_the_simplified_flow(tmp_path, live_server):
    # given a DR context that exists, and an operator token
    (tmp_path / "kubectl").write_text(FAKE_KUBECTL)
    (tmp_path / "kubectl").chmod(0o755)
    log = tmp_path / "kubectl.log"
    operator = staff_token_create(username="dr-operator", role="operator", actor=Actor.system("test")).secret
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "OP": operator, "FAKE_KUBECTL_LOG": str(log),
           "FAKE_KUBECTL_CONTEXTS": "flowmart-primary,flowmart-dr", "FAKE_KUBECTL_SERVER": live_server.url}

    # when the failover runs
    result = _run("payment-service", env=env, cwd=tmp_path)

    # then kubectl received exactly the dry run's commands, the switch is on and audited
    assert result.returncode == 0, result.stdout + result.stderr
    calls = [" ".join(["kubectl", *json.loads(line)]) for line in log.read_text().splitlines()]
    assert [call.replace(operator, "$OP") for call in calls] == EXPECTED
    runtime_invalidate_local_cache()
    assert simplified_flow_enabled()
    assert AuditEntry.objects.filter(action__contains="simplified", actor_id__contains="dr-operator").exists()
    assert json.loads((tmp_path / "dr-dns-change.json").read_text())["Changes"][0]["Action"] == "UPSERT"
    assert operator not in result.stdout + result.stderr


def test_a_missing_dr_context_stops_the_failover_at_the_first_step(tmp_path):
    (tmp_path / "kubectl").write_text(FAKE_KUBECTL)
    (tmp_path / "kubectl").chmod(0o755)
    log = tmp_path / "kubectl.log"
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "OP": "x", "FAKE_KUBECTL_LOG": str(log),
           "FAKE_KUBECTL_CONTEXTS": "flowmart-primary", "FAKE_KUBECTL_SERVER": "http://127.0.0.1:9"}
    result = _run("payment-service", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert [json.loads(line) for line in log.read_text().splitlines()] == [["config", "get-contexts", "flowmart-dr"]]
