import json

from django.conf import settings
from djangorestframework_camel_case.settings import api_settings as camel_settings
from djangorestframework_camel_case.util import underscoreize
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicate_keys(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key[:40]!r}")
        result[key] = value
    return result


class StrictCamelCaseJSONParser(JSONParser):
    """camelCase JSON in, snake_case data out. Strict: NaN/Infinity and duplicate keys are
    parse errors, so what is validated is exactly what the client meant."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.loads(
                stream.read().decode(encoding), parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys
            )
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        return underscoreize(data, **camel_settings.JSON_UNDERSCOREIZE)
