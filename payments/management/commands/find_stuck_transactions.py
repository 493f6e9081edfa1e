"""Runbook "Failed Transactions Recovery": identify stuck transactions.

A stuck transaction is a payment still `processing` (its gateway's answer was lost) for
longer than --older-than (default FLOWPAY_STUCK_AFTER_SECONDS). Next steps:
check_gateway_transaction --transaction-id=ID, then resolve_stuck_transaction.

An authorized payment whose capture or void lost its answer is stuck too (the gateway may
have captured or canceled it): it is listed in its own table. The stuck checker settles those
from the gateway's record; check_gateway_transaction shows what the gateway holds."""

from django.utils import timezone

from core.cli import Column, Report, RunbookCommand, format_duration, parse_duration, positive_int
from core.money import format_minor_units
from payments.selectors import (
    stuck_threshold,
    transactions_stuck_with_last_attempt,
    transactions_with_unknown_capture_or_void_and_attempt,
)


class Command(RunbookCommand):
    help = (
        "Payments left processing for longer than --older-than (default FLOWPAY_STUCK_AFTER_SECONDS), "
        "oldest first, with their last gateway attempt, and authorized payments whose capture or void lost "
        "its answer that long ago. Exits 1 when any is found."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=parse_duration, metavar="DURATION",
                            help="e.g. 10m, 1h (default: FLOWPAY_STUCK_AFTER_SECONDS)")
        parser.add_argument("--limit", type=positive_int, default=100, help="how many to list (100)")

    def build_report(self, *, older_than, limit: int, **options) -> Report:
        threshold = older_than or stuck_threshold()
        query = transactions_stuck_with_last_attempt(older_than=threshold)
        total = query.count()
        now = timezone.now()
        rows = []
        for txn in query[:limit]:
            age = now - txn.processing_started_at
            outcome = txn.last_attempt_outcome
            rows.append({
                "id": txn.public_id,
                "merchant": txn.merchant.public_id,
                "merchantName": txn.merchant.name,
                "amount": txn.amount,
                "currency": txn.currency,
                "amountDisplay": format_minor_units(txn.amount, txn.currency),
                "gateway": txn.gateway or None,
                "processingSince": txn.processing_started_at,
                "ageSeconds": int(age.total_seconds()),
                "age": format_duration(age),
                "lastAttempt": {
                    "number": txn.last_attempt_number, "operation": txn.last_attempt_operation,
                    "outcome": outcome, "errorCode": txn.last_attempt_error or None,
                } if txn.last_attempt_number is not None else None,
                "lastAttemptDisplay": (
                    f"#{txn.last_attempt_number} {txn.last_attempt_operation} {outcome}"
                    + (f" ({txn.last_attempt_error})" if txn.last_attempt_error else "")
                ) if txn.last_attempt_number is not None else "no attempt",
            })
        report = Report(ok_message=f"OK: no transaction processing for longer than {format_duration(threshold)}.")
        report.add_field("olderThanSeconds", "Older than", int(threshold.total_seconds()), format_duration(threshold))
        report.add_field("count", "Stuck transactions", total)
        report.add_table(
            "transactions", f"Oldest first{f' (first {limit})' if total > limit else ''}",
            [Column("id", "ID"), Column("merchant", "MERCHANT"), Column("amountDisplay", "AMOUNT", align="right"),
             Column("gateway", "GATEWAY"), Column("processingSince", "PROCESSING SINCE"), Column("age", "AGE", align="right"),
             Column("lastAttemptDisplay", "LAST ATTEMPT")],
            rows,
        )
        unsettled_total, unsettled = self._unknown_captures_and_voids(older_than=threshold, limit=limit, now=now)
        report.add_field("unknownCaptureOrVoidCount", "Captures or voids without an answer", unsettled_total)
        report.add_table(
            "unknownCapturesAndVoids", "Authorized, capture or void without an answer"
            + (f" (first {limit})" if unsettled_total > limit else ""),
            [Column("id", "ID"), Column("merchant", "MERCHANT"), Column("amountDisplay", "AMOUNT", align="right"),
             Column("gateway", "GATEWAY"), Column("status", "STATUS"), Column("operation", "OPERATION"),
             Column("startedAt", "STARTED"), Column("age", "AGE", align="right")],
            unsettled,
        )
        if total:
            report.problem(f"{total} transaction(s) processing for longer than {format_duration(threshold)}")
            report.note("Next: manage.py check_gateway_transaction --transaction-id=ID, then resolve_stuck_transaction.")
        if unsettled_total:
            report.problem(f"{unsettled_total} authorized transaction(s) with a capture or void unanswered for longer than "
                           f"{format_duration(threshold)}")
            report.note("The stuck checker settles these from the gateway's record; "
                        "check_gateway_transaction --transaction-id=ID shows it.")
        return report

    @staticmethod
    def _unknown_captures_and_voids(*, older_than, limit: int, now) -> tuple[int, list[dict]]:
        query = transactions_with_unknown_capture_or_void_and_attempt(older_than=older_than)
        total = query.count()
        rows = []
        for txn in query[:limit]:
            age = now - txn.unanswered_started_at
            rows.append({
                "id": txn.public_id, "merchant": txn.merchant.public_id, "amount": txn.amount, "currency": txn.currency,
                "amountDisplay": format_minor_units(txn.amount, txn.currency), "gateway": txn.gateway or None,
                "status": txn.status, "operation": txn.unanswered_operation, "attemptNumber": txn.unanswered_number,
                "errorCode": txn.unanswered_error or None, "startedAt": txn.unanswered_started_at,
                "ageSeconds": int(age.total_seconds()), "age": format_duration(age),
            })
        return total, rows
