"""Proves the books balance:

    python manage.py verify_ledger [--merchant mer_…] [--format table|json]

Σ debits = Σ credits per currency over every entry; every ledger transaction balances;
every account's totals equal the replay of its entries; no no-overdraft account is below
zero; every captured, refunded or disputed payment has its postings. Exit status
(core.cli): 0 when all hold, 1 with the list of problems, 2 for usage errors. Beat runs it
every night (backoffice.verify_ledger); each run sets the metrics ledger_imbalance_minor_units
and ledger_verify_last_success_timestamp (a whole-ledger run only).
"""

from accounts.models import Merchant
from backoffice.ledger.verify import ledger_verify
from core.actors import Actor
from core.cli import Column, Report, RunbookCommand

CURRENCY_COLUMNS = [
    Column("currency", "CURRENCY"), Column("debits", "DEBITS (POSTED)"), Column("credits", "CREDITS (POSTED)"),
    Column("imbalance", "IMBALANCE"),
]


class Command(RunbookCommand):
    help = ("Check that the ledger balances and that every payment, refund and chargeback has its postings. "
            "Exits 1 with the problems found.")

    def add_arguments(self, parser):
        parser.add_argument("--merchant", metavar="ID", help="one merchant only (its public id, mer_…)")

    def build_report(self, *, merchant: str | None, **options) -> Report:
        merchant_id = None
        if merchant:
            found = Merchant.objects.filter(public_id=merchant).values_list("pk", flat=True).first()
            if found is None:
                raise self.usage_error(f"no such merchant: {merchant!r}")
            merchant_id = found
        verification = ledger_verify(actor=Actor.system("verify_ledger"), merchant_id=merchant_id)
        books = verification.books
        report = Report(ok_message="OK: the ledger balances and every money movement has its postings.")
        report.add_field("merchant", "Merchant", merchant or None, merchant or "all")
        report.add_field("accounts", "Accounts", books.accounts)
        report.add_field("ledgerTransactions", "Ledger transactions", books.transactions)
        report.add_field("entries", "Entries", books.entries)
        report.add_field("imbalance", "Imbalance", books.imbalance, show=False)
        rows = [
            {"currency": currency, "debits": books.totals.get(currency, {}).get("debits", 0),
             "credits": books.totals.get(currency, {}).get("credits", 0), "imbalance": books.imbalance[currency]}
            for currency in sorted(books.imbalance)
        ]
        report.add_table("currencies", "Per currency", CURRENCY_COLUMNS, rows, empty="(no entries)")
        for problem in verification.problems:
            report.problem(problem)
        return report
