"""The services of accounts, by topic: credentials (merchants, API keys, staff tokens),
staff sign-in (signin), the second factor (mfa), lockouts (lockout), passwords and roles
(staff_users). The credential services are re-exported here, where callers always found them."""

from accounts.services.credentials import (
    API_KEY_PREFIXES,
    STAFF_TOKEN_PREFIX,
    IssuedSecret,
    api_key_create,
    api_key_revoke,
    credential_digest,
    merchant_create,
    staff_token_create,
    staff_token_issue,
    staff_token_lifetime,
    staff_token_revoke,
)

__all__ = [
    "API_KEY_PREFIXES",
    "STAFF_TOKEN_PREFIX",
    "IssuedSecret",
    "api_key_create",
    "api_key_revoke",
    "credential_digest",
    "merchant_create",
    "staff_token_create",
    "staff_token_issue",
    "staff_token_lifetime",
    "staff_token_revoke",
]
