"""Which gateway handles what. The router with circuit breakers and failover replaces
`gateway_for_new_payment` in the gateway issue; everything else asks `gateway_named`."""

from functools import cache

from django.conf import settings
from django.core.checks import Error, register

from payments.gateways.base import Gateway
from payments.gateways.simulator import SimulatorGateway

GATEWAY_CLASSES: dict[str, type] = {"simulator": SimulatorGateway}


@cache
def gateway_named(name: str) -> Gateway:
    try:
        return GATEWAY_CLASSES[name]()
    except KeyError:
        raise LookupError(f"unknown gateway {name!r}") from None


def enabled_gateway_names() -> list[str]:
    return list(settings.FLOWPAY_GATEWAYS)


def gateway_for_new_payment() -> Gateway:
    return gateway_named(enabled_gateway_names()[0])


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
    return []
