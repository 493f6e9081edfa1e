"""Runbook "Payment Reconciliation": reconcile a gateway's settlement day with FlowPay.

    python manage.py reconcile_payments --gateway=stripe --date=2023-05-15

Reads the gateway's settlement report for the day (its API, or `--file` in its own report
format), matches it against FlowPay's payments, refunds and chargebacks, records the run and
one item per discrepancy, and prints the counts per category, the totals and the items.
Exit status: 0 when everything matched, 1 when discrepancies were found, 2 on an error
(gateway unreachable, bad file, another run of the same day in progress, bad flags), with
nothing written.
"""

from __future__ import annotations

import datetime as dt
import os

from django.core.management.base import CommandError

from core.actors import Actor
from core.cli import Column, Report, RunbookCommand, to_json
from core.errors import FlowPayError
from gateways.base import GatewayError
from reconciliation.models import Category
from reconciliation.representations import item_document
from reconciliation.services.runs import RunReport, reconciliation_run


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"invalid --date {text!r}: use YYYY-MM-DD", returncode=2) from None



def _diff_text(diff: list[dict]) -> str:
    return "; ".join(f"{d['field']}: {d['flowpay']} / {d['gateway']}" for d in diff) or "-"


class Command(RunbookCommand):
    help = (
        "Reconcile a gateway's settlement day (--gateway=stripe --date=2023-05-15) with FlowPay's payments, refunds and "
        "chargebacks. Exits 0 when everything matched, 1 when discrepancies were found, 2 on an error (nothing written)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--gateway", required=True, help="stripe, paypal or simulator")
        parser.add_argument("--date", required=True, help="the settlement day, YYYY-MM-DD (in FLOWPAY_RECONCILIATION_TIME_ZONE)")
        parser.add_argument("--file", metavar="PATH", help="a settlement report in the gateway's own CSV format instead of its API")
        parser.add_argument("--dry-run", action="store_true", help="match and report, write nothing")
        parser.add_argument("--rerun", action="store_true", help="reconcile again a day already reconciled (the next attempt)")

    def handle(self, *args, **options):
        self.output_format = options["format"]
        try:
            report = self._reconcile(**options)
        except (FlowPayError, GatewayError, OSError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            if self.json_output:
                self.stdout.write(to_json({"ok": False, "problems": [message], "error": message,
                                           "gateway": options["gateway"], "date": options["date"]}))
            raise CommandError(message, returncode=self.USAGE_EXIT_CODE) from None
        self.emit(self._report(report))
        self.exit_for(report.discrepancies > 0)

    def _reconcile(self, *, gateway: str, date: str, file: str | None, dry_run: bool, rerun: bool, **options) -> RunReport:
        day = _date(date)
        actor = Actor.system("reconcile_payments")
        if file is None:
            return reconciliation_run(gateway=gateway, settlement_date=day, actor=actor, dry_run=dry_run, rerun=rerun)
        with open(file, "rb") as stream:
            return reconciliation_run(gateway=gateway, settlement_date=day, actor=actor, file=stream,
                                      file_name=os.path.basename(file), dry_run=dry_run, rerun=rerun)

    def _report(self, found: RunReport) -> Report:
        report = Report(ok_message="OK: every settlement matched.")
        run = found.run
        report.add_field("gateway", "Gateway", found.window.gateway)
        report.add_field("date", "Date", found.window.settlement_date.isoformat(),
                         f"{found.window.settlement_date} ({found.window.time_zone})")
        report.add_field("runId", "Run", run.public_id if run else None,
                         f"{run.public_id} (attempt {run.attempt}, {run.source})" if run else "dry run: nothing kept")
        report.add_field("dryRun", "", found.dry_run, show=False)
        report.add_field("alreadyReconciled", "", found.already_reconciled, show=False)
        report.add_field("gatewayRows", "Gateway rows read", found.gateway_rows)
        report.add_field("localRecords", "FlowPay records", found.local_records)
        report.add_field("awaitingSettlement", "Awaiting settlement", found.awaiting_settlement)
        report.add_field("counts", "", {str(c): found.counts.get(c, 0) for c in Category}, show=False)
        report.add_field("totals", "", found.totals, show=False)
        report.add_field("itemsTotal", "", found.items_total, show=False)
        report.add_table("categories", "Categories", [Column("category", "CATEGORY"), Column("count", "COUNT")],
                         [{"category": str(c), "count": found.counts.get(c, 0)} for c in Category])
        report.add_table("currencies", "Totals (minor units)", [
            Column("currency", "CURRENCY"), Column("gateway", "GATEWAY GROSS"), Column("flowpay", "FLOWPAY GROSS"),
            Column("difference", "DIFFERENCE")], self._totals_rows(found.totals))
        items = [item_document(item) for item in found.items]
        report.add_table("items", "Discrepancies", [
            Column("id", "ITEM"), Column("category", "CATEGORY"), Column("kind", "KIND"),
            Column("localReference", "FLOWPAY"), Column("gatewayReference", "GATEWAY"),
            Column("flowpayAmount", "FLOWPAY AMOUNT", fmt=lambda v: "-" if v is None else str(v), align="right"),
            Column("gatewayAmount", "GATEWAY AMOUNT", fmt=lambda v: "-" if v is None else str(v), align="right"),
            Column("diff", "DIFF", fmt=_diff_text), Column("state", "STATE"),
        ], items)
        if found.items_total > len(items):
            report.note(f"{found.items_total - len(items)} more items: GET /payment/reconciliation/items or the admin.")
        if found.already_reconciled:
            report.note("This day was already reconciled: the last run is shown (--rerun reconciles it again).")
        if found.dry_run:
            report.note("Dry run: nothing was written.")
        for category in Category:
            if category != Category.MATCHED and found.counts.get(category):
                report.problem(f"{found.counts[category]} {category}")
        return report

    @staticmethod
    def _totals_rows(totals: dict) -> list[dict]:
        kinds = ("charge", "refund", "dispute", "dispute_reversal")
        rows = []
        for currency in sorted(set(totals.get("gateway", {})) | set(totals.get("flowpay", {}))):
            gateway = sum(v["gross"] for k, v in totals.get("gateway", {}).get(currency, {}).items() if k in kinds)
            flowpay = sum(v["gross"] for v in totals.get("flowpay", {}).get(currency, {}).values())
            rows.append({"currency": currency, "gateway": gateway, "flowpay": flowpay,
                         "difference": totals.get("difference", {}).get(currency, 0)})
        return rows
