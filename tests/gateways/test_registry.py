"""The gateway registry names adapters and event translators by import string."""

from django.utils.module_loading import import_string

from gateways.registry import GATEWAY_CLASSES, GATEWAY_EVENT_TRANSLATORS


def test_every_registered_adapter_and_event_translator_imports():
    # No SDK is imported until a gateway is used, so a module move that forgets the registry
    # would otherwise only fail at the first payment or webhook.
    for target in [*GATEWAY_CLASSES.values(), *GATEWAY_EVENT_TRANSLATORS.values()]:
        assert callable(import_string(target)), target
