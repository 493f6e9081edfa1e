"""verify_ledger (the command and the nightly beat task): the ledger's books
(ledger.verification) and the postings of every payment, refund and chargeback
(backoffice.ledger.coverage). Each run is recorded (the metrics ledger_imbalance_minor_units
and ledger_verify_last_success_timestamp read the latest whole-ledger run) and audited."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from audit.actions import AuditAction
from audit.services import audit_record
from backoffice.ledger.coverage import coverage_problems
from core.actors import Actor
from ledger.models import LedgerVerificationRun
from ledger.services.verification_runs import ledger_verification_record
from ledger.verification import BooksCheck, ledger_verify_books


@dataclass(frozen=True)
class LedgerVerification:
    books: BooksCheck
    problems: list[str]
    run: LedgerVerificationRun

    @property
    def ok(self) -> bool:
        return not self.problems


def ledger_verify(*, actor: Actor, merchant_id: int | None = None) -> LedgerVerification:
    started = timezone.now()
    books = ledger_verify_books(merchant_id=merchant_id)
    problems = books.problems + coverage_problems(merchant_id=merchant_id)
    run = ledger_verification_record(started_at=started, merchant_id=merchant_id, imbalance=books.imbalance,
                                     problems=problems, run_by=f"{actor.type}:{actor.id}")
    audit_record(actor=actor, action=AuditAction.LEDGER_VERIFY, merchant_id=merchant_id,
                 result="success" if not problems else "failure",
                 details={"problems": len(problems), "imbalance": books.imbalance, "run": run.pk})
    return LedgerVerification(books=books, problems=problems, run=run)
