#!/usr/bin/env bash
# Disaster recovery: bring FlowPay up in the DR cluster (the runbook's
# `./scripts/dr-failover.sh payment-service`).
#
#   scripts/dr-failover.sh payment-service [--dry-run] [--replicas N] [--keep-full-flow]
#                                          [--dr-endpoint HOST] [--dns-file PATH]
#
# Steps, each printed before it runs ("+ <command>"):
#   1. check the DR context: it exists in the kubeconfig, is not the primary's, and has the
#      namespace `payment`;
#   2. run the release's migrations there (Job payment-db-migration) and wait for them: the
#      pods must not take traffic on a schema older than their code;
#   3. scale the DR deployments up (web, every worker group, beat) and wait until the web
#      pods are ready (their /readyz probe) and /payment/health answers;
#   4. enable the simplified flow (unless --keep-full-flow): non-essential work pauses;
#   5. write and print the DNS change (dr-dns-change.json) that the runbook's next step
#      applies with `aws route53 change-resource-record-sets`; this script never changes DNS.
#
# --dry-run prints every command and the DNS change without running or writing anything.
#
# Environment:
#   DR_CONTEXT       kubeconfig context of the DR cluster (flowmart-dr)
#   PRIMARY_CONTEXT  the primary cluster's context, which this script refuses to act on (flowmart-primary)
#   NAMESPACE        (payment)
#   OP               an operator token (Bearer) for the simplified-flow switch; required
#                    unless --dry-run or --keep-full-flow
#   DR_ENDPOINT      the DR load balancer's host name (or --dr-endpoint)
#   DNS_NAME         the record to move (api.internal.flowmart.com)
#   K8S_DIR          the manifests (deploy/k8s beside this script)
#
# Exit status: 0 done (or dry run), 1 a step failed, 2 usage or refused.

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DR_CONTEXT="${DR_CONTEXT:-flowmart-dr}"
PRIMARY_CONTEXT="${PRIMARY_CONTEXT:-flowmart-primary}"
NAMESPACE="${NAMESPACE:-payment}"
K8S_DIR="${K8S_DIR:-$(cd "$here/.." && pwd)/deploy/k8s}"
DNS_NAME="${DNS_NAME:-api.internal.flowmart.com}"
DR_ENDPOINT="${DR_ENDPOINT:-}"
dry_run=0
replicas=3
full_flow=0
dns_file="dr-dns-change.json"
service=""

usage() {
    sed -n '5,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,3\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry_run=1 ;;
        --replicas) replicas="${2:?--replicas needs a number}"; shift ;;
        --keep-full-flow) full_flow=1 ;;
        --dr-endpoint) DR_ENDPOINT="${2:?--dr-endpoint needs a host name}"; shift ;;
        --dns-file) dns_file="${2:?--dns-file needs a path}"; shift ;;
        -h|--help) usage ;;
        -*) echo "dr-failover: unknown option $1" >&2; usage ;;
        *) [ -z "$service" ] || usage; service="$1" ;;
    esac
    shift
done

[ -n "$service" ] || usage
if [ "$service" != "payment-service" ]; then
    echo "dr-failover: only payment-service is handled here (got '$service')" >&2
    exit 2
fi
case "$replicas" in ''|*[!0-9]*|0) echo "dr-failover: --replicas must be a positive number" >&2; exit 2 ;; esac
if [ "$DR_CONTEXT" = "$PRIMARY_CONTEXT" ]; then
    echo "dr-failover: DR_CONTEXT is the primary's context ($PRIMARY_CONTEXT): refusing" >&2
    exit 2
fi
if [ -z "$DR_ENDPOINT" ]; then
    echo "dr-failover: the DR load balancer's host name is needed (--dr-endpoint HOST or DR_ENDPOINT)" >&2
    exit 2
fi
if [ "$dry_run" = 0 ] && [ "$full_flow" = 0 ] && [ -z "${OP:-}" ]; then
    echo "dr-failover: set OP to an operator token to enable the simplified flow (or pass --keep-full-flow)" >&2
    exit 2
fi

step() { printf '\n== %s\n' "$*"; }
# Print a command, then run it unless this is a dry run. The operator token is printed as $OP.
run() {
    local shown="$*"
    if [ -n "${OP:-}" ]; then shown="${shown//$OP/\$OP}"; fi
    printf '+ %s\n' "$shown"
    [ "$dry_run" = 1 ] || "$@"
}
k() { run kubectl --context "$DR_CONTEXT" -n "$NAMESPACE" "$@"; }

step "1. DR context: $DR_CONTEXT (namespace $NAMESPACE)"
run kubectl config get-contexts "$DR_CONTEXT"
k get namespace "$NAMESPACE"

step "2. Migrations in the DR cluster (Job payment-db-migration)"
k delete job payment-db-migration --ignore-not-found
k apply -f "$K8S_DIR/payment-migration-job.yaml"
k wait --for=condition=complete job/payment-db-migration --timeout=1800s

step "3. Scale up and wait for readiness"
k scale deployment payment-service --replicas="$replicas"
k scale deployment -l app=payment-worker --replicas=1
k scale deployment payment-beat --replicas=2
k rollout status deployment/payment-service --timeout=600s
k exec deploy/payment-service -- curl -sf localhost:3000/readyz
k exec deploy/payment-service -- curl -s localhost:3000/payment/health

step "4. Simplified flow"
if [ "$full_flow" = 1 ]; then
    echo "kept off (--keep-full-flow)"
else
    k exec deploy/payment-service -- curl -sf -X POST localhost:3000/internal/api/system/enable-simplified-flow \
        -H "Authorization: Bearer ${OP:-\$OP}" -H "Content-Type: application/json" \
        -d '{"reason": "disaster recovery failover"}'
fi

step "5. DNS change (applied by the runbook's next step, not by this script)"
change=$(cat <<EOF
{
  "Comment": "FlowPay disaster recovery: $DNS_NAME to the DR cluster",
  "Changes": [
    {
      "Action": "UPSERT",
      "ResourceRecordSet": {
        "Name": "$DNS_NAME",
        "Type": "CNAME",
        "TTL": 60,
        "ResourceRecords": [{"Value": "$DR_ENDPOINT"}]
      }
    }
  ]
}
EOF
)
if [ "$dry_run" = 1 ]; then
    echo "would write $dns_file:"
else
    printf '%s\n' "$change" > "$dns_file"
    echo "wrote $dns_file:"
fi
printf '%s\n' "$change"
echo
echo "next: aws route53 change-resource-record-sets --hosted-zone-id \$HOSTED_ZONE_ID --change-batch file://$dns_file"
