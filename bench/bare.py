"""The baseline of the HTTP rows: a bare DRF endpoint served by the same gunicorn, with the
same middleware, parser and renderer as the API, that does the least a payment endpoint must
do: authenticate the Bearer API key with one SELECT (by the key's SHA-256 digest, the
indexed lookup of accounts.authentication) and write one row, then answer 201 JSON.

POST /bench/bare            INSERT one row into bench_bare_row (the create-payment baseline)
POST /bench/bare/<row id>   UPDATE that row (the capture and refund baseline)

The table is created by the harness (bench.data.BARE_TABLE_DDL), not by a migration: it
exists only in the benchmark's own database."""

from django.db import connection
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.services import credential_digest

AUTH_SQL = (
    "SELECT k.id, k.merchant_id FROM payments_apikey k JOIN payments_merchant m ON m.id = k.merchant_id"
    " WHERE k.key_hash = %s AND k.revoked_at IS NULL AND m.is_active"
)
INSERT_SQL = (
    "INSERT INTO bench_bare_row (merchant_id, api_key_id, amount, currency, idempotency_key, status, created_at, updated_at)"
    " VALUES (%s, %s, %s, %s, %s, 'created', now(), now()) RETURNING id, created_at"
)
UPDATE_SQL = (
    "UPDATE bench_bare_row SET status = 'updated', updated_at = now() WHERE id = %s AND merchant_id = %s"
    " RETURNING id, updated_at"
)
UNAUTHORIZED = {"error": {"type": "authentication_error", "code": "unauthorized", "message": "Invalid API key provided."}}


def _authenticate(cursor, request) -> tuple[int, int] | None:
    parts = request.headers.get("Authorization", "").split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    cursor.execute(AUTH_SQL, [credential_digest(parts[1])])
    return cursor.fetchone()


class BareApi(APIView):
    # No DRF authentication, permission or throttle classes: the one SELECT is the whole
    # authentication. The parser and renderer stay the API's (camelCase JSON).
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []


class BareCreateApi(BareApi):
    def post(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        with connection.cursor() as cursor:
            principal = _authenticate(cursor, request)
            if principal is None:
                return Response(UNAUTHORIZED, status=401)
            api_key_id, merchant_id = principal
            cursor.execute(INSERT_SQL, [
                merchant_id, api_key_id, int(data.get("amount") or 0), str(data.get("currency") or "")[:3].upper(),
                request.headers.get("Idempotency-Key", "")[:255],
            ])
            row_id, created_at = cursor.fetchone()
        return Response({"id": row_id, "object": "bench_row", "status": "created", "created_at": created_at}, status=201)


class BareUpdateApi(BareApi):
    def post(self, request, row_id: int):
        with connection.cursor() as cursor:
            principal = _authenticate(cursor, request)
            if principal is None:
                return Response(UNAUTHORIZED, status=401)
            cursor.execute(UPDATE_SQL, [row_id, principal[1]])
            row = cursor.fetchone()
        if row is None:
            return Response({"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such row."}},
                            status=404)
        return Response({"id": row[0], "object": "bench_row", "status": "updated", "updated_at": row[1]}, status=200)
