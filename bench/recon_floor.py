"""The floor of row 8 (bench/rows_reconciliation.py), as its own process: COPY the settlement
file into a temporary table, then one FULL OUTER JOIN on the reference against the payments.
Prints the counts it found as JSON.

    python -m bench.recon_floor PATH        (DATABASE_URL: the bench database)

Its connection puts FlowPay's schema first on the search path, as the app's do
(flowpay/settings/database.py: FLOWPAY_DB_SCHEMA, default payments).
"""

import json
import os
import sys

import psycopg

CHUNK = 1024 * 1024
# The columns of the report file row 8 writes (Stripe's itemized balance-change report).
COLUMNS = ["balance_transaction_id", "created_utc", "available_on_utc", "currency", "gross", "fee", "net",
           "reporting_category", "source_id", "description", "payment_intent_id", "payment_metadata[flowpay_transaction]"]
FLOOR_SQL = """
SELECT count(*) FILTER (WHERE t.id IS NULL) AS missing_locally,
       count(*) FILTER (WHERE f.balance_transaction_id IS NULL) AS missing_at_gateway,
       count(*) FILTER (WHERE t.id IS NOT NULL AND f.balance_transaction_id IS NOT NULL
                        AND round(f.gross::numeric * 100)::bigint <> t.amount_captured) AS amount_mismatch
FROM recon_floor f
FULL OUTER JOIN (SELECT id, gateway_reference, amount_captured FROM transactions WHERE gateway = 'stripe') t
     ON t.gateway_reference = f.payment_intent_id
"""


def main(path: str) -> int:
    columns = ", ".join(f'"{name}" text' for name in COLUMNS)
    schema = os.environ.get("FLOWPAY_DB_SCHEMA", "payments")
    with psycopg.connect(os.environ["DATABASE_URL"], options=f"-c search_path={schema},public") as conn, open(path, "rb") as stream:
        conn.execute(f"CREATE TEMP TABLE recon_floor ({columns})")
        with conn.cursor().copy("COPY recon_floor FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            while chunk := stream.read(CHUNK):
                copy.write(chunk)
        cursor = conn.execute(FLOOR_SQL)
        names = [d.name for d in cursor.description]
        print(json.dumps(dict(zip(names, cursor.fetchone(), strict=True))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
