"""The append-only audit log: sealing and the keys of its MACs (audit.chain, audit.sealing)."""

from flowpay.settings.base import env

# Audit entries are sealed as soon as their ids are final (audit.sealing); a value holds
# them back at least this long.
FLOWPAY_AUDIT_SEAL_MIN_AGE_SECONDS = env.int("FLOWPAY_AUDIT_SEAL_MIN_AGE_SECONDS", default=0)

# Keys of the audit chain's MACs, never stored in the database: "id:base64secret,..." (32+
# bytes each). New entries and seals use FLOWPAY_AUDIT_CHAIN_KEY_ID (default: the first
# listed); retired keys stay listed to verify what they made. Unset: a public development
# key, refused in production by a system check (audit.checks).
FLOWPAY_AUDIT_CHAIN_KEYS = {
    key_id.strip(): secret.strip()
    for key_id, _, secret in (item.partition(":") for item in env.list("FLOWPAY_AUDIT_CHAIN_KEYS", default=[]))
    if key_id.strip()
}
FLOWPAY_AUDIT_CHAIN_KEY_ID = env.str("FLOWPAY_AUDIT_CHAIN_KEY_ID", default="")
