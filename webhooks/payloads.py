"""Event payloads are the object exactly as the API renders it (camelCase, merchant
metadata untouched), frozen at the time of the change."""

from djangorestframework_camel_case.settings import api_settings as camel_settings
from djangorestframework_camel_case.util import camelize


def api_payload(serializer_class, instance) -> dict:
    return api_payload_of(serializer_class(instance).data)


def api_payload_of(representation: dict) -> dict:
    """The payload of an object already rendered as the API renders it (snake_case)."""
    return camelize(representation, **camel_settings.JSON_UNDERSCOREIZE)
