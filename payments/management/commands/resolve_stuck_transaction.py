"""Runbook "Failed Transactions Recovery": resolve a stuck transaction.

Settles a `processing` transaction as completed or failed through
payments.services.stuck.transaction_resolve_manually: refused when the gateway says
otherwise, unless --force with a --reason (audited as transaction.resolved_forced with the
gateway's view). A refusal is printed on stderr and exits 1."""

from core.actors import Actor
from core.cli import Column, Report, RunbookCommand, to_json
from core.errors import InvalidRequest, InvalidState, NotFound
from core.money import format_minor_units
from core.selectors import UNSCOPED
from payments.models import TransactionStatus
from payments.selectors import transaction_get
from payments.services.stuck import transaction_resolve_manually

ACTOR_NAME = "manage.py resolve_stuck_transaction"


class Command(RunbookCommand):
    help = (
        "Resolve a stuck (processing) transaction as completed or failed. Refused (exit 1) when the gateway "
        "says otherwise, unless --force with a --reason; every resolution is audited."
    )

    def add_arguments(self, parser):
        parser.add_argument("--transaction-id", required=True, metavar="ID", help="FlowPay transaction id (txn_…)")
        parser.add_argument("--status", required=True, choices=[TransactionStatus.COMPLETED, TransactionStatus.FAILED])
        parser.add_argument("--force", action="store_true", help="override the gateway's view (needs --reason)")
        parser.add_argument("--reason", default="", help="why (written to the audit log; required with --force)")

    def build_report(self, *, transaction_id: str, status: str, force: bool, reason: str, **options) -> Report:
        try:
            txn = transaction_get(public_id=transaction_id.strip(), scope=UNSCOPED)
        except NotFound as exc:
            raise self.usage_error(exc.message) from None
        before = txn.status
        try:
            txn = transaction_resolve_manually(
                transaction_id=txn.pk, status=status, actor=Actor.system(ACTOR_NAME), force=force, reason=reason,
            )
        except (InvalidState, InvalidRequest) as exc:
            self.stderr.write(f"Refused: {exc.message}")
            if self.json_output:
                self.stdout.write(to_json({"ok": False, "problems": [exc.message], "transactionId": txn.public_id,
                                           "status": before, "refused": True, "error": {"code": exc.code, "message": exc.message}}))
            self.exit_for(True)
        report = Report(ok_message=f"Resolved: {txn.public_id} is now {txn.status}.")
        result = {
            "id": txn.public_id, "previousStatus": before, "status": txn.status, "requestedStatus": status,
            "gateway": txn.gateway or None, "reference": txn.gateway_reference or None,
            "amountCaptured": txn.amount_captured, "amountCapturedDisplay": format_minor_units(txn.amount_captured, txn.currency),
            "failureCode": txn.failure_code or None, "forced": force, "reason": reason or None,
        }
        report.add_field("transactionId", "Transaction", txn.public_id)
        report.add_field("refused", "Refused", False, show=False)
        report.add_table(
            "result", "Result",
            [Column("id", "ID"), Column("previousStatus", "BEFORE"), Column("status", "STATUS"), Column("gateway", "GATEWAY"),
             Column("reference", "REFERENCE"), Column("amountCapturedDisplay", "CAPTURED", align="right"),
             Column("failureCode", "FAILURE CODE"), Column("forced", "FORCED"), Column("reason", "REASON")],
            [result],
        )
        if txn.status != status:
            # settled meanwhile by the checker or a webhook: not what was asked
            report.problem(f"{txn.public_id} was settled meanwhile as {txn.status}, not {status}")
        return report
