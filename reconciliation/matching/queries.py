"""The matcher's SQL, set-based: a day of a million rows is a handful of statements.

Relations (temporary, one run):
- recon_g: the gateway's rows of D-1 … D+1 (reconciliation.matching.staging);
- recon_jx: what the reference join could not settle: gateway rows of D without a FlowPay
  record, FlowPay records of D without a gateway row, pairs that differ; the later passes
  work on it alone, so they cost what the discrepancies cost, not what the day costs.
Parameters are named (`%(day_start)s`).
"""

MATCHABLE_KINDS = "('charge', 'refund', 'dispute', 'dispute_reversal')"
CAPTURED = "('completed', 'partially_refunded', 'refunded')"

# FlowPay's side of day D, as narrow as the reference join needs it (the rest of a record
# is read for the records the join keeps, by primary key): read once by the join and once
# for the day's totals, in one statement (one snapshot).
LOCAL_RECORDS = """
SELECT 'charge'::text AS kind, 'transaction'::text AS local_type, t.id AS local_id, t.gateway_reference AS reference,
       t.amount_captured AS amount, t.currency, t.status::text AS status
FROM {transactions} t
WHERE t.gateway = %(gateway)s AND t.status IN """ + CAPTURED + """ AND t.finalized_at >= %(day_start)s AND t.finalized_at < %(day_end)s
UNION ALL
SELECT 'refund', 'refund', r.id, r.gateway_reference, -r.amount, r.currency, r.status::text
FROM {refunds} r
WHERE r.gateway = %(gateway)s AND r.status = 'succeeded' AND r.refund_to_original_method
  AND r.succeeded_at >= %(day_start)s AND r.succeeded_at < %(day_end)s
"""

WORK_TABLE = """
CREATE TEMP TABLE recon_jx (
    raw_tid tid, row_no bigint, key text, reference text, parent_reference text, kind text, amount bigint, fee bigint,
    currency text, created timestamptz, status text, flowpay_reference text, idempotency_key text,
    in_day boolean NOT NULL DEFAULT false, duplicated boolean NOT NULL DEFAULT false,
    local_type text, local_id bigint, public_id text, merchant_id bigint, transaction_id bigint, l_reference text,
    l_amount bigint, l_currency text, settled_at timestamptz, l_status text, recorded_fee bigint,
    -- in_l: the record is one of day D's; from_join: paired by the reference join itself
    in_l boolean NOT NULL DEFAULT false,
    from_join boolean NOT NULL DEFAULT false, method text,
    extra boolean NOT NULL DEFAULT false
)
"""

# Whether the gateway's status of a row agrees with FlowPay's record: a charge the gateway
# failed or reversed (FlowPay not refunded), a refund it failed, FlowPay's payment not
# captured or refund not succeeded, a dispute FlowPay recorded won without the reversal, or
# a reversal of a dispute FlowPay did not record won.


def status_agrees(*, kind: str, gateway_status: str, local_status: str) -> str:
    return f"""(CASE {kind}
    WHEN 'charge' THEN {gateway_status} NOT IN ('failed') AND {local_status} IN {CAPTURED}
                       AND NOT ({gateway_status} = 'reversed' AND {local_status} <> 'refunded')
    WHEN 'refund' THEN {gateway_status} NOT IN ('failed') AND {local_status} = 'succeeded'
    WHEN 'dispute' THEN {local_status} <> 'won'
    WHEN 'dispute_reversal' THEN {local_status} = 'won'
    ELSE true END)"""


# The reference join: FlowPay's records of D against every gateway row, in one statement,
# so that the gateway's rows are read (and a file's values translated) once and FlowPay's
# day is hashed once, carrying only the columns it compares. It keeps in recon_jx only what
# it cannot settle (pairs that differ, rows without a record, records without a row), the
# rest of their columns read for them alone (a gateway row by its tuple id, a record by its
# primary key), and answers the day's totals per currency and kind on both sides and the
# counts that tell whether a record was joined to more than one row.
#
# A reference listed more than once (balance-affecting, of a kind FlowPay records) is never
# a clean match, and a partial-capture reversal is added to its charge: GATEWAY_ROWS_CAREFUL
# finds both with two more passes over the rows. GATEWAY_ROWS_DIRECT reads the rows once and
# assumes neither; the engine checks afterwards, from the counts of the same statement, that
# no record was joined twice and no reversal was read, and otherwise runs the careful form.
# Its equalities over a million values are made in the "C" collation (see staging._kind).
GATEWAY_ROWS_DIRECT = """
gs AS (
    SELECT row_no, raw_tid, reference, kind, amount, amount AS match_amount, fee, currency, status,
           false AS duplicated, CASE WHEN kind COLLATE "C" IN """ + MATCHABLE_KINDS + """ THEN kind END AS match_kind,
           (created >= %(day_start)s AND created < %(day_end)s) AS in_day
    FROM recon_g WHERE balance_affecting
    OFFSET 0
)"""
GATEWAY_ROWS_CAREFUL = """
g AS MATERIALIZED (
    SELECT row_no, raw_tid, reference, kind, amount, fee, currency, status,
           (created >= %(day_start)s AND created < %(day_end)s) AS in_day
    FROM recon_g WHERE balance_affecting
),
dups AS (SELECT kind, reference FROM g WHERE kind IN """ + MATCHABLE_KINDS + """ GROUP BY kind, reference HAVING count(*) > 1),
reversals AS (SELECT reference, sum(amount) AS amount FROM g WHERE kind = 'partial_capture_reversal' GROUP BY reference),
gs AS (
    SELECT g.row_no, g.raw_tid, g.reference, g.kind, g.amount, g.amount + coalesce(p.amount, 0) AS match_amount, g.fee,
           g.currency, g.status, (d.reference IS NOT NULL) AS duplicated,
           CASE WHEN g.kind COLLATE "C" IN """ + MATCHABLE_KINDS + """ THEN g.kind END AS match_kind, g.in_day
    FROM g
    LEFT JOIN reversals p ON g.kind = 'charge' AND p.reference = g.reference
    LEFT JOIN dups d ON d.kind = g.kind AND d.reference = g.reference
)"""
_KEPT = ["raw_tid", "row_no", "l_kind", "local_type", "local_id", "match_amount", "in_day", "duplicated", "recorded_fee"]
JOIN_BY_REFERENCE = """
WITH l AS NOT MATERIALIZED (""" + LOCAL_RECORDS + """),
{gateway_rows},
j AS (
    SELECT gs.row_no, gs.raw_tid, gs.kind, gs.match_kind, gs.amount, gs.match_amount, gs.fee, gs.currency, gs.in_day,
           gs.duplicated, l.kind AS l_kind, l.local_type, l.local_id, {fee_column} AS recorded_fee,
           coalesce(gs.row_no IS NOT NULL AND l.local_id IS NOT NULL AND NOT gs.duplicated
                    AND gs.currency = l.currency COLLATE "C" AND gs.match_amount = l.amount
                    AND """ + status_agrees(kind="gs.kind", gateway_status="gs.status", local_status="l.status") + """
                    AND ({fee_column} IS NULL OR gs.fee IS NULL OR {fee_column} = gs.fee), false) AS clean
    FROM gs FULL OUTER JOIN l ON gs.match_kind = l.kind COLLATE "C" AND gs.reference = nullif(l.reference, '') COLLATE "C"
    {fee_join}
),
found AS MATERIALIZED (
    SELECT currency, kind, in_day, count(row_no) AS n_rows, sum(amount) AS gross, sum(fee) AS fee,
           count(*) FILTER (WHERE row_no IS NOT NULL AND local_id IS NOT NULL) AS pairs,
           count(*) FILTER (WHERE row_no IS NULL) AS local_only,
           """ + ",\n           ".join(f"array_agg({c}) FILTER (WHERE keep) AS k_{c}" for c in _KEPT) + """
    FROM (SELECT *, NOT clean AND (row_no IS NULL OR match_kind IS NOT NULL) AS keep FROM j OFFSET 0) j
    GROUP BY currency, kind, in_day
),
kept AS (
    INSERT INTO recon_jx (raw_tid, row_no, kind, local_type, local_id, amount, in_day, duplicated, recorded_fee, in_l,
                          from_join, method)
    SELECT k.raw_tid, k.row_no, k.l_kind, k.local_type, k.local_id, k.match_amount, coalesce(k.in_day, false),
           coalesce(k.duplicated, false), k.recorded_fee, k.local_id IS NOT NULL,
           k.row_no IS NOT NULL AND k.local_id IS NOT NULL,
           CASE WHEN k.row_no IS NOT NULL AND k.local_id IS NOT NULL THEN 'reference' END
    FROM found f
    CROSS JOIN LATERAL unnest(""" + ", ".join(f"f.k_{c}" for c in _KEPT) + """) AS k(""" + ", ".join(_KEPT) + """)
)
SELECT 'gateway', currency, kind, in_day, n_rows, gross, fee, pairs, local_only FROM found
UNION ALL
SELECT 'flowpay', currency, kind, NULL, count(*), sum(amount), NULL, NULL, NULL FROM l GROUP BY currency, kind
"""
# The rest of the kept rows' columns, read for them alone: a gateway row by its tuple id, a
# FlowPay record by its primary key (recon_jx.kind is the record's until the row's is read).
KEPT_ROWS_DETAILS = [
    """UPDATE recon_jx j SET key = g.key, reference = g.reference, parent_reference = g.parent_reference, kind = g.kind,
        fee = g.fee, currency = g.currency, created = g.created, status = g.status, flowpay_reference = g.flowpay_reference,
        idempotency_key = g.idempotency_key
    FROM recon_g g WHERE j.raw_tid IS NOT NULL AND g.raw_tid = j.raw_tid""",
    """UPDATE recon_jx j SET public_id = t.public_id, merchant_id = t.merchant_id, transaction_id = t.id,
        l_reference = t.gateway_reference, l_amount = t.amount_captured, l_currency = t.currency, settled_at = t.finalized_at,
        l_status = t.status
    FROM {transactions} t WHERE j.local_type = 'transaction' AND t.id = j.local_id""",
    """UPDATE recon_jx j SET public_id = r.public_id, merchant_id = r.merchant_id, transaction_id = r.transaction_id,
        l_reference = r.gateway_reference, l_amount = -r.amount, l_currency = r.currency, settled_at = r.succeeded_at,
        l_status = r.status
    FROM {refunds} r WHERE j.local_type = 'refund' AND r.id = j.local_id""",
]
HASHED_PLANS = "SET LOCAL enable_mergejoin = off; SET LOCAL enable_sort = off"
DEFAULT_PLANS = "SET LOCAL enable_mergejoin TO DEFAULT; SET LOCAL enable_sort TO DEFAULT"
# Rows of one reference the direct join kept (FlowPay has no record of it, or the pair
# differs): the careful form's `duplicated`, for those rows alone.
MARK_DUPLICATED_KEPT = """
UPDATE recon_jx j SET duplicated = true FROM (
    SELECT kind, reference FROM recon_jx WHERE row_no IS NOT NULL AND kind IN """ + MATCHABLE_KINDS + """
    GROUP BY kind, reference HAVING count(*) > 1
) d
WHERE j.row_no IS NOT NULL AND j.kind = d.kind AND j.reference = d.reference
"""
# Records of D that are in recon_jx: the others were paired clean by the join.
RECORDS_KEPT = "SELECT count(*) FROM (SELECT DISTINCT local_type, local_id FROM recon_jx WHERE local_id IS NOT NULL) d"

LOCAL_ONLY_SNAPSHOT = """
CREATE TEMP TABLE recon_lonly AS SELECT local_type, local_id FROM recon_jx WHERE row_no IS NULL
"""

# --- the passes over the gateway rows of D that the join left without a FlowPay record ----
_UNMATCHED = "j.row_no IS NOT NULL AND j.local_id IS NULL AND j.in_day"
_AS_TRANSACTION = """local_type = 'transaction', local_id = t.id, public_id = t.public_id, merchant_id = t.merchant_id,
    transaction_id = t.id, l_reference = t.gateway_reference, l_amount = t.amount_captured, l_currency = t.currency,
    settled_at = t.finalized_at, l_status = t.status,
    in_l = (t.status IN """ + CAPTURED + """ AND t.finalized_at >= %(day_start)s AND t.finalized_at < %(day_end)s)"""
_AS_REFUND = """local_type = 'refund', local_id = r.id, public_id = r.public_id, merchant_id = r.merchant_id,
    transaction_id = r.transaction_id, l_reference = r.gateway_reference,
    l_amount = CASE WHEN r.status = 'succeeded' THEN -r.amount ELSE 0 END, l_currency = r.currency,
    settled_at = r.succeeded_at, l_status = r.status,
    in_l = (r.status = 'succeeded' AND r.refund_to_original_method
            AND r.succeeded_at >= %(day_start)s AND r.succeeded_at < %(day_end)s)"""

LEFTOVER_PASSES = [
    # 1. the reference, on any day: a payment captured on D-1 whose row is on D; a payment
    #    FlowPay recorded failed or still processing; a refund FlowPay recorded failed.
    ("reference", """UPDATE recon_jx j SET """ + _AS_TRANSACTION + """, method = 'reference'
        FROM {transactions} t WHERE """ + _UNMATCHED + """ AND j.kind = 'charge'
        AND t.gateway = %(gateway)s AND t.gateway_reference = j.reference"""),
    ("reference", """UPDATE recon_jx j SET """ + _AS_TRANSACTION + """, method = 'reference'
        FROM {attempts} a JOIN {transactions} t ON t.id = a.transaction_id
        WHERE """ + _UNMATCHED + """ AND j.kind = 'charge' AND a.gateway = %(gateway)s AND a.operation = 'capture'
        AND a.outcome = 'succeeded' AND a.gateway_reference = j.reference"""),
    ("reference", """UPDATE recon_jx j SET """ + _AS_REFUND + """, method = 'reference'
        FROM {refunds} r WHERE """ + _UNMATCHED + """ AND j.kind = 'refund'
        AND r.gateway = %(gateway)s AND r.gateway_reference = j.reference"""),
    ("reference", """UPDATE recon_jx j SET local_type = 'chargeback', local_id = c.id, public_id = c.public_id,
        merchant_id = c.merchant_id, transaction_id = c.transaction_id, l_reference = c.gateway_reference,
        l_amount = CASE j.kind WHEN 'dispute' THEN -c.amount ELSE c.amount END, l_currency = c.currency,
        settled_at = c.created_at, l_status = c.status, in_l = false, method = 'reference'
        FROM {chargebacks} c WHERE """ + _UNMATCHED + """ AND j.kind IN ('dispute', 'dispute_reversal')
        AND c.gateway = %(gateway)s AND c.gateway_reference = j.reference"""),
    # 2. the FlowPay id or the idempotency key the gateway echoes in its metadata.
    ("flowpay_id", """UPDATE recon_jx j SET """ + _AS_TRANSACTION + """, method = 'flowpay_id'
        FROM {transactions} t WHERE """ + _UNMATCHED + """ AND j.kind = 'charge' AND j.flowpay_reference <> ''
        AND t.public_id = j.flowpay_reference AND t.gateway = %(gateway)s"""),
    ("flowpay_id", """UPDATE recon_jx j SET """ + _AS_TRANSACTION + """, method = 'flowpay_id'
        FROM {attempts} a JOIN {transactions} t ON t.id = a.transaction_id
        WHERE """ + _UNMATCHED + """ AND j.kind = 'charge' AND j.idempotency_key <> ''
        AND a.idempotency_key = j.idempotency_key AND t.gateway = %(gateway)s"""),
    ("flowpay_id", """UPDATE recon_jx j SET """ + _AS_REFUND + """, method = 'flowpay_id'
        FROM {refunds} r WHERE """ + _UNMATCHED + """ AND j.kind = 'refund'
        AND r.public_id = substring(j.idempotency_key FROM '^flowpay:(re_[A-Za-z0-9]+):refund') AND r.gateway = %(gateway)s"""),
]

# FlowPay records of D without a row: a row of D-1 or D+1 that echoes their id or key (a
# capture at 23:59:59 settled at 00:00:01). Only the rows of D-1 and D+1 that matched no
# record of D by reference are candidates (recon_context, usually few).
CONTEXT_ROWS = [
    """CREATE TEMP TABLE recon_context AS
       SELECT * FROM recon_jx WHERE row_no IS NOT NULL AND local_id IS NULL AND NOT in_day AND kind IN ('charge', 'refund')""",
    "DELETE FROM recon_jx WHERE row_no IS NOT NULL AND local_id IS NULL AND NOT in_day",
]
_TAKE_ROW = """row_no = g.row_no, key = g.key, reference = g.reference, parent_reference = g.parent_reference,
        kind = g.kind, amount = g.amount, fee = g.fee, currency = g.currency, created = g.created, status = g.status,
        flowpay_reference = g.flowpay_reference, idempotency_key = g.idempotency_key, in_day = false, method = 'flowpay_id'"""
LATE_ROWS = [
    """UPDATE recon_jx j SET """ + _TAKE_ROW + """
    FROM recon_context g
    WHERE j.row_no IS NULL AND j.local_type = 'transaction' AND g.kind = 'charge' AND g.flowpay_reference = j.public_id""",
    """UPDATE recon_jx j SET """ + _TAKE_ROW + """
    FROM {attempts} a JOIN recon_context g ON g.idempotency_key = a.idempotency_key
    WHERE j.row_no IS NULL AND j.local_type = 'transaction' AND g.kind = 'charge' AND a.transaction_id = j.local_id""",
    """UPDATE recon_jx j SET """ + _TAKE_ROW + """
    FROM recon_context g
    WHERE j.row_no IS NULL AND j.local_type = 'refund' AND g.kind = 'refund'
      AND substring(g.idempotency_key FROM '^flowpay:(re_[A-Za-z0-9]+):refund') = j.public_id""",
]

# 3. amount and currency within the time window, for rows that carry no FlowPay id and
#    records that have no gateway reference (a lost answer): pairs that are each other's
#    closest, repeated until none is left.
AMOUNT_WINDOW_PAIRS = """
WITH cand AS (
    SELECT g.row_no AS g_row, l.local_type, l.local_id,
           abs(extract(epoch FROM g.created - l.settled_at)) AS dist
    FROM recon_jx g
    JOIN recon_jx l ON l.row_no IS NULL AND l.l_reference = '' AND l.l_amount = g.amount AND l.l_currency = g.currency
         AND l.local_type = CASE g.kind WHEN 'charge' THEN 'transaction' ELSE 'refund' END
         AND abs(extract(epoch FROM g.created - l.settled_at)) <= %(window)s
    WHERE g.row_no IS NOT NULL AND g.local_id IS NULL AND g.in_day AND g.kind IN ('charge', 'refund')
      AND g.flowpay_reference = '' AND g.idempotency_key = ''
),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY g_row ORDER BY dist, local_type, local_id) AS by_row,
              row_number() OVER (PARTITION BY local_type, local_id ORDER BY dist, g_row) AS by_record
    FROM cand
),
best AS (SELECT g_row, local_type, local_id FROM ranked WHERE by_row = 1 AND by_record = 1),
paired AS (
    UPDATE recon_jx g SET local_type = l.local_type, local_id = l.local_id, public_id = l.public_id,
        merchant_id = l.merchant_id, transaction_id = l.transaction_id, l_reference = l.l_reference, l_amount = l.l_amount,
        l_currency = l.l_currency, settled_at = l.settled_at, l_status = l.l_status, in_l = true, method = 'amount_window'
    FROM best b JOIN recon_jx l ON l.row_no IS NULL AND l.local_type = b.local_type AND l.local_id = b.local_id
    WHERE g.row_no = b.g_row
    RETURNING g.local_type, g.local_id
)
DELETE FROM recon_jx l USING paired p WHERE l.row_no IS NULL AND l.local_type = p.local_type AND l.local_id = p.local_id
"""

# A record of D found again by a later pass while the join already matched it by reference
# (its pair is clean, so not in recon_jx), or found by more than one row: every row after the
# first is a duplicate settlement. Rows of one reference listed more than once likewise.
MARK_EXTRA_ROWS = """
UPDATE recon_jx j SET extra = true FROM (
    SELECT x.row_no,
           row_number() OVER (PARTITION BY x.local_type, x.local_id ORDER BY x.from_join DESC, x.row_no) AS n,
           (x.in_l AND NOT x.from_join AND lo.local_id IS NULL
            AND NOT EXISTS (SELECT 1 FROM recon_jx s WHERE s.from_join AND s.row_no IS NOT NULL
                            AND s.local_type = x.local_type AND s.local_id = x.local_id)) AS matched_elsewhere
    FROM recon_jx x LEFT JOIN recon_lonly lo ON lo.local_type = x.local_type AND lo.local_id = x.local_id
    WHERE x.row_no IS NOT NULL AND x.local_id IS NOT NULL
) y
WHERE j.row_no = y.row_no AND (y.matched_elsewhere OR y.n > 1)
"""
MARK_REPEATED_REFERENCES = """
UPDATE recon_jx j SET extra = true FROM (
    SELECT row_no, row_number() OVER (PARTITION BY kind, reference ORDER BY row_no) AS n
    FROM recon_jx WHERE duplicated AND row_no IS NOT NULL
) y
WHERE j.row_no = y.row_no AND y.n > 1
"""
ABSORB_MATCHED_RECORDS = """
DELETE FROM recon_jx l WHERE l.row_no IS NULL AND EXISTS (
    SELECT 1 FROM recon_jx g WHERE g.row_no IS NOT NULL AND NOT g.extra
      AND g.local_type = l.local_type AND g.local_id = l.local_id)
"""

# A refund or dispute the gateway made on a payment FlowPay knows, of which FlowPay has no
# record: the payment's status differs ("refunded at the gateway, not in FlowPay").
PARENT_PAYMENTS = """
UPDATE recon_jx j SET local_type = 'transaction', local_id = t.id, public_id = t.public_id, merchant_id = t.merchant_id,
    transaction_id = t.id, l_reference = t.gateway_reference, l_amount = 0, l_currency = t.currency,
    settled_at = t.finalized_at, l_status = t.status, method = 'parent'
FROM {transactions} t
WHERE j.row_no IS NOT NULL AND j.local_id IS NULL AND j.in_day AND NOT j.extra
  AND j.kind IN ('refund', 'dispute', 'dispute_reversal') AND t.gateway = %(gateway)s
  AND ((j.parent_reference <> '' AND t.gateway_reference = j.parent_reference)
       OR (j.flowpay_reference <> '' AND t.public_id = j.flowpay_reference)
       OR (j.parent_reference <> '' AND EXISTS (SELECT 1 FROM {attempts} a WHERE a.transaction_id = t.id
           AND a.operation = 'capture' AND a.outcome = 'succeeded' AND a.gateway_reference = j.parent_reference)))
"""

RECORDED_FEES_OF_LATE_PAIRS = """
UPDATE recon_jx j SET recorded_fee = f.fee FROM ({fees}) f
WHERE j.local_type = 'transaction' AND j.method <> 'parent' AND NOT j.from_join AND f.transaction_id = j.local_id
"""

# One row per gateway row or FlowPay record of recon_jx: its category and its diff.
_J_STATUS = status_agrees(kind="j.kind", gateway_status="j.status", local_status="j.l_status")
_DIFF = """jsonb_path_query_array(jsonb_build_array(
    CASE WHEN currency <> l_currency THEN jsonb_build_object('field', 'currency', 'flowpay', l_currency, 'gateway', currency) END,
    CASE WHEN amount <> l_amount THEN jsonb_build_object('field', 'amount', 'flowpay', l_amount, 'gateway', amount) END,
    CASE WHEN NOT status_agrees THEN jsonb_build_object('field', 'status', 'flowpay', l_status, 'gateway', gateway_status) END,
    CASE WHEN recorded_fee <> fee THEN jsonb_build_object('field', 'fee', 'flowpay', recorded_fee, 'gateway', fee) END
), '$[*] ? (@ != null)')"""
CLASSIFY = """
CREATE TEMP TABLE recon_found AS
SELECT c.*,
    CASE category
        WHEN 'missing_at_gateway' THEN jsonb_build_array(jsonb_build_object('field', 'amount', 'flowpay', l_amount, 'gateway', NULL))
        WHEN 'missing_locally' THEN jsonb_build_array(jsonb_build_object('field', 'amount', 'flowpay', NULL, 'gateway', amount))
        WHEN 'duplicate_at_gateway' THEN '[]'::jsonb
        ELSE """ + _DIFF + """ END AS diff
FROM (
    SELECT j.*, coalesce(""" + _J_STATUS + """, false) AS status_agrees,
        CASE WHEN j.method = 'parent' THEN CASE j.kind WHEN 'refund' THEN 'refunded' ELSE 'disputed' END
             ELSE j.status END AS gateway_status,
        CASE
            WHEN j.row_no IS NULL THEN CASE WHEN j.settled_at <= %(due_before)s THEN 'missing_at_gateway' ELSE 'awaiting' END
            WHEN j.extra THEN 'duplicate_at_gateway'
            WHEN j.local_id IS NULL THEN 'missing_locally'
            WHEN j.method = 'parent' THEN 'status_mismatch'
            WHEN j.currency <> j.l_currency THEN 'currency_mismatch'
            WHEN NOT coalesce(""" + _J_STATUS + """, false) THEN 'status_mismatch'
            WHEN j.amount <> j.l_amount THEN 'amount_mismatch'
            WHEN j.recorded_fee IS NOT NULL AND j.fee IS NOT NULL AND j.recorded_fee <> j.fee THEN 'fee_mismatch'
            ELSE 'matched'
        END AS category
    FROM recon_jx j
) c
"""
# For the diff of a parent row: the payment's status against "refunded" / "disputed".
PARENT_STATUS_DIFF = """
UPDATE recon_found SET diff = jsonb_build_array(
    jsonb_build_object('field', 'status', 'flowpay', l_status, 'gateway', gateway_status),
    jsonb_build_object('field', 'amount', 'flowpay', 0, 'gateway', amount))
WHERE method = 'parent'
"""

FOUND_COUNTS = "SELECT category, count(*) FROM recon_found GROUP BY category"

UPSERT_ITEMS = """
INSERT INTO {items} AS item (
    public_id, gateway, settlement_date, category, state, kind, local_reference, gateway_reference, gateway_row_keys,
    merchant_id, transaction_id, flowpay_amount, flowpay_currency, gateway_amount, gateway_currency, flowpay_fee,
    gateway_fee, diff, first_run_id, last_run_id, occurrences, note, resolution, resolution_reason, auto_cleared,
    ledger_reference, pending_resolution, pending_reason, created_at, updated_at)
-- The public id: a random UUID's 32 hex digits spelt as letters (0-9 -> g-p), so that no id
-- holds a run of digits that the card-data guard would take for a card number in a URL.
SELECT 'recitem_' || translate(replace(gen_random_uuid()::text, '-', ''), '0123456789', 'ghijklmnop'), %(gateway)s, %(settlement_date)s, category, 'open',
       min(kind), local_reference, gateway_reference, coalesce(jsonb_agg(key ORDER BY key) FILTER (WHERE key IS NOT NULL), '[]'),
       min(merchant_id), min(transaction_id),
       CASE WHEN category = 'duplicate_at_gateway' THEN 0 ELSE sum(l_amount) END, coalesce(min(l_currency), ''),
       sum(amount), coalesce(min(currency), ''), min(recorded_fee), sum(fee),
       CASE WHEN category = 'duplicate_at_gateway'
            THEN jsonb_build_array(jsonb_build_object('field', 'count', 'flowpay', 1, 'gateway', count(*) + 1))
            ELSE (array_agg(diff ORDER BY key))[1] END,
       %(run_id)s, %(run_id)s, 1, '', '', '', false, '', '', '', %(now)s, %(now)s
FROM (SELECT f.*, coalesce(f.public_id, '') AS local_reference, coalesce(f.reference, '') AS gateway_reference
      FROM recon_found f WHERE f.category NOT IN ('matched', 'awaiting')) d
GROUP BY category, local_reference, gateway_reference
ON CONFLICT (gateway, local_reference, gateway_reference, category) DO UPDATE SET
    last_run_id = EXCLUDED.last_run_id, occurrences = item.occurrences + 1, settlement_date = EXCLUDED.settlement_date,
    kind = EXCLUDED.kind, gateway_row_keys = EXCLUDED.gateway_row_keys, merchant_id = EXCLUDED.merchant_id,
    transaction_id = EXCLUDED.transaction_id, flowpay_amount = EXCLUDED.flowpay_amount,
    flowpay_currency = EXCLUDED.flowpay_currency, gateway_amount = EXCLUDED.gateway_amount,
    gateway_currency = EXCLUDED.gateway_currency, flowpay_fee = EXCLUDED.flowpay_fee, gateway_fee = EXCLUDED.gateway_fee,
    diff = EXCLUDED.diff, updated_at = EXCLUDED.updated_at
RETURNING item.id, item.category, (item.xmax = 0) AS inserted
"""

