"""Cursor pagination: `?limit=` (1-100, default 10) and an opaque `?cursor=`.

Response: {"object": "list", "data": [...], "hasMore": bool, "nextCursor": str|null,
"previousCursor": str|null}. A bad limit or cursor is a 400, never silently ignored.

Cursors are signed (with SECRET_KEY): a cursor FlowPay did not issue, or one altered, is a
400 before its position reaches a query. They are URL-safe, so a client may paste one into
a URL without encoding it.
"""

import base64
from urllib.parse import parse_qs, urlencode, urlparse

from django.core import signing
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
INVALID_CURSOR_MESSAGE = "Invalid cursor: pass back a nextCursor or previousCursor value unchanged."
_CURSOR_SIGNER = signing.Signer(salt="flowpay.api.cursor")


class LimitCursorPagination(CursorPagination):
    page_size = DEFAULT_LIMIT
    page_size_query_param = "limit"
    max_page_size = MAX_LIMIT
    ordering = ("-created_at", "-id")

    def get_page_size(self, request):
        raw = request.query_params.get("limit")
        if raw is None:
            return DEFAULT_LIMIT
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
            raise ValidationError({"limit": f"limit must be an integer between 1 and {MAX_LIMIT}."})
        return int(raw)

    def encode_cursor(self, cursor: Cursor) -> str:
        tokens = {"o": str(cursor.offset), "r": "1" if cursor.reverse else "0"}
        if cursor.position is not None:
            tokens["p"] = cursor.position
        encoded = base64.urlsafe_b64encode(urlencode(tokens).encode()).decode("ascii").rstrip("=")
        return replace_query_param(self.base_url, self.cursor_query_param, _CURSOR_SIGNER.sign(encoded))

    def decode_cursor(self, request) -> Cursor | None:
        signed = request.query_params.get(self.cursor_query_param)
        if signed is None:
            return None
        try:
            encoded = _CURSOR_SIGNER.unsign(signed)
            tokens = parse_qs(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode(), strict_parsing=True)
            offset, reverse = int(tokens["o"][0]), tokens["r"][0] == "1"
            position = tokens["p"][0] if "p" in tokens else None
        except (signing.BadSignature, ValueError, KeyError, IndexError):
            raise ValidationError({"cursor": INVALID_CURSOR_MESSAGE}) from None
        if not 0 <= offset <= self.offset_cutoff:
            raise ValidationError({"cursor": INVALID_CURSOR_MESSAGE})
        return Cursor(offset=offset, reverse=reverse, position=position)

    @staticmethod
    def _cursor_of(link: str | None) -> str | None:
        if not link:
            return None
        return parse_qs(urlparse(link).query).get("cursor", [None])[0]

    def get_paginated_response(self, data):
        next_link, previous_link = self.get_next_link(), self.get_previous_link()
        return Response(
            {
                "object": "list",
                "data": data,
                "has_more": bool(next_link),
                "next_cursor": self._cursor_of(next_link),
                "previous_cursor": self._cursor_of(previous_link),
            }
        )

    def get_paginated_response_schema(self, schema):
        cursor = "Pass it back as `cursor` for the {} page; null when there is none."
        return {
            "type": "object",
            "properties": {
                "object": {"type": "string", "enum": ["list"]},
                "data": schema,
                "hasMore": {"type": "boolean", "description": "Whether there is a next page."},
                "nextCursor": {"type": "string", "nullable": True, "description": cursor.format("next")},
                "previousCursor": {"type": "string", "nullable": True, "description": cursor.format("previous")},
            },
            "required": ["object", "data", "hasMore", "nextCursor", "previousCursor"],
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.page_size_query_param, "required": False, "in": "query",
                "description": f"How many objects a page holds (1 to {MAX_LIMIT}, default {DEFAULT_LIMIT}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            },
            {
                "name": self.cursor_query_param, "required": False, "in": "query",
                "description": "A nextCursor or previousCursor of a previous page, unchanged (FlowPay signs them).",
                "schema": {"type": "string"},
            },
        ]
