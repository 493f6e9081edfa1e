"""deploy/k8s: the manifests validate offline, carry the runbook's names, and agree with the
application (probes it serves, queues it uses, the secrets file it reads, its alert rules).

Built-in kinds are validated by kubernetes-validate (pinned; it ships the Kubernetes JSON
schemas, strict: unknown fields fail) for KUBERNETES_VERSION. The custom resources
(ExternalSecret, ScaledObject, ServiceMonitor, PrometheusRule) are validated against the
schemas bundled in tests/deploy/crd_schemas/ (see its README: the CRDs' fields FlowPay uses,
closed to unknown fields)."""

import copy
import json
import re
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from django.conf import settings
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from gateways.credentials import load_gateway_credentials

ROOT = Path(settings.BASE_DIR)
K8S = ROOT / "deploy" / "k8s"
SCHEMAS = Path(__file__).parent / "crd_schemas"
KUBERNETES_VERSION = "1.31.0"
CUSTOM_KINDS = {"ExternalSecret", "ScaledObject", "ServiceMonitor", "PrometheusRule"}
NAMESPACE = "payment"

sys.path.insert(0, str(ROOT / "scripts"))
from generate_prometheus_rule import prometheus_rule  # noqa: E402


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _manifests() -> list[tuple[str, dict]]:
    return [(path.name, doc) for path in sorted(K8S.glob("*.yaml")) if path.name != "kustomization.yaml"
            for doc in _documents(path)]


def _of_kind(kind: str) -> list[dict]:
    return [doc for _, doc in _manifests() if doc["kind"] == kind]


def _named(kind: str, name: str) -> dict:
    [doc] = [doc for doc in _of_kind(kind) if doc["metadata"]["name"] == name]
    return doc


def _pod_templates() -> list[tuple[dict, dict]]:
    """(owner, pod template) for every Deployment and Job."""
    return [(doc, doc["spec"]["template"]) for doc in _of_kind("Deployment") + _of_kind("Job")]


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _crd_validator(kind: str) -> jsonschema.protocols.Validator:
    common = yaml.safe_load((SCHEMAS / "common.yaml").read_text())
    registry = Registry().with_resource("common", DRAFT202012.create_resource(common))
    schema = yaml.safe_load((SCHEMAS / f"{kind}.yaml").read_text())
    return jsonschema.Draft202012Validator(schema, registry=registry)


# --- offline validation -------------------------------------------------------------------

@pytest.mark.parametrize("name,doc", _manifests(), ids=lambda v: v if isinstance(v, str) else f"{v['kind']}/{v['metadata']['name']}")
def test_every_manifest_validates_offline(name, doc):
    if doc["kind"] in CUSTOM_KINDS:
        errors = [error.message for error in _crd_validator(doc["kind"]).iter_errors(doc)]
        assert not errors, errors
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validators_reject_a_misspelt_field():
    # a field Kubernetes does not know, in a Deployment and in a KEDA trigger
    deployment = copy.deepcopy(_named("Deployment", "payment-service"))
    deployment["spec"]["replica"] = deployment["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    scaled = copy.deepcopy(_of_kind("ScaledObject")[0])
    trigger = scaled["spec"]["triggers"][0]["metadata"]
    trigger["listname"] = trigger.pop("listName")
    assert list(_crd_validator("ScaledObject").iter_errors(scaled))
    rule = copy.deepcopy(_of_kind("PrometheusRule")[0])
    rule["spec"]["groups"][0]["rules"][0]["exp"] = rule["spec"]["groups"][0]["rules"][0].pop("expr")
    assert list(_crd_validator("PrometheusRule").iter_errors(rule))


def test_every_object_is_in_the_payment_namespace_and_the_kustomization_lists_every_file():
    for _, doc in _manifests():
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]["name"]
    assert _named("Namespace", NAMESPACE)
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml", "payment-migration-job.yaml"}
    assert set(kustomization["resources"]) == files
    assert kustomization["namespace"] == NAMESPACE


# --- the runbook's names -------------------------------------------------------------------

def test_the_runbook_selectors_match_the_manifests(client, db):
    # kubectl logs|exec -l app=payment-service -n payment: the web pods, and only them
    selected = [owner["metadata"]["name"] for owner, pod in _pod_templates()
                if _selects({"app": "payment-service"}, pod["metadata"]["labels"])]
    assert selected == ["payment-service"]
    web = _named("Deployment", "payment-service")  # kubectl rollout history / scale deployment/payment-service
    assert web["metadata"]["labels"]["app"] == "payment-service"
    assert _selects(web["spec"]["selector"]["matchLabels"], web["spec"]["template"]["metadata"]["labels"])
    # kubectl set image deployment/payment-service -n payment payment-service=ecr.aws/flowmart/payment-service:$VERSION
    [container] = web["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "payment-service"
    assert container["image"].startswith("ecr.aws/flowmart/payment-service:")
    # curl localhost:3000/…: gunicorn on 3000, and the probes' paths are served
    assert {"name": "http", "containerPort": 3000} in container["ports"]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"]["path"] == path
        assert client.get(path).status_code == 200, path
    # kubectl apply -f payment-migration-job.yaml; kubectl logs -l job-name=payment-db-migration -n payment
    [job] = _documents(K8S / "payment-migration-job.yaml")
    assert (job["kind"], job["metadata"]["name"], job["metadata"]["namespace"]) == ("Job", "payment-db-migration", NAMESPACE)
    [migrate] = job["spec"]["template"]["spec"]["containers"]
    assert migrate["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert any(env["name"] == "DATABASE_URL" and env["valueFrom"]["secretKeyRef"]["name"] == "payment-db-owner"
               for env in migrate["env"])


def test_the_service_pdb_hpa_and_service_monitor_select_the_web_pods():
    pod_labels = _named("Deployment", "payment-service")["spec"]["template"]["metadata"]["labels"]
    assert _selects(_named("Service", "payment-service")["spec"]["selector"], pod_labels)
    assert _selects(_named("PodDisruptionBudget", "payment-service")["spec"]["selector"]["matchLabels"], pod_labels)
    hpa = _named("HorizontalPodAutoscaler", "payment-service")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "payment-service"}
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    monitor = _named("ServiceMonitor", "payment-service")
    assert _selects(monitor["spec"]["selector"]["matchLabels"], _named("Service", "payment-service")["metadata"]["labels"])
    assert monitor["spec"]["endpoints"][0] == {**monitor["spec"]["endpoints"][0], "port": "http", "path": "/metrics"}


def _worker_queues(deployment: dict) -> list[str]:
    command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
    return command[command.index("-Q") + 1].split(",")


def test_every_queue_has_workers_scaled_on_its_own_redis_list():
    workers = [d for d in _of_kind("Deployment") if d["spec"]["template"]["metadata"]["labels"]["app"] == "payment-worker"]
    consumed = [queue for worker in workers for queue in _worker_queues(worker)]
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    command = compose["services"]["worker"]["command"]
    every_queue = command[command.index("-Q") + 1].split(",")
    assert sorted(consumed) == sorted(every_queue)  # each queue in exactly one group
    assert {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} <= set(consumed)
    for worker in workers:
        [scaled] = [s for s in _of_kind("ScaledObject") if s["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]]
        lists = [trigger["metadata"]["listName"] for trigger in scaled["spec"]["triggers"]]
        assert sorted(lists) == sorted(_worker_queues(worker))
        env_sources = worker["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        assert {"configMapRef": {"name": "payment-service-config"}} in env_sources
        assert "REDIS_ADDRESS" in _named("ConfigMap", "payment-service-config")["data"]
        assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > settings.CELERY_TASK_TIME_LIMIT


# --- secrets -----------------------------------------------------------------------------

def _secret_names_used() -> set[str]:
    used = set()
    for _, pod in _pod_templates():
        for container in pod["spec"]["containers"]:
            used |= {s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s}
            used |= {e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", []) if "valueFrom" in e}
        used |= {v["secret"]["secretName"] for v in pod["spec"].get("volumes", []) if "secret" in v}
    return used


def _render(template: str, values: dict) -> str:
    """external-secrets' template, for the one construct it uses: {{ .name | toJson }}."""
    rendered = re.sub(r"\{\{\s*\.(\w+)\s*\|\s*toJson\s*\}\}", lambda m: json.dumps(values[m.group(1)]), template)
    assert "{{" not in rendered, rendered
    return rendered


def test_secrets_come_from_aws_secrets_manager_under_the_runbook_names(tmp_path):
    externals = _of_kind("ExternalSecret")
    produced = {external["spec"]["target"]["name"] for external in externals}
    assert _secret_names_used() <= produced  # every Secret a pod needs is made from AWS Secrets Manager
    remote = {(item["remoteRef"]["key"], item["remoteRef"].get("property")) for e in externals for item in e["spec"]["data"]}
    # aws secretsmanager update-secret --secret-id flowmart/payment/stripe-api-key --secret-string '{"api_key": …, "webhook_secret": …}'
    assert {("flowmart/payment/stripe-api-key", "api_key"), ("flowmart/payment/stripe-api-key", "webhook_secret")} <= remote
    assert all(key.startswith("flowmart/payment/") for key, _ in remote)

    # the rendered gateway file is what FLOWPAY_SECRETS_FILE reads
    gateway = _named("ExternalSecret", "payment-gateway-credentials")
    values = {item["secretKey"]: f"value-of-{item['secretKey']}" for item in gateway["spec"]["data"]}
    values.update(stripe_api_key="sk_live_rotated", stripe_created_at="2026-09-01", paypal_created_at="2026-08-01")
    rendered = tmp_path / "flowpay.json"
    rendered.write_text(_render(gateway["spec"]["target"]["template"]["data"]["flowpay.json"], values))
    config = _named("ConfigMap", "payment-service-config")["data"]
    mount = next(m for m in _named("Deployment", "payment-service")["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
                 if m["name"] == "gateway-credentials")
    assert config["FLOWPAY_SECRETS_FILE"] == f"{mount['mountPath']}/flowpay.json"
    credentials = load_gateway_credentials({"FLOWPAY_SECRETS_FILE": str(rendered)})
    assert credentials["stripe"].api_key == "sk_live_rotated"
    assert credentials["stripe"].webhook_secret == "value-of-stripe_webhook_secret"
    assert credentials["stripe"].created_at.isoformat() == "2026-09-01"
    assert credentials["paypal"].client_secret == "value-of-paypal_client_secret"


# --- alert rules -------------------------------------------------------------------------

def test_the_prometheus_rule_carries_exactly_the_alert_rules_of_docker_prometheus():
    path = K8S / "prometheus-rule.yaml"
    assert path.read_text() == prometheus_rule(), "run `make k8s-rules` after changing docker/prometheus/alerts.yml"
    [rule] = _documents(path)
    alerts = yaml.safe_load((ROOT / "docker" / "prometheus" / "alerts.yml").read_text())
    assert rule["spec"]["groups"] == alerts["groups"]
    assert rule["metadata"]["labels"]["app"] == "payment-service"
