"""Recording a verify_ledger run (LedgerVerificationRun), read by the metrics at scrape time."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from ledger.models import LedgerVerificationRun

# A run keeps at most this many problems (the count is complete).
KEPT_PROBLEMS = 200


def ledger_verification_record(
    *, started_at: dt.datetime, merchant_id: int | None, imbalance: dict[str, int], problems: list[str], run_by: str,
) -> LedgerVerificationRun:
    return LedgerVerificationRun.objects.create(
        started_at=started_at, finished_at=timezone.now(), merchant_id=merchant_id, ok=not problems,
        imbalance=imbalance, problems=problems[:KEPT_PROBLEMS], problem_count=len(problems), run_by=run_by[:150],
    )
