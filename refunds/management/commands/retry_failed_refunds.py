"""Queue failed refunds again (runbook: "identify and retry failed refunds").

    python manage.py retry_failed_refunds [--last-24h | --since 7d | --refund re_… ...] [--format table|json]

Each refund goes failed → processing through refund_retry, audited as this command: after a
failure known to have refunded nothing it is sent under a fresh gateway idempotency key;
after an unknown outcome (timeout) the same key is sent again, so it can never refund twice.
Exit status: 1 when some refund could not be re-queued (e.g. its amount is no longer
refundable), 0 otherwise, 2 for usage errors (unknown or not-failed refund ids).
"""

from django.utils import timezone

from core.actors import Actor
from core.cli import Report, RunbookCommand
from refunds.management.commands.list_failed_refunds import add_window_arguments, report_retries, retry_all, window_of
from refunds.models import Refund, RefundStatus
from refunds.selectors import refunds_failed_since


class Command(RunbookCommand):
    help = "Queue failed refunds again: those of a window (default: the last 24 hours) or the ones named with --refund."

    def add_arguments(self, parser):
        add_window_arguments(parser)
        parser.add_argument("--refund", action="append", default=[], metavar="re_…", help="a refund id (repeatable)")

    def build_report(self, *, refund: list[str], **options) -> Report:
        if refund:
            refunds = list(Refund.objects.filter(public_id__in=refund).select_related("transaction"))
            missing = sorted(set(refund) - {r.public_id for r in refunds})
            if missing:
                raise self.usage_error(f"no such refund: {', '.join(missing)}")
            not_failed = [f"{r.public_id} ({r.status})" for r in refunds if r.status != RefundStatus.FAILED]
            if not_failed:
                raise self.usage_error(f"only failed refunds can be retried: {', '.join(not_failed)}")
        else:
            refunds = list(refunds_failed_since(since=timezone.now() - window_of(options)))
        report = Report(ok_message=f"OK: {len(refunds)} refund(s) queued again." if refunds else "OK: no failed refunds to retry.")
        report_retries(report, retry_all(refunds, actor=Actor.system("retry_failed_refunds")))
        return report
