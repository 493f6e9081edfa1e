"""Event payloads are the object exactly as the API renders it (camelCase, merchant
metadata untouched), frozen at the time of the change."""

from djangorestframework_camel_case.settings import api_settings as camel_settings
from djangorestframework_camel_case.util import camelize


def api_payload(serializer_class, instance) -> dict:
    return camelize(serializer_class(instance).data, **camel_settings.JSON_UNDERSCOREIZE)
