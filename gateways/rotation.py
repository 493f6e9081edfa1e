"""Rotation status of the gateway API keys (check_api_key_rotation, the PCI report).

A key is due once FLOWPAY_KEY_ROTATION_DAYS (90) days old; its creation date comes with the
key (STRIPE_API_KEY_CREATED_AT, PAYPAL_CLIENT_SECRET_CREATED_AT, or "created_at" in
FLOWPAY_SECRETS_FILE). Keys appear as their last 4 characters only."""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings

from gateways.credentials import gateway_credentials, mask_secret
from gateways.registry import GATEWAY_CLASSES, enabled_gateway_names


@dataclass
class KeyRotation:
    rotation_days: int
    rows: list[dict]
    problems: list[str]


def gateway_key_rotation(*, today: dt.date) -> KeyRotation:
    rotation_days = settings.FLOWPAY_KEY_ROTATION_DAYS
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
    return KeyRotation(rotation_days=rotation_days, rows=rows, problems=problems)
