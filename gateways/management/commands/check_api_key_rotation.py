"""Runbook "Payment Gateway Issues": payment gateway API keys rotation status.

A key is due for rotation once it is FLOWPAY_KEY_ROTATION_DAYS (90) days old; its creation
date comes with the key (STRIPE_API_KEY_CREATED_AT, PAYPAL_CLIENT_SECRET_CREATED_AT, or
"created_at" in FLOWPAY_SECRETS_FILE). Keys are shown as their last 4 characters only."""

from django.utils import timezone

from core.cli import Column, Report, RunbookCommand
from gateways.rotation import gateway_key_rotation


class Command(RunbookCommand):
    help = (
        "Age and rotation status of each configured gateway API key (only its last 4 characters are shown). "
        "Exits 1 when a key is due for rotation or has no creation date."
    )

    def build_report(self, **options) -> Report:
        today = timezone.localdate()
        rotation = gateway_key_rotation(today=today)
        rotation_days, rows, problems = rotation.rotation_days, rotation.rows, rotation.problems

        report = Report(ok_message=f"OK: every key is younger than {rotation_days} days.")
        report.add_field("rotationDays", "Rotation after", rotation_days, f"{rotation_days} days")
        report.add_field("today", "Today", today)
        report.add_table(
            "keys", "Gateway API keys",
            [Column("gateway", "GATEWAY"), Column("enabled", "ENABLED"), Column("key", "KEY"), Column("source", "SOURCE"),
             Column("createdAt", "CREATED"), Column("ageDays", "AGE (DAYS)"), Column("rotationDueOn", "DUE ON"),
             Column("daysLeft", "DAYS LEFT"), Column("status", "STATUS")],
            rows,
            empty="(no gateway API key is configured; the enabled gateways need none)",
        )
        for message in problems:
            report.problem(message)
        return report
