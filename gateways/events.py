"""What a verified gateway event says, in FlowPay's terms.

`WebhookEvent` (base.py) is the verified event with the gateway's raw object; this module
turns it into the dataclasses of gateways.event_types, which the inbound-event service
applies (gateway_events.services), so that, as everywhere else, nothing outside
`gateways/` reads a gateway payload. Each gateway with webhooks has its translator
(gateways.stripe.events, gateways.paypal.events), found through
gateways.registry.GATEWAY_EVENT_TRANSLATORS: the translators import the types, never this
module.
"""

from __future__ import annotations

from django.utils.module_loading import import_string

from gateways.base import WebhookEvent
from gateways.credentials import gateway_credentials
from gateways.event_types import DisputeChange, EventChanges, PaymentChange, RefundChange
from gateways.registry import GATEWAY_EVENT_TRANSLATORS

# The event types are part of this module's interface (gateway_events.services imports them here).
__all__ = [
    "DisputeChange",
    "EventChanges",
    "PaymentChange",
    "RefundChange",
    "webhook_configuration_hint",
    "webhook_configured",
    "webhook_event_changes",
]


def webhook_event_changes(event: WebhookEvent) -> EventChanges:
    """The changes a verified event announces (an unsupported result for gateways without
    webhooks or event types FlowPay does not act on)."""
    target = GATEWAY_EVENT_TRANSLATORS.get(event.gateway)
    if target is None:
        return EventChanges(unsupported=f"the {event.gateway} gateway sends no webhooks FlowPay acts on")
    translate = import_string(target) if isinstance(target, str) else target
    return translate(event)


def webhook_configured(gateway: str) -> bool:
    """Whether inbound webhooks of `gateway` can be verified with the credentials in force:
    Stripe needs STRIPE_WEBHOOK_SECRET, PayPal PAYPAL_WEBHOOK_ID and its API credentials
    (verification is a call to PayPal)."""
    creds = gateway_credentials(gateway)
    if gateway == "stripe":
        return bool((creds.webhook_secret or "").strip(" ,"))
    if gateway == "paypal":
        return bool(creds.webhook_id and creds.is_configured)
    return False


def webhook_configuration_hint(gateway: str) -> str:
    return {
        "stripe": "set STRIPE_WEBHOOK_SECRET (the endpoint's signing secret, several comma-separated while rotating)",
        "paypal": "set PAYPAL_WEBHOOK_ID with PAYPAL_CLIENT_ID and PAYPAL_CLIENT_SECRET",
    }.get(gateway, "this gateway has no webhooks")
