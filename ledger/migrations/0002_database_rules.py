"""The ledger's rules in the database itself, for every client, raw SQL included:

- ledger_entry and ledger_transaction are append-only: UPDATE, DELETE and TRUNCATE are
  refused (a correction is a new transaction);
- ledger_account rows are never deleted, and an UPDATE may change the totals and the version
  only (the identity, normal side and rules of an account are fixed, its version only grows);
- an entry is in its account's currency and in its transaction's ((account_id, currency) and
  (ledger_transaction_id, currency) foreign keys);
- at COMMIT (a deferred constraint trigger) every ledger transaction written has at least
  two entries, on accounts of its own merchant and mode, and within each phase its debits
  equal its credits per currency.

(Tests flush tables with session_replication_role=replica, which skips triggers; see
tests/conftest.py.) SQLite, the embedded default, gets the append-only triggers; the
balance rule is checked there by ledger.services.postings alone.
"""

from django.db import migrations

POSTGRES_FORWARD = """
CREATE OR REPLACE FUNCTION ledger_reject_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER ledger_entry_no_update_delete BEFORE UPDATE OR DELETE ON ledger_entry
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER ledger_entry_no_truncate BEFORE TRUNCATE ON ledger_entry
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER ledger_transaction_no_update_delete BEFORE UPDATE OR DELETE ON ledger_transaction
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER ledger_transaction_no_truncate BEFORE TRUNCATE ON ledger_transaction
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER ledger_account_no_delete BEFORE DELETE ON ledger_account
    FOR EACH ROW EXECUTE FUNCTION ledger_reject_change();
CREATE TRIGGER ledger_account_no_truncate BEFORE TRUNCATE ON ledger_account
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_reject_change();

CREATE OR REPLACE FUNCTION ledger_account_check_update() RETURNS trigger AS $$
BEGIN
    IF NEW.merchant_id IS DISTINCT FROM OLD.merchant_id OR NEW.livemode IS DISTINCT FROM OLD.livemode
       OR NEW.currency IS DISTINCT FROM OLD.currency OR NEW.code IS DISTINCT FROM OLD.code
       OR NEW.gateway IS DISTINCT FROM OLD.gateway OR NEW.normal_side IS DISTINCT FROM OLD.normal_side
       OR NEW.debits_must_not_exceed_credits IS DISTINCT FROM OLD.debits_must_not_exceed_credits
       OR NEW.credits_must_not_exceed_debits IS DISTINCT FROM OLD.credits_must_not_exceed_debits
       OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'ledger_account %: only its totals and version may change', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.version < OLD.version THEN
        RAISE EXCEPTION 'ledger_account %: its version may only grow (% -> %)', OLD.id, OLD.version, NEW.version
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER ledger_account_fixed_identity BEFORE UPDATE ON ledger_account
    FOR EACH ROW EXECUTE FUNCTION ledger_account_check_update();

ALTER TABLE ledger_entry ADD CONSTRAINT ledger_entry_account_currency_fk
    FOREIGN KEY (account_id, currency) REFERENCES ledger_account (id, currency);
ALTER TABLE ledger_entry ADD CONSTRAINT ledger_entry_transaction_currency_fk
    FOREIGN KEY (ledger_transaction_id, currency) REFERENCES ledger_transaction (id, currency);

CREATE OR REPLACE FUNCTION ledger_check_transaction_balanced() RETURNS trigger AS $$
DECLARE
    txn_id bigint;
    entry_count integer;
    mismatch record;
BEGIN
    IF TG_TABLE_NAME = 'ledger_entry' THEN
        txn_id := NEW.ledger_transaction_id;
    ELSE
        txn_id := NEW.id;
    END IF;
    SELECT count(*) INTO entry_count FROM ledger_entry WHERE ledger_transaction_id = txn_id;
    IF entry_count < 2 THEN
        RAISE EXCEPTION 'ledger transaction % has % entries: a transaction needs at least two', txn_id, entry_count
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT e.currency, e.phase,
           sum(CASE WHEN e.side = 'debit' THEN e.amount ELSE 0 END) AS debits,
           sum(CASE WHEN e.side = 'credit' THEN e.amount ELSE 0 END) AS credits
      INTO mismatch
      FROM ledger_entry e
     WHERE e.ledger_transaction_id = txn_id
     GROUP BY e.currency, e.phase
    HAVING sum(CASE WHEN e.side = 'debit' THEN e.amount ELSE -e.amount END) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % is unbalanced in % (%): debits % <> credits %',
            txn_id, mismatch.currency, mismatch.phase, mismatch.debits, mismatch.credits
            USING ERRCODE = 'check_violation';
    END IF;
    IF EXISTS (
        SELECT 1 FROM ledger_entry e
          JOIN ledger_account a ON a.id = e.account_id
          JOIN ledger_transaction t ON t.id = e.ledger_transaction_id
         WHERE e.ledger_transaction_id = txn_id
           AND (a.merchant_id <> t.merchant_id OR a.livemode <> t.livemode)
    ) THEN
        RAISE EXCEPTION 'ledger transaction % has entries on another merchant''s or mode''s accounts', txn_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER ledger_entry_balanced AFTER INSERT ON ledger_entry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_transaction_balanced();
CREATE CONSTRAINT TRIGGER ledger_transaction_balanced AFTER INSERT ON ledger_transaction
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_transaction_balanced();
"""

POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS ledger_transaction_balanced ON ledger_transaction;
DROP TRIGGER IF EXISTS ledger_entry_balanced ON ledger_entry;
DROP FUNCTION IF EXISTS ledger_check_transaction_balanced();
ALTER TABLE ledger_entry DROP CONSTRAINT IF EXISTS ledger_entry_transaction_currency_fk;
ALTER TABLE ledger_entry DROP CONSTRAINT IF EXISTS ledger_entry_account_currency_fk;
DROP TRIGGER IF EXISTS ledger_account_fixed_identity ON ledger_account;
DROP FUNCTION IF EXISTS ledger_account_check_update();
DROP TRIGGER IF EXISTS ledger_account_no_truncate ON ledger_account;
DROP TRIGGER IF EXISTS ledger_account_no_delete ON ledger_account;
DROP TRIGGER IF EXISTS ledger_transaction_no_truncate ON ledger_transaction;
DROP TRIGGER IF EXISTS ledger_transaction_no_update_delete ON ledger_transaction;
DROP TRIGGER IF EXISTS ledger_entry_no_truncate ON ledger_entry;
DROP TRIGGER IF EXISTS ledger_entry_no_update_delete ON ledger_entry;
DROP FUNCTION IF EXISTS ledger_reject_change();
"""

SQLITE_TABLES = {"ledger_entry": ("UPDATE", "DELETE"), "ledger_transaction": ("UPDATE", "DELETE"), "ledger_account": ("DELETE",)}
SQLITE_FORWARD = [
    f"""CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table}
       BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} is not allowed'); END;"""
    for table, ops in SQLITE_TABLES.items() for op in ops
]
SQLITE_REVERSE = [f"DROP TRIGGER IF EXISTS {table}_no_{op.lower()};" for table, ops in SQLITE_TABLES.items() for op in ops]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def reverse(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_REVERSE, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_REVERSE:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]
    operations = [migrations.RunPython(forward, reverse)]
