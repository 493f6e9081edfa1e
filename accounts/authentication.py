"""`Authorization: Bearer <token>` for merchant API keys (fp_test_…, fp_live_…) and
personal staff tokens (fp_staff_…). Missing or invalid credentials answer 401; an expired or
revoked staff token says so (staff_token_expired, staff_token_revoked) and is audited."""

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts.models import ApiKey, StaffToken
from accounts.services import (
    API_KEY_PREFIXES,
    STAFF_TOKEN_PREFIX,
    credential_digest,
)
from audit.actions import AuditAction
from audit.models import AuditEntry
from audit.services import audit_record
from core.actors import Actor, ActorType
from core.api.authentication import MerchantPrincipal
from core.errors import ErrorCode
from core.lookups import UniqueLookup
from core.network import client_ip

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


def _touch_staff_token(token: StaffToken, *, now, ip: str | None) -> None:
    """Record when and from where the token was used: a write only when the loaded row shows
    the last one is over LAST_USED_RESOLUTION old or from another address (most requests of
    a busy token cost no write at all)."""
    if token.last_used_at is not None and token.last_used_at > now - LAST_USED_RESOLUTION and token.last_used_ip == ip:
        return
    StaffToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=ip)


def _refused(request, token: StaffToken, *, reason: str) -> None:
    """An attempt with a token that was valid once: audited (an unknown token names nobody
    and is only answered 401)."""
    audit_record(
        actor=Actor(type=ActorType.STAFF, id=token.user.get_username(), user_id=token.user_id, ip=client_ip(request)),
        action=AuditAction.STAFF_TOKEN_REFUSED, target=token, result=AuditEntry.Result.DENIED,
        details={"reason": reason, "prefix": token.prefix, "path": request.path[:200]},
    )


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
            return self._staff(request, digest)
        raise exceptions.AuthenticationFailed("Invalid API key provided.")

    def _staff(self, request, digest: str):
        token = StaffToken.objects.select_related("user").filter(key_hash=digest).first()
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid staff token provided.")
        now = timezone.now()
        if not token.is_active:
            _refused(request, token, reason="revoked")
            raise exceptions.AuthenticationFailed(
                f"This staff token ({token.prefix}…) was revoked. Issue a new one from the Staff tokens page.",
                code=ErrorCode.STAFF_TOKEN_REVOKED,
            )
        if token.is_expired(now):
            _refused(request, token, reason="expired")
            raise exceptions.AuthenticationFailed(
                f"This staff token ({token.prefix}…) expired at {token.expires_at:%Y-%m-%d %H:%M} UTC. "
                "Issue a new one from the Staff tokens page.",
                code=ErrorCode.STAFF_TOKEN_EXPIRED,
            )
        _touch_staff_token(token, now=now, ip=client_ip(request))
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="flowpay"'
