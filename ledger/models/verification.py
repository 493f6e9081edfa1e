"""The outcome of each verify_ledger run, kept so that every process reports the same
metrics (ledger_imbalance_minor_units, ledger_verify_last_success_timestamp, read at
scrape time by backoffice.metrics) whichever process ran the check."""

from django.db import models


class LedgerVerificationRun(models.Model):
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(db_index=True)
    # None: the whole ledger; a merchant: a run narrowed with --merchant (not used for the metrics).
    merchant = models.ForeignKey("accounts.Merchant", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    ok = models.BooleanField()
    # Σ debits - Σ credits over every entry, per currency (0 when the books balance).
    imbalance = models.JSONField(default=dict)
    problems = models.JSONField(default=list)
    problem_count = models.PositiveIntegerField(default=0)
    run_by = models.CharField(max_length=150)

    class Meta:
        db_table = "ledger_verification_run"
        ordering = ["-finished_at", "-id"]

    def __str__(self) -> str:
        return f"ledger verification {self.finished_at:%Y-%m-%d %H:%M} {'ok' if self.ok else 'PROBLEMS'}"
