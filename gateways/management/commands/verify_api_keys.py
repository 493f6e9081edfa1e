"""Runbook "Managing API Keys": verify the new keys are active,
after `POST /internal/api/system/reload-api-keys`.

Each enabled gateway's verify_credentials() is called through the router's observed_call
(operation "health"), so the call shows in the gateway metrics. A key the gateway does not
accept is reported as a rejected request: it does not trip or close the circuit breaker."""

import time

from core.cli import Column, Report, RunbookCommand
from gateways.base import GatewayError, GatewayRequestError
from gateways.credentials import gateway_credentials, mask_secret
from gateways.registry import enabled_gateway_names, gateway_named
from gateways.router import observed_call


class _KeyRejected(GatewayRequestError):
    code = "gateway_credentials_rejected"


def _verify(gateway) -> bool:
    if not gateway.verify_credentials():
        raise _KeyRejected("the gateway did not accept the credentials")
    return True


class Command(RunbookCommand):
    help = (
        "Check that each enabled gateway accepts its API key (only the key's last 4 characters are shown). "
        "Exits 1 when a key is not configured or does not work."
    )

    def build_report(self, **options) -> Report:
        rows, report = [], Report(ok_message="OK: every enabled gateway accepts its key.")
        for name in enabled_gateway_names():
            creds = gateway_credentials(name)
            secret = creds.primary_secret
            row = {
                "gateway": name,
                "key": mask_secret(secret) if secret else ("(none needed)" if creds.is_configured else "(not set)"),
                "source": creds.source if secret else None,
                "result": None,
                "latencyMs": None,
                "detail": "",
            }
            if not creds.is_configured:
                row.update(result="NOT CONFIGURED", detail="no API key is configured for this enabled gateway")
                report.problem(f"{name}: no API key is configured")
                rows.append(row)
                continue
            gateway = gateway_named(name)
            started = time.perf_counter()
            try:
                observed_call(gateway=name, operation="health", flowpay_id=None, call=lambda g=gateway: _verify(g))
                row["result"] = "valid"
            except _KeyRejected:
                row.update(result="FAILED", detail="the gateway refused the key or could not be reached")
                report.problem(f"{name}: key {row['key']} does not work")
            except GatewayError as exc:
                row.update(result="FAILED", detail=f"{exc.code}: {str(exc)[:200]}")
                report.problem(f"{name}: key {row['key']} could not be verified ({exc.code})")
            except Exception as exc:  # an unexpected SDK error: report it, check the other gateways
                row.update(result="FAILED", detail=f"{type(exc).__name__}: {str(exc)[:200]}")
                report.problem(f"{name}: key {row['key']} could not be verified ({type(exc).__name__})")
            row["latencyMs"] = round((time.perf_counter() - started) * 1000, 1)
            rows.append(row)
        report.add_table(
            "gateways", "Enabled gateways",
            [Column("gateway", "GATEWAY"), Column("key", "KEY"), Column("source", "SOURCE"), Column("result", "RESULT"),
             Column("latencyMs", "LATENCY MS"), Column("detail", "DETAIL")],
            rows,
        )
        return report
