"""Posts the history that predates the ledger:

    python manage.py ledger_backfill [--dry-run] [--format table|json]

Captures, refunds and chargebacks recorded before their movements posted to the ledger are
posted with the live posting rules, at their original times (backoffice.ledger.backfill).
Idempotent: what is posted already is skipped, so a second run posts nothing. --dry-run
lists what would be posted and posts nothing. Run verify_ledger afterwards.
"""

from audit.actions import AuditAction
from audit.services import audit_record
from backoffice.ledger.backfill import ledger_backfill
from core.actors import Actor
from core.cli import Column, Report, RunbookCommand
from core.money import format_minor_units

ITEM_COLUMNS = [
    Column("kind", "POSTING"), Column("source", "SOURCE"), Column("merchant", "MERCHANT"),
    Column("amountDisplay", "AMOUNT", align="right"),
]
# The table shows this many items; the JSON output lists them all.
SHOWN = 200


class Command(RunbookCommand):
    help = "Post the captures, refunds and chargebacks that predate the ledger (idempotent); --dry-run posts nothing."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="list what would be posted; post nothing")

    def build_report(self, *, dry_run: bool, **options) -> Report:
        actor = Actor.system("ledger_backfill")
        backfill = ledger_backfill(dry_run=dry_run)
        if not dry_run:
            audit_record(actor=actor, action=AuditAction.LEDGER_BACKFILL, details={"posted": dict(backfill.posted)})
        items = [{"kind": i.kind, "source": i.source, "merchant": i.merchant, "amount": i.amount, "currency": i.currency,
                  "amountDisplay": format_minor_units(i.amount, i.currency)} for i in backfill.items]
        report = Report(ok_message="OK: nothing to post." if not items else
                        ("OK: dry run, nothing posted." if dry_run else "OK: posted; run verify_ledger to check the books."))
        report.add_field("dryRun", "Dry run", dry_run)
        report.add_field("toPost", "To post", dict(backfill.planned), ", ".join(f"{k} {v}" for k, v in sorted(backfill.planned.items())) or "nothing")
        report.add_field("posted", "Posted", dict(backfill.posted), ", ".join(f"{k} {v}" for k, v in sorted(backfill.posted.items())) or "nothing")
        report.add_table("items", "Postings" + (" (first 200)" if len(items) > SHOWN and not self.json_output else ""),
                         ITEM_COLUMNS, items if self.json_output else items[:SHOWN], empty="(nothing to post)")
        return report
