"""Runbook "Finding Failed Refunds": refunds
left `failed` (gateway errors after every automatic retry, or refused by the gateway).

    python manage.py list_failed_refunds [--last-24h | --since 7d] [--retry] [--format table|json]

Exit status (core.cli): 1 when failed refunds are found, 0 when there are none, 2 for
usage errors. With --retry every listed refund is queued again (refund_retry, audited as
this command): the exit status is then 1 only if some refund could not be re-queued.
"""

import datetime as dt

from django.utils import timezone

from core.actors import Actor
from core.cli import Column, Report, RunbookCommand, format_duration, parse_duration
from core.errors import FlowPayError
from core.money import format_minor_units
from refunds.models import Refund
from refunds.selectors import refunds_failed_since
from refunds.services.recovery import refund_retry

DEFAULT_WINDOW = dt.timedelta(hours=24)

def _one_line(text: str | None, limit: int = 50) -> str:
    """A message on one table line (the JSON output keeps it whole)."""
    flat = " ".join((text or "").split()) or "-"
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


REFUND_COLUMNS = [
    Column("id", "REFUND"), Column("transaction", "TRANSACTION"), Column("amountDisplay", "AMOUNT", align="right"),
    Column("failedAt", "FAILED AT"), Column("attempts", "ATTEMPTS"), Column("failureCode", "ERROR"),
    Column("outcomeUnknown", "OUTCOME UNKNOWN"), Column("failureMessage", "MESSAGE", fmt=_one_line),
]
RETRY_COLUMNS = [Column("id", "REFUND"), Column("requeued", "RE-QUEUED"), Column("error", "ERROR")]


def refund_row(refund: Refund) -> dict:
    return {
        "id": refund.public_id,
        "transaction": refund.transaction.public_id,
        "merchant": refund.merchant.public_id,
        "amount": refund.amount,
        "currency": refund.currency,
        "amountDisplay": format_minor_units(refund.amount, refund.currency),
        "refundToOriginalMethod": refund.refund_to_original_method,
        "gateway": refund.gateway or None,
        "failureCode": refund.failure_code or None,
        "failureMessage": refund.failure_message or None,
        "outcomeUnknown": refund.outcome_unknown,
        "attempts": refund.attempts,
        "reason": refund.reason,
        "initiatedBy": f"{refund.initiated_by_type}:{refund.initiated_by_id}",
        "created": refund.created_at,
        "failedAt": refund.failed_at,
    }


def add_window_arguments(parser) -> None:
    window = parser.add_mutually_exclusive_group()
    window.add_argument("--last-24h", action="store_true", help="refunds that failed in the last 24 hours (the default)")
    window.add_argument("--since", type=parse_duration, metavar="DURATION", help="a window such as 2h, 7d, 2w")


def window_of(options) -> dt.timedelta:
    return options.get("since") or DEFAULT_WINDOW


def retry_all(refunds, *, actor: Actor) -> list[dict]:
    """refund_retry for each (its own DB transaction): one refusal does not stop the others."""
    results = []
    for refund in refunds:
        try:
            refund_retry(refund_id=refund.pk, actor=actor)
        except FlowPayError as exc:
            results.append({"id": refund.public_id, "requeued": False, "error": exc.message})
        else:
            results.append({"id": refund.public_id, "requeued": True, "error": None})
    return results


def report_retries(report: Report, results: list[dict]) -> None:
    report.add_table("retried", "Retried", RETRY_COLUMNS, results, empty="(nothing to retry)")
    done = sum(1 for r in results if r["requeued"])
    report.add_field("requeued", "Re-queued", done, f"{done} of {len(results)}")
    for result in results:
        if not result["requeued"]:
            report.problem(f"{result['id']} could not be re-queued: {result['error']}")


class Command(RunbookCommand):
    help = (
        "Refunds left failed in a window (default: the last 24 hours); --retry queues them again. "
        "Exits 1 when failed refunds are found (with --retry: when some could not be re-queued)."
    )

    def add_arguments(self, parser):
        add_window_arguments(parser)
        parser.add_argument("--retry", action="store_true", help="queue every listed refund again")

    def build_report(self, *, retry: bool, **options) -> Report:
        window = window_of(options)
        start = timezone.now() - window
        refunds = list(refunds_failed_since(since=start))
        report = Report(ok_message="OK: no failed refunds in the window.")
        report.add_field("windowSeconds", "Window", int(window.total_seconds()), format_duration(window))
        report.add_field("since", "Since", start)
        report.add_field("failedTotal", "Failed refunds", len(refunds))
        report.add_table("refunds", "Failed refunds", REFUND_COLUMNS, [refund_row(r) for r in refunds],
                         empty="(no failed refunds)")
        if retry:
            report_retries(report, retry_all(refunds, actor=Actor.system("list_failed_refunds")))
        elif refunds:
            report.problem(f"{len(refunds)} failed refund(s) since {start:%Y-%m-%d %H:%M:%S %Z}; "
                           "retry them with --retry or retry_failed_refunds")
        return report
