"""The ledger's rules held by PostgreSQL itself, for raw SQL too (ledger migration 0002):
append-only entries and transactions, accounts never deleted and fixed but for their totals,
the no-overdraft CHECK, and at COMMIT every ledger transaction balanced with two entries."""

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from ledger.services.movements import AVAILABLE
from ledger.services.postings import ledger_post
from tests.support.ledger import hot_account, posting

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def posted(merchant_a):
    """One committed posting: 10.00 from a clearing account to the merchant's available funds."""
    with transaction.atomic():
        result = ledger_post(posting=posting(merchant_a.merchant, key="seed", debit_to=hot_account(0), credit_to=AVAILABLE,
                                             amount=1000, shown=1000))
    return result.ledger_transaction


def raw(sql: str, params=None) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params or [])


@pytest.mark.parametrize("sql", [
    "UPDATE ledger_entry SET amount = amount + 1",
    "UPDATE ledger_entry SET balance_after = 0",
    "DELETE FROM ledger_entry",
    "UPDATE ledger_transaction SET net = 0",
    "DELETE FROM ledger_transaction",
])
def test_entries_and_transactions_refuse_update_and_delete(posted, sql):
    with pytest.raises(DatabaseError, match="append-only"):
        raw(sql)
    assert LedgerEntry.objects.filter(ledger_transaction=posted).count() == 2
    assert sorted(LedgerEntry.objects.values_list("amount", flat=True)) == [1000, 1000]


@pytest.mark.parametrize("table", ["ledger_entry", "ledger_transaction", "ledger_account"])
def test_truncate_is_refused(posted, table):
    with pytest.raises(DatabaseError, match="append-only: TRUNCATE"):
        raw(f"TRUNCATE {table} CASCADE")
    assert LedgerEntry.objects.count() == 2


def test_accounts_are_never_deleted_and_only_their_totals_change(posted):
    account = LedgerAccount.objects.get(code="merchant_available")
    with pytest.raises(DatabaseError, match="append-only: DELETE"):
        raw("DELETE FROM ledger_account WHERE id = %s", [account.pk])
    with pytest.raises(DatabaseError, match="only its totals and version may change"):
        raw("UPDATE ledger_account SET currency = 'EUR' WHERE id = %s", [account.pk])
    with pytest.raises(DatabaseError, match="only its totals and version may change"):
        raw("UPDATE ledger_account SET debits_must_not_exceed_credits = false WHERE id = %s", [account.pk])
    with pytest.raises(DatabaseError, match="version may only grow"):
        raw("UPDATE ledger_account SET version = 0 WHERE id = %s", [account.pk])


def test_the_no_overdraft_rule_is_a_check_constraint(posted):
    account = LedgerAccount.objects.get(code="merchant_available")
    with pytest.raises(IntegrityError, match="ledger_account_no_overdraft"):
        raw("UPDATE ledger_account SET debits_posted = credits_posted + 1, version = version + 1 WHERE id = %s", [account.pk])
    assert LedgerAccount.objects.get(pk=account.pk).debits_posted == 0


def _insert_transaction(cursor, merchant_id: int, key: str) -> int:
    now = timezone.now()
    cursor.execute(
        "INSERT INTO ledger_transaction (public_id, merchant_id, livemode, currency, kind, idempotency_key, amount, fee, net,"
        " source_type, source_id, description, effective_at, available_on, created_at)"
        " VALUES (%s, %s, false, 'USD', 'adjustment', %s, 0, 0, 0, 'adjustment', %s, '', %s, %s, %s) RETURNING id",
        [f"bt_{key}", merchant_id, key, key, now, now, now],
    )
    return cursor.fetchone()[0]


def _insert_entry(cursor, txn_id: int, account: LedgerAccount, side: str, amount: int, currency: str = "USD") -> None:
    cursor.execute(
        "INSERT INTO ledger_entry (ledger_transaction_id, account_id, currency, side, phase, amount, account_version,"
        " balance_after, pending_after, created_at) VALUES (%s, %s, %s, %s, 'posted', %s, %s, 0, 0, now())",
        [txn_id, account.pk, currency, side, amount, account.version + 1],
    )


def test_an_unbalanced_transaction_inserted_with_raw_sql_is_refused_at_commit(posted, merchant_a):
    clearing = LedgerAccount.objects.get(code="gateway_clearing")
    available = LedgerAccount.objects.get(code="merchant_available")
    with pytest.raises(IntegrityError, match="is unbalanced in USD"):
        with transaction.atomic(), connection.cursor() as cursor:
            txn_id = _insert_transaction(cursor, merchant_a.merchant.pk, "unbalanced")
            _insert_entry(cursor, txn_id, clearing, "debit", 500)
            _insert_entry(cursor, txn_id, available, "credit", 499)
            # accepted statement by statement: the rule is checked at COMMIT
    assert not LedgerTransaction.objects.filter(idempotency_key="unbalanced").exists()
    assert LedgerEntry.objects.count() == 2


def test_a_transaction_with_a_single_entry_is_refused_at_commit(posted, merchant_a):
    clearing = LedgerAccount.objects.get(code="gateway_clearing")
    with pytest.raises(IntegrityError, match="has 1 entries: a transaction needs at least two"):
        with transaction.atomic(), connection.cursor() as cursor:
            txn_id = _insert_transaction(cursor, merchant_a.merchant.pk, "lonely")
            _insert_entry(cursor, txn_id, clearing, "debit", 500)
    assert not LedgerTransaction.objects.filter(idempotency_key="lonely").exists()


def test_a_transaction_with_no_entries_is_refused_at_commit(posted, merchant_a):
    with pytest.raises(IntegrityError, match="has 0 entries: a transaction needs at least two"):
        with transaction.atomic(), connection.cursor() as cursor:
            _insert_transaction(cursor, merchant_a.merchant.pk, "empty")
    assert not LedgerTransaction.objects.filter(idempotency_key="empty").exists()


def test_an_entry_is_in_its_account_s_currency(posted, merchant_a):
    clearing = LedgerAccount.objects.get(code="gateway_clearing")
    with pytest.raises(IntegrityError, match="ledger_entry_account_currency_fk|ledger_entry_transaction_currency_fk"):
        with transaction.atomic(), connection.cursor() as cursor:
            txn_id = _insert_transaction(cursor, merchant_a.merchant.pk, "eur-entry")
            _insert_entry(cursor, txn_id, clearing, "debit", 500, currency="EUR")


def test_a_balanced_transaction_on_another_merchant_s_account_is_refused_at_commit(posted, merchant_a, merchant_b):
    clearing = LedgerAccount.objects.get(code="gateway_clearing")
    available = LedgerAccount.objects.get(code="merchant_available")
    with pytest.raises(IntegrityError, match="another merchant"):
        with transaction.atomic(), connection.cursor() as cursor:
            txn_id = _insert_transaction(cursor, merchant_b.merchant.pk, "foreign")
            _insert_entry(cursor, txn_id, clearing, "debit", 500)
            _insert_entry(cursor, txn_id, available, "credit", 500)
