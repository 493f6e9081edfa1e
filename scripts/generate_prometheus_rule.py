#!/usr/bin/env python3
"""Writes deploy/k8s/prometheus-rule.yaml: the PrometheusRule carrying docker/prometheus/alerts.yml.

The alert rules are kept once, in docker/prometheus/alerts.yml (unit-tested with promtool);
the Kubernetes copy is generated from it, byte for byte below its header, and
tests/deploy/test_k8s_manifests.py fails when the two differ. Run after changing the rules:

    python scripts/generate_prometheus_rule.py       (or: make k8s-rules)
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "docker" / "prometheus" / "alerts.yml"
TARGET = ROOT / "deploy" / "k8s" / "prometheus-rule.yaml"

HEADER = """\
# GENERATED from docker/prometheus/alerts.yml by scripts/generate_prometheus_rule.py: do not
# edit; change the rules there (and their promtool tests), then run `make k8s-rules`.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: payment-service-alerts
  namespace: payment
  labels:
    app: payment-service
    app.kubernetes.io/part-of: payment-service
    # The Prometheus Operator's ruleSelector picks rules by this label.
    prometheus: k8s
    role: alert-rules
spec:
"""


def prometheus_rule() -> str:
    lines = ALERTS.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("groups:"))
    body = "\n".join(f"  {line}" if line.strip() else "" for line in lines[start:])
    return HEADER + body + "\n"


if __name__ == "__main__":
    TARGET.write_text(prometheus_rule())
    sys.stdout.write(f"wrote {TARGET.relative_to(ROOT)}\n")
