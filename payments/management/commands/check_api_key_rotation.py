"""Runbook "Payment Gateway Issues": payment gateway API keys rotation status (node
scripts/check-api-key-rotation.js).

A key is due for rotation once it is FLOWPAY_KEY_ROTATION_DAYS (90) days old; its creation
date comes with the key (STRIPE_API_KEY_CREATED_AT, PAYPAL_CLIENT_SECRET_CREATED_AT, or
"created_at" in FLOWPAY_SECRETS_FILE). Keys are shown as their last 4 characters only."""

import datetime as dt

from django.conf import settings
from django.utils import timezone

from flowpay.cli import Column, Report, RunbookCommand
from payments.gateways.credentials import ROTATION_DAYS, gateway_credentials, mask_secret
from payments.gateways.registry import GATEWAY_CLASSES, enabled_gateway_names


class Command(RunbookCommand):
    help = (
        "Age and rotation status of each configured gateway API key (only its last 4 characters are shown). "
        "Exits 1 when a key is due for rotation or has no creation date."
    )

    def build_report(self, **options) -> Report:
        rotation_days = int(getattr(settings, "FLOWPAY_KEY_ROTATION_DAYS", ROTATION_DAYS))
        today = timezone.localdate()
        enabled = enabled_gateway_names()
        rows, problems = [], []
        for name in dict.fromkeys([*enabled, *GATEWAY_CLASSES]):
            creds = gateway_credentials(name)
            secret = creds.primary_secret
            if not secret and creds.is_configured:
                continue  # a gateway that needs no key (the simulator)
            if not secret and name not in enabled:
                continue  # not enabled and not configured: nothing to rotate
            age = creds.age_days(today)
            due_on = creds.created_at + dt.timedelta(days=rotation_days) if creds.created_at else None
            if not secret:
                status = "not configured"
            elif age is None:
                status = "UNKNOWN DATE"
                problems.append(f"{name}: key {mask_secret(secret)} has no creation date; rotation status unknown")
            elif age >= rotation_days:
                status = "DUE"
                problems.append(f"{name}: key {mask_secret(secret)} is {age} days old (rotation due after {rotation_days})")
            else:
                status = "ok"
            rows.append({
                "gateway": name,
                "enabled": name in enabled,
                "key": mask_secret(secret) if secret else None,
                "source": creds.source if secret else None,
                "createdAt": creds.created_at,
                "ageDays": age,
                "rotationDueOn": due_on,
                "daysLeft": (due_on - today).days if due_on else None,
                "status": status,
            })

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
