"""The overview's rollup: hourly buckets of payments, refunds, disputes and rebill jobs per
(merchant, mode, currency, gateway, status, code), so that no page view scans transactions.

Written only by backoffice.dashboard.rollup (the beat task and `rebuild_dashboard_rollup`)."""

from django.db import models


class RollupKind(models.TextChoices):
    PAYMENT = "payment"  # transactions by created_at; code: the failure code of failed ones
    REFUND = "refund"  # refunds by created_at
    DISPUTE = "dispute"  # chargebacks by created_at
    REBILL = "rebill"  # rebill jobs by created_at; code: the job's outcome


class HourlyRollup(models.Model):
    hour = models.DateTimeField()  # start of the UTC hour the rows were created in
    kind = models.CharField(max_length=10, choices=RollupKind.choices)
    # Not a foreign key with a constraint: the rollup is derived data, rebuilt from the source.
    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    livemode = models.BooleanField()
    currency = models.CharField(max_length=3)
    gateway = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=20)
    code = models.CharField(max_length=64, blank=True)
    count = models.BigIntegerField()
    # Sums in minor units of `currency`: the rows' amount, and (payments) what was captured.
    amount = models.BigIntegerField()
    captured = models.BigIntegerField(default=0)
    # The refresh that wrote the bucket: buckets of a re-aggregated hour that this refresh
    # did not write any more (their rows moved to another status) are deleted by it.
    computed_at = models.DateTimeField()

    class Meta:
        db_table = "dashboard_hourly_rollup"
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "kind", "merchant", "livemode", "currency", "gateway", "status", "code"],
                name="dashboard_rollup_bucket_unique",
            ),
        ]
        indexes = [models.Index(fields=["kind", "livemode", "currency", "hour"], name="dashboard_rollup_read_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.hour:%Y-%m-%d %H:00} {self.currency} {self.status}"


class RollupWatermark(models.Model):
    """Per kind, the highest source row id the rollup has seen: rows above it that were
    created before the recent window (late rows) have their hours re-aggregated. The row is
    also the lock that serialises refreshes."""

    kind = models.CharField(max_length=10, choices=RollupKind.choices, primary_key=True)
    last_id = models.BigIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "dashboard_rollup_watermark"

    def __str__(self) -> str:
        return f"{self.kind} up to id {self.last_id}"
