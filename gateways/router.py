"""The router: which gateway a new payment goes to, and how every gateway call is observed.

Routing rules (runbook "Payment Gateway Issues" and "Failure Recovery"):
- Candidates are the enabled gateways (FLOWPAY_GATEWAYS, in priority order) with the
  primary first. The primary is the operator's runtime choice (switch-gateway), shared by
  every process, else the first enabled gateway.
- Fallback mode (enable-fallback-gateway) moves the primary to the end: new payments go to
  the fallback gateways, and the primary is used only if none of them can take the payment.
- A gateway whose circuit breaker is open is skipped; in half-open state one probe passes.
- A gateway that cannot use the payment method (a token saved at another gateway) is skipped.
- Failover happens only after an error that proves nothing happened at the gateway
  (GatewayUnavailableError). A decline is final; a timeout is an unknown outcome and the
  payment is never sent elsewhere (the stuck-transaction checker asks the same gateway).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings

from core import runtime
from core.cache import cache_pipeline
from core.observability.metrics import gateway_request_duration_seconds, gateway_requests, psp_call_errors
from core.observability.tracing import traced
from core.runtime import fallback_mode_enabled, simplified_flow_enabled  # noqa: F401  (part of the router's API)
from gateways.base import (
    ChargeResult,
    Gateway,
    GatewayError,
    GatewayRequestError,
    GatewayTimeout,
    GatewayUnavailableError,
    Outcome,
)
from gateways.breaker import breaker_for
from gateways.registry import enabled_gateway_names, gateway_named
from gateways.stats import gateway_stats_record

logger = logging.getLogger(__name__)

T = TypeVar("T")


def primary_gateway_name() -> str:
    enabled = enabled_gateway_names()
    chosen = runtime.runtime_get(runtime.PRIMARY_GATEWAY)
    return chosen if chosen in enabled else enabled[0]


def routing_order() -> list[str]:
    enabled = enabled_gateway_names()
    primary = primary_gateway_name()
    others = [name for name in enabled if name != primary]
    return [*others, primary] if fallback_mode_enabled() else [primary, *others]


def _supports(gateway: Gateway, payment_method: str) -> bool:
    supports = getattr(gateway, "supports_payment_method", None)
    return supports(payment_method) if supports else True


def any_gateway_supports(payment_method: str) -> bool:
    return any(_supports(gateway_named(name), payment_method) for name in enabled_gateway_names())


def next_gateway_for_new_payment(*, payment_method: str, exclude: set[str], only: str | None = None) -> Gateway | None:
    """The gateway the next authorization attempt should go to, or None when no gateway
    can take it now. `only` pins the payment to one gateway (a saved method's token)."""
    for name in [only] if only else routing_order():
        if name in exclude:
            continue
        gateway = gateway_named(name)
        if not _supports(gateway, payment_method):
            continue
        if not breaker_for(name).allow_request():
            logger.info("gateway skipped: circuit open", extra={"gateway": name})
            continue
        return gateway
    return None


def backoff_delay(retry_number: int) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**n))."""
    base = settings.FLOWPAY_GATEWAY_BACKOFF_BASE_SECONDS
    cap = settings.FLOWPAY_GATEWAY_BACKOFF_CAP_SECONDS
    return random.uniform(0, min(cap, base * 2**retry_number))


def max_retries() -> int:
    return settings.FLOWPAY_GATEWAY_RETRIES


def observed_call(*, gateway: str, operation: str, flowpay_id: str | None, call: Callable[[], T]) -> T:
    """Run one gateway call, recording metrics, shared call statistics and the breaker
    outcome. Exceptions pass through unchanged.

    `flowpay_id` is the public id of the FlowPay object the call is about (`txn_…`, `re_…`),
    None only for calls about no object (credential and health checks). A timeout is logged
    as `gateway timeout: <gateway> <operation> <flowpay id> outcome unknown`: operators grep
    the logs for "gateway timeout", so those words stay as they are. While tracing is on,
    the call is a span `gateway <operation>` carrying the gateway and that id, the parent of
    the adapter's HTTP call."""
    with traced(f"gateway {operation}", public_ids=(flowpay_id,), **{"flowpay.gateway": gateway,
                                                                     "flowpay.gateway_operation": operation}):
        return _observed(gateway=gateway, operation=operation, flowpay_id=flowpay_id, call=call)


def _observed(*, gateway: str, operation: str, flowpay_id: str | None, call: Callable[[], T]) -> T:
    started = time.perf_counter()
    outcome, failed_gateway = "ok", False
    try:
        result = call()
        if isinstance(result, ChargeResult) and result.outcome == Outcome.DECLINED:
            outcome = "declined"
        return result
    except GatewayTimeout as exc:
        outcome, failed_gateway = "timeout", True
        psp_call_errors.labels(gateway=gateway, operation=operation, error=exc.code).inc()
        logger.warning(
            "gateway timeout: %s %s %s outcome unknown", gateway, operation, flowpay_id or "-",
            extra={"gateway": gateway, "operation": operation, "flowpay_id": flowpay_id},
        )
        raise
    except GatewayUnavailableError as exc:
        outcome, failed_gateway = "error", True
        psp_call_errors.labels(gateway=gateway, operation=operation, error=exc.code).inc()
        raise
    except GatewayRequestError as exc:
        outcome = "rejected"
        psp_call_errors.labels(gateway=gateway, operation=operation, error=exc.code).inc()
        raise
    except GatewayError as exc:
        outcome, failed_gateway = "error", True
        psp_call_errors.labels(gateway=gateway, operation=operation, error=exc.code).inc()
        raise
    finally:
        elapsed = time.perf_counter() - started
        gateway_requests.labels(gateway=gateway, operation=operation, outcome=outcome).inc()
        gateway_request_duration_seconds.labels(gateway=gateway, operation=operation).observe(elapsed)
        # The statistics and a success's breaker update share one round trip to Redis.
        pipeline = cache_pipeline()
        gateway_stats_record(
            gateway=gateway, operation=operation, error=outcome in ("error", "timeout"), latency_ms=int(elapsed * 1000),
            pipeline=pipeline,
        )
        breaker = breaker_for(gateway)
        if failed_gateway:
            breaker.record_failure()
        elif outcome in ("ok", "declined"):
            breaker.record_success(pipeline=pipeline)
        if pipeline is not None:
            pipeline.execute()
