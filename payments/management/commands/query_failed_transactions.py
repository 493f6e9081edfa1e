"""Runbook "High Error Rate": patterns in failed transactions."""

from django.utils import timezone

from core.cli import Column, Report, RunbookCommand, format_duration, parse_duration, positive_int
from core.money import format_minor_units
from payments.selectors import transactions_failed_latest, transactions_failed_summary


class Command(RunbookCommand):
    help = (
        "Failed transactions in a window (default: the last hour), grouped by failure code and gateway, "
        "with the latest ones. Exits 1 when any failed transaction is found."
    )

    def add_arguments(self, parser):
        window = parser.add_mutually_exclusive_group()
        window.add_argument("--last-hour", action="store_true", help="the last hour (the default)")
        window.add_argument("--since", type=parse_duration, metavar="DURATION", help="a window such as 30m, 2h, 1d")
        parser.add_argument("--limit", type=positive_int, default=20, help="how many of the latest failures to list (20)")

    def build_report(self, *, last_hour: bool, since, limit: int, **options) -> Report:
        window = since or parse_duration("1h")
        start = timezone.now() - window
        groups = transactions_failed_summary(since=start)
        total = sum(group["count"] for group in groups)
        latest = [
            {
                "id": txn.public_id,
                "merchant": txn.merchant.public_id,
                "merchantName": txn.merchant.name,
                "amount": txn.amount,
                "currency": txn.currency,
                "amountDisplay": format_minor_units(txn.amount, txn.currency),
                "gateway": txn.gateway or None,
                "failureCode": txn.failure_code or None,
                "failureMessage": txn.failure_message or None,
                "created": txn.created_at,
            }
            for txn in transactions_failed_latest(since=start, limit=limit)
        ]

        report = Report(ok_message="OK: no failed transactions in the window.")
        report.add_field("windowSeconds", "Window", int(window.total_seconds()), format_duration(window))
        report.add_field("since", "Since", start)
        report.add_field("failedTotal", "Failed transactions", total)
        report.add_table(
            "byFailureCode", "By failure code and gateway",
            [Column("failureCode", "FAILURE CODE"), Column("gateway", "GATEWAY"), Column("count", "COUNT"),
             Column("sharePercent", "SHARE %")],
            [
                {"failureCode": g["failure_code"] or None, "gateway": g["gateway"] or None, "count": g["count"],
                 "sharePercent": round(g["count"] * 100 / total, 1)}
                for g in groups
            ],
            empty="(no failed transactions)",
        )
        report.add_table(
            "latest", f"Latest {len(latest)} of {total}" if latest else "Latest",
            [Column("id", "ID"), Column("merchant", "MERCHANT"), Column("amountDisplay", "AMOUNT", align="right"),
             Column("gateway", "GATEWAY"), Column("failureCode", "FAILURE CODE"), Column("created", "CREATED")],
            latest,
            empty="(none)",
        )
        if total:
            report.problem(f"{total} failed transaction(s) since {start:%Y-%m-%d %H:%M:%S %Z}")
        return report
