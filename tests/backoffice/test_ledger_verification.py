"""verify_ledger (exit 0 on sound books, 1 with the problems: an imbalance, a balance that is
not its entries' replay, a movement without its postings), its run recorded for the metrics
ledger_imbalance_minor_units and ledger_verify_last_success_timestamp, the nightly task, and
ledger_backfill (idempotent, --dry-run posts nothing)."""

import re

import pytest
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from core.actors import Actor
from ledger.models import LedgerTransaction, LedgerVerificationRun
from refunds.services.chargebacks import chargeback_create, chargeback_record_outcome
from refunds.services.create import refund_create
from tests.support.commands import run, run_json

# Transactional: the rows are tampered with (and committed) as outside code would.
pytestmark = pytest.mark.django_db(transaction=True)

SYSTEM = Actor.system("test")


def tamper(sql: str, params=None) -> None:
    """Change ledger rows behind the database's back (its triggers skipped), as an attacker
    or a broken migration could."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params or [])
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")


def metric(exposition: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", exposition, re.MULTILINE)
    assert found, f"{name} is not exported"
    return float(found.group(1))


@pytest.fixture
def history(merchant_a, make_payment):
    """A payment refunded off-gateway, another with a lost chargeback."""
    first = make_payment(merchant_a, amount=10000)
    refund_create(transaction_id=first.pk, amount=2500, reason="", refund_to_original_method=False, actor=SYSTEM)
    second = make_payment(merchant_a, amount=4000)
    chargeback, _ = chargeback_create(transaction_id=second.pk, chargeback_reference="CB9", amount=4000, reason="", actor=SYSTEM)
    chargeback_record_outcome(chargeback_id=chargeback.pk, outcome="lost", actor=SYSTEM)
    return first, second


def test_sound_books_pass_and_the_run_sets_the_metrics(history, client):
    outcome = run("verify_ledger")
    assert "OK: the ledger balances and every money movement has its postings." in outcome.out
    assert re.search(r"USD\s+\d+\s+\d+\s+0", outcome.out)
    document = run_json("verify_ledger")
    assert document["problems"] == [] and document["imbalance"] == {"USD": 0}
    # 2 payments, a refund, a chargeback opened and lost
    assert document["accounts"] > 0 and document["ledgerTransactions"] == 5
    run_ = LedgerVerificationRun.objects.order_by("-id").first()
    assert run_.ok and run_.merchant is None

    metrics = client.get("/metrics").content.decode()
    assert metric(metrics, 'ledger_imbalance_minor_units{currency="USD"}') == 0
    assert metric(metrics, "ledger_verify_last_success_timestamp") == pytest.approx(run_.finished_at.timestamp())


def test_an_altered_entry_is_found_and_reported_with_exit_1(history, client):
    run("verify_ledger")
    last_success = LedgerVerificationRun.objects.get(ok=True).finished_at
    entry_id = LedgerTransaction.objects.filter(kind="refund").get().entries.order_by("id").first().pk
    tamper("UPDATE ledger_entry SET amount = amount + 1 WHERE id = %s", [entry_id])

    document = run_json("verify_ledger", expect=1)

    problems = "\n".join(document["problems"])
    assert document["imbalance"] == {"USD": 1}
    assert "USD posted entries do not balance: debits" in problems
    assert "does not balance in its posted entries (off by" in problems
    assert "stored totals" in problems and "replay of its entries" in problems
    assert "but its entries add up to" in problems
    table = run("verify_ledger", expect=1).out
    assert "PROBLEM: USD posted entries do not balance" in table
    # the metrics: an imbalance (critical alert), and the last success still the earlier run
    metrics = client.get("/metrics").content.decode()
    assert metric(metrics, 'ledger_imbalance_minor_units{currency="USD"}') == 1
    assert metric(metrics, "ledger_verify_last_success_timestamp") == pytest.approx(last_success.timestamp())


def test_an_account_total_changed_behind_the_ledger_s_back_is_found(history):
    tamper("UPDATE ledger_account SET credits_posted = credits_posted + 100 WHERE code = 'platform_revenue'")
    problems = run_json("verify_ledger", expect=1)["problems"]
    assert any("platform_revenue" in p and "replay of its entries" in p for p in problems)


def test_a_movement_without_its_postings_is_found_and_the_backfill_posts_it_once(merchant_a, make_payment, monkeypatch):
    # captured before the ledger existed: no posting
    monkeypatch.setattr("payments.services.transactions.transaction_post_capture", lambda txn, gateway_fee: None)
    old = make_payment(merchant_a, amount=5000)
    refund_create(transaction_id=old.pk, amount=1000, reason="", refund_to_original_method=False, actor=SYSTEM)
    monkeypatch.undo()
    # its refund posted live, but as if before the ledger too: every ledger row goes
    tamper("DELETE FROM ledger_entry")
    tamper("DELETE FROM ledger_transaction")
    tamper("DELETE FROM ledger_account")
    make_payment(merchant_a, amount=2000)  # a payment of today, posted live

    problems = run_json("verify_ledger", expect=1)["problems"]
    assert problems == [
        f"transaction {old.public_id} (partially_refunded, captured 5000) has no capture posting",
        f"transaction {old.public_id}: refunded 1000, refund postings total 0",
    ]

    dry = run_json("ledger_backfill", "--dry-run")
    assert dry["toPost"] == {"payment": 1, "refund": 1} and dry["posted"] == {}
    assert [(i["kind"], i["source"]) for i in dry["items"]][0] == ("payment", old.public_id)
    assert not LedgerTransaction.objects.filter(source_id=old.public_id).exists()

    done = run_json("ledger_backfill")
    assert done["posted"] == {"payment": 1, "refund": 1}
    posted = LedgerTransaction.objects.get(source_id=old.public_id)
    assert posted.effective_at == old.finalized_at and (posted.amount, posted.fee) == (5000, 175)
    assert run_json("ledger_backfill")["toPost"] == {}  # a second run posts nothing
    assert "OK: nothing to post." in run("ledger_backfill").out
    assert run_json("verify_ledger")["problems"] == []


def test_the_backfill_posts_chargebacks_and_refunds_of_the_past(history):
    tamper("DELETE FROM ledger_entry")
    tamper("DELETE FROM ledger_transaction")
    tamper("DELETE FROM ledger_account")
    assert len(run_json("verify_ledger", expect=1)["problems"]) == 5  # 2 captures, a refund, a chargeback's 2 steps
    plan = run_json("ledger_backfill", "--dry-run")["toPost"]
    assert plan == {"payment": 2, "refund": 1, "chargeback": 1, "chargeback_lost": 1}
    run("ledger_backfill")
    assert run_json("verify_ledger")["problems"] == []
    assert run_json("ledger_backfill")["toPost"] == {}


def test_verify_ledger_for_one_merchant(history, merchant_b, make_payment):
    make_payment(merchant_b, amount=1000)
    tamper("UPDATE ledger_account SET debits_posted = debits_posted + 5 WHERE merchant_id = %s AND code = 'gateway_clearing'",
           [merchant_b.merchant.pk])
    assert run_json("verify_ledger", "--merchant", history[0].merchant.public_id)["problems"] == []
    assert run_json("verify_ledger", "--merchant", merchant_b.merchant.public_id, expect=1)["problems"]
    with pytest.raises(CommandError, match="no such merchant"):
        run("verify_ledger", "--merchant", "mer_nope")


def test_the_nightly_task_runs_the_verification(history):
    from backoffice.tasks import verify_ledger_task

    assert verify_ledger_task.apply().get() is True
    assert LedgerVerificationRun.objects.get().run_by == "worker:backoffice.verify_ledger"


def test_refund_reservations_and_disputed_funds_never_exceed_the_captured_amount(merchant_a, make_payment):
    # The open rule of the ledger's issue, held by a CHECK on payments.transactions
    # (txn_refunds_and_disputes_within_captured): no code path, raw SQL included, breaks it.
    txn = make_payment(merchant_a, amount=1000)
    with pytest.raises(IntegrityError, match="txn_refunds_and_disputes_within_captured"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE transactions SET amount_refund_reserved = 600, amount_disputed = 500, disputed = true"
                           " WHERE id = %s", [txn.pk])
