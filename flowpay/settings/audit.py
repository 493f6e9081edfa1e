"""The append-only audit log."""

from flowpay.settings.base import env

# Audit entries are sealed into the hash chain once this old (longer than any transaction).
FLOWPAY_AUDIT_SEAL_MIN_AGE_SECONDS = env.int("FLOWPAY_AUDIT_SEAL_MIN_AGE_SECONDS", default=300)
