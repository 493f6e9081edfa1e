"""The API's one request body format: strict JSON, camelCase keys, in a charset FlowPay reads.

Strict means what is validated is exactly what the client meant, and that no body can make
the server fail: NaN/Infinity, duplicate keys and nesting deeper than MAX_JSON_DEPTH are
parse errors (400 invalid_json), a lone surrogate anywhere (a key, a value) is a 400
naming where, and a charset other than READABLE_CHARSETS is a 415. The card-data guard
(audit.middleware) reads a body with the same functions, so it sees what the view will."""

import codecs
import json
import re
from collections.abc import Mapping

from django.conf import settings
from djangorestframework_camel_case.settings import api_settings as camel_settings
from djangorestframework_camel_case.util import underscoreize
from rest_framework.exceptions import ErrorDetail, ParseError, ValidationError
from rest_framework.parsers import JSONParser

from core.errors import ErrorCode, UnsupportedMediaType
from core.storable import SURROGATE, unstorable_path

# Deeper than any FlowPay body (metadata is flat); far below Python's recursion limit, which
# a deeply nested body would otherwise reach in the decoder, the renderers or the guard.
MAX_JSON_DEPTH = 64

# The charsets (as codecs names them) a body may be declared in. Each is decoded exactly as
# declared by the guard and by the parser. Anything else is refused: UTF-16/32 and UTF-7
# would be read differently by a scanner that assumes UTF-8, and Python's other "codecs"
# (base64, zlib, rot13, uu, quopri, hex, bz2...) are transformations, not charsets.
READABLE_CHARSETS = frozenset({"utf-8", "ascii", "iso8859-1"})
IDENTITY_ENCODINGS = frozenset({"", "identity"})

UNREADABLE_CHARSET_MESSAGE = (
    "The request declares a charset or Content-Encoding the API does not read. "
    "Send 'Content-Type: application/json' (UTF-8; us-ascii and iso-8859-1 are read too), uncompressed."
)

# A JSON string (escapes included) or a bracket: strings are skipped when counting depth.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def declared_charset(content_params: Mapping[str, str], content_encoding: str = "") -> str | None:
    """The codec to read a body with (None: the default, UTF-8). Raises UnsupportedMediaType
    for a charset or Content-Encoding outside what FlowPay reads."""
    if content_encoding.strip().lower() not in IDENTITY_ENCODINGS:
        raise UnsupportedMediaType(UNREADABLE_CHARSET_MESSAGE)
    charset = content_params.get("charset")
    if charset is None:
        return None
    try:
        name = codecs.lookup(charset.strip()).name
    except LookupError:
        raise UnsupportedMediaType(UNREADABLE_CHARSET_MESSAGE) from None
    if name not in READABLE_CHARSETS:
        raise UnsupportedMediaType(UNREADABLE_CHARSET_MESSAGE)
    return name


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests arrays and objects deeper than `limit` (counted without
    recursion, before any decoder runs)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        char = token.group()
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicate_keys(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key[:40]!r}")
        result[key] = value
    return result


def strict_json_loads(text: str, *, parse_float=float):
    """json.loads, strictly (see the module docstring). Raises ValueError."""
    if json_depth_exceeds(text):
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys, parse_float=parse_float)


class StrictCamelCaseJSONParser(JSONParser):
    """camelCase JSON in, snake_case data out, strictly (see the module docstring)."""

    def parse(self, stream, media_type=None, parser_context=None):
        context = parser_context or {}
        request = context.get("request")
        declared = getattr(request, "content_params", None)
        if declared is None:
            declared = {"charset": context["encoding"]} if context.get("encoding") else {}
        content_encoding = getattr(request, "META", {}).get("HTTP_CONTENT_ENCODING", "")
        encoding = declared_charset(declared, content_encoding) or settings.DEFAULT_CHARSET
        try:
            data = strict_json_loads(stream.read().decode(encoding))
        except ValueError as exc:  # UnicodeDecodeError included
            raise ParseError(f"JSON parse error - {exc}") from None
        surrogate_at = unstorable_path(data, pattern=SURROGATE)
        if surrogate_at is not None:
            message = "The request contains a lone surrogate character (U+D800-U+DFFF), which is not valid Unicode text."
            detail = ErrorDetail(message, code=ErrorCode.SURROGATE_CHARACTERS_NOT_ALLOWED)
            raise ValidationError({surrogate_at: [detail]} if surrogate_at else [detail])
        return underscoreize(data, **camel_settings.JSON_UNDERSCOREIZE)
