"""The gateways FlowPay knows and which of them are enabled (FLOWPAY_GATEWAYS, in priority
order). Routing between them lives in gateways.router."""

from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.core.checks import Error, register
from django.utils.module_loading import import_string

from gateways.base import Gateway

# Imported lazily: a deployment that does not enable a gateway never imports its SDK.
GATEWAY_CLASSES: dict[str, str | type] = {
    "simulator": "gateways.simulator.adapter.SimulatorGateway",
    "stripe": "gateways.stripe.adapter.StripeGateway",
    "paypal": "gateways.paypal.adapter.PayPalGateway",
}
# The translator of each gateway's verified events into FlowPay changes (event -> EventChanges),
# for gateways.events; a gateway without webhooks FlowPay acts on has none.
GATEWAY_EVENT_TRANSLATORS: dict[str, str | Callable] = {
    "stripe": "gateways.stripe.events.stripe_event_changes",
    "paypal": "gateways.paypal.events.paypal_event_changes",
}


@cache
def gateway_named(name: str) -> Gateway:
    try:
        target = GATEWAY_CLASSES[name]
    except KeyError:
        raise LookupError(f"unknown gateway {name!r}") from None
    cls = import_string(target) if isinstance(target, str) else target
    return cls()


def enabled_gateway_names() -> list[str]:
    return list(settings.FLOWPAY_GATEWAYS)


@register()
def check_gateways_configured(app_configs, **kwargs):
    names = enabled_gateway_names()
    if not names:
        return [Error("FLOWPAY_GATEWAYS is empty", id="flowpay.E001")]
    unknown = [n for n in names if n not in GATEWAY_CLASSES]
    if unknown:
        return [
            Error(
                f"FLOWPAY_GATEWAYS names unknown gateways: {', '.join(unknown)}",
                hint=f"known gateways: {', '.join(GATEWAY_CLASSES)}",
                id="flowpay.E002",
            )
        ]
    if len(set(names)) != len(names):
        return [Error("FLOWPAY_GATEWAYS lists a gateway twice", id="flowpay.E003")]
    return []
