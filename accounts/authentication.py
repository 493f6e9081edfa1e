"""`Authorization: Bearer <token>` for merchant API keys (fp_test_…, fp_live_…) and
personal staff tokens (fp_staff_…). Missing or invalid credentials answer 401."""

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts.models import ApiKey, StaffToken
from accounts.services import (
    API_KEY_PREFIXES,
    STAFF_TOKEN_PREFIX,
    credential_digest,
)
from core.api.authentication import MerchantPrincipal
from core.lookups import UniqueLookup

LAST_USED_RESOLUTION = timedelta(minutes=1)  # at most one write per credential per minute
# Every merchant API request starts here: its SQL is built once (core.lookups).
API_KEY_BY_DIGEST = UniqueLookup(ApiKey, by=("key_hash",), related="merchant")


def _touch(model, credential) -> None:
    """Record that the credential was used, at a resolution of LAST_USED_RESOLUTION. The row
    just read says when it was last recorded, so the requests of the same minute send no
    write at all; the conditional UPDATE keeps concurrent requests to one write per minute."""
    now = timezone.now()
    recent = now - LAST_USED_RESOLUTION
    if credential.last_used_at is not None and credential.last_used_at > recent:
        return
    model.objects.filter(pk=credential.pk).exclude(last_used_at__gt=recent).update(last_used_at=now)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <API key or staff token>'.")
        secret = parts[1]
        digest = credential_digest(secret)
        if secret.startswith(tuple(API_KEY_PREFIXES.values())):
            key = API_KEY_BY_DIGEST.get(digest)
            if key is None or not key.is_active or not key.merchant.is_active:
                raise exceptions.AuthenticationFailed("Invalid API key provided.")
            _touch(ApiKey, key)
            return MerchantPrincipal(merchant=key.merchant, api_key=key, livemode=key.livemode), key
        if secret.startswith(STAFF_TOKEN_PREFIX):
            token = StaffToken.objects.select_related("user").filter(key_hash=digest).first()
            if token is None or not token.is_active or not token.user.is_active:
                raise exceptions.AuthenticationFailed("Invalid staff token provided.")
            _touch(StaffToken, token)
            return token.user, token
        raise exceptions.AuthenticationFailed("Invalid API key provided.")

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="flowpay"'
