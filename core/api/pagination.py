"""Cursor pagination: `?limit=` (1-100, default 10) and an opaque `?cursor=`.

Response: {"object": "list", "data": [...], "hasMore": bool, "nextCursor": str|null,
"previousCursor": str|null}. A bad limit or cursor is a 400, never silently ignored.
"""

from urllib.parse import parse_qs, urlparse

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

DEFAULT_LIMIT = 10
MAX_LIMIT = 100


class LimitCursorPagination(CursorPagination):
    page_size = DEFAULT_LIMIT
    page_size_query_param = "limit"
    max_page_size = MAX_LIMIT
    ordering = ("-created_at", "-id")

    def get_page_size(self, request):
        raw = request.query_params.get("limit")
        if raw is None:
            return DEFAULT_LIMIT
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise ValidationError({"limit": f"limit must be an integer between 1 and {MAX_LIMIT}."})
        return int(raw)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError({"cursor": "Invalid cursor: pass back a nextCursor or previousCursor value unchanged."}) from None

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
        return {
            "type": "object",
            "properties": {
                "object": {"type": "string", "example": "list"},
                "data": schema,
                "hasMore": {"type": "boolean"},
                "nextCursor": {"type": "string", "nullable": True},
                "previousCursor": {"type": "string", "nullable": True},
            },
        }
