"""docker/grafana: every panel queries metrics a running FlowPay exports (gunicorn with the
image's configuration, scraped at /metrics), the key-metrics dashboard draws the runbook's
thresholds, and compose provisions the dashboards with the data source they name."""

import json
import re
import urllib.request
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import free_port, start_gunicorn, stop_process

GRAFANA = Path(settings.BASE_DIR) / "docker" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",), "summary": ("_sum", "_count", "_created", ""), "info": ("_info",), "unknown": ("",)}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
                "le", "inf", "nan"}
# The runbook's Key Metrics table: metric → (warning, critical) as drawn (value where the colour starts).
RUNBOOK_THRESHOLDS = {
    "payment_processing_rate": {"yellow": 1, "green": 5},      # warning < 5, critical < 1
    "payment_success_rate": {"yellow": 0.90, "green": 0.95},   # warning < 95 %, critical < 90 %
    "payment_processing_latency": {"yellow": 3, "red": 8},     # warning > 3 s, critical > 8 s
    "refund_processing_latency": {"yellow": 5, "red": 15},     # warning > 5 s, critical > 15 s
    "gateway_error_rate": {"yellow": 0.02, "red": 0.05},       # warning > 2 %, critical > 5 %
}


def _panels(path: Path) -> list[dict]:
    return json.loads(path.read_text())["panels"]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, grouping labels, label
    matchers, ranges and keywords removed)."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text))
    return {name for name in names if name.lower() not in PROMQL_WORDS}


@pytest.fixture
def exported_samples(transactional_db, merchant_a) -> set[str]:
    """Sample names on /metrics of FlowPay served by gunicorn, after a merchant's payment
    (the rates computed from recent payments and gateway calls are absent when idle)."""
    port = free_port()
    web = start_gunicorn(port)
    try:
        payment = urllib.request.Request(
            f"http://127.0.0.1:{port}/payment/transactions", method="POST",
            data=json.dumps({"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa"}).encode(),
            headers={"Authorization": f"Bearer {merchant_a.api_key}", "Content-Type": "application/json"},
        )
        assert urllib.request.urlopen(payment, timeout=30).status == 201
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
    finally:
        stop_process(web)
    names = set()
    for family in text_string_to_metric_families(body):
        names |= {family.name + suffix for suffix in SUFFIXES[family.type]}
        names |= {sample.name for sample in family.samples}
    return names


def test_metric_names_are_read_from_promql():
    assert metric_names('histogram_quantile(0.95, sum by (gateway, le) (rate(x_bucket{a="b"}[5m]))) > 3') == {"x_bucket"}
    assert metric_names("max by (queue) (rebill_queue_depth) or on() vector(0)") == {"rebill_queue_depth"}


def test_every_panel_queries_metrics_that_a_running_flowpay_exports(exported_samples):
    assert "payment_success_rate" in exported_samples  # the scrape worked
    queried = {}
    for path in DASHBOARDS:
        for panel in _panels(path):
            for target in panel.get("targets", []):
                for name in metric_names(target["expr"]):
                    queried.setdefault(name, []).append(f"{path.name}: {panel['title']}")
    assert queried
    missing = {name: where for name, where in queried.items() if name not in exported_samples}
    assert not missing, missing


def test_the_key_metrics_dashboard_draws_the_runbook_thresholds():
    panels = _panels(GRAFANA / "dashboards" / "flowpay-key-metrics.json")
    drawn = {}
    for panel in panels:
        for target in panel.get("targets", []):
            [name] = metric_names(target["expr"])
            base = re.sub(r"_bucket$", "", name)
            if base in RUNBOOK_THRESHOLDS:
                defaults = panel["fieldConfig"]["defaults"]
                steps = {step["color"]: step["value"] for step in defaults["thresholds"]["steps"] if step["value"] is not None}
                drawn[base] = steps
                assert defaults["custom"]["thresholdsStyle"]["mode"] != "off", panel["title"]
    assert drawn == RUNBOOK_THRESHOLDS


def test_compose_provisions_the_dashboards_and_their_data_source():
    compose = yaml.safe_load((GRAFANA.parent / "compose.yaml").read_text())
    volumes = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in compose["services"]["grafana"]["volumes"])
    assert volumes["./grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "flowpay.yaml").read_text())["providers"][0]
    assert volumes["./grafana/dashboards"] == provider["options"]["path"]
    [source] = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090" and "prometheus" in compose["services"]
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in dashboard["panels"]:
            if "targets" in panel:
                assert panel["datasource"]["uid"] == source["uid"]
                assert all(target["datasource"]["uid"] == source["uid"] for target in panel["targets"])
