"""Merchants, API keys and staff tokens.

Rule: a secret is returned once by the function that creates it and is never stored or
logged in clear; only its SHA-256 digest and a short prefix are kept.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from accounts.models import STAFF_TOKEN_HARD_MAX_LIFETIME, ApiKey, Merchant, StaffToken
from accounts.services.staff_users import StaffPrivileges, staff_privileges_changed
from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import InvalidRequest
from core.permissions import STAFF_ROLES

API_KEY_PREFIXES = {"test": "fp_test_", "live": "fp_live_"}
STAFF_TOKEN_PREFIX = "fp_staff_"
_CLEAR_PREFIX_EXTRA = 6  # characters of the random part kept in clear to recognise a key


def credential_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32).replace("-", "a").replace("_", "b")


@dataclass(frozen=True)
class IssuedSecret:
    record: ApiKey | StaffToken
    secret: str  # shown once


@transaction.atomic
def merchant_create(*, name: str, actor: Actor) -> Merchant:
    name = name.strip()
    if not name:
        raise InvalidRequest("A merchant needs a name.", param="name")
    merchant = Merchant.objects.create(name=name[:200])
    audit_record(actor=actor, action=AuditAction.MERCHANT_CREATE, target=merchant, merchant_id=merchant.pk, details={"name": merchant.name})
    return merchant


@transaction.atomic
def api_key_create(*, merchant: Merchant, environment: str = "test", label: str = "", actor: Actor) -> IssuedSecret:
    if environment not in API_KEY_PREFIXES:
        raise InvalidRequest("environment must be 'test' or 'live'.", param="environment")
    secret = _new_secret(API_KEY_PREFIXES[environment])
    key = ApiKey.objects.create(
        merchant=merchant,
        environment=environment,
        label=label,
        prefix=secret[: len(API_KEY_PREFIXES[environment]) + _CLEAR_PREFIX_EXTRA],
        key_hash=credential_digest(secret),
    )
    audit_record(actor=actor, action=AuditAction.API_KEY_CREATE, target=key, merchant_id=merchant.pk, details={"prefix": key.prefix})
    return IssuedSecret(record=key, secret=secret)


def api_key_revoke(*, api_key_id: int, actor: Actor) -> ApiKey:
    return _credential_revoke(model=ApiKey, pk=api_key_id, action=AuditAction.API_KEY_REVOKE, actor=actor)


def staff_token_lifetime(expires_in: timedelta | None) -> timedelta:
    """The lifetime of a new staff token: `expires_in`, or FLOWPAY_STAFF_TOKEN_DEFAULT_HOURS;
    more than FLOWPAY_STAFF_TOKEN_MAX_DAYS (never more than 30 days) is refused."""
    lifetime = expires_in if expires_in is not None else timedelta(hours=settings.FLOWPAY_STAFF_TOKEN_DEFAULT_HOURS)
    longest = min(timedelta(days=settings.FLOWPAY_STAFF_TOKEN_MAX_DAYS), STAFF_TOKEN_HARD_MAX_LIFETIME)
    if lifetime <= timedelta(0):
        raise InvalidRequest("A staff token's lifetime must be positive.", param="expires_in")
    if lifetime > longest:
        raise InvalidRequest(f"A staff token may live at most {longest.days} days.", param="expires_in")
    return lifetime


def _staff_token_new(*, user, label: str, lifetime: timedelta) -> tuple[StaffToken, str]:
    secret = _new_secret(STAFF_TOKEN_PREFIX)
    now = timezone.now()
    token = StaffToken.objects.create(
        user=user, label=label[:100], prefix=secret[: len(STAFF_TOKEN_PREFIX) + _CLEAR_PREFIX_EXTRA],
        key_hash=credential_digest(secret), expires_at=now + lifetime,
    )
    return token, secret


@transaction.atomic
def staff_token_create(*, username: str, role: str, label: str = "", expires_in: timedelta | None = None,
                       actor: Actor) -> IssuedSecret:
    """Create the staff user if needed, put them in the role's group, issue a token (for
    bootstrap and automation: create_staff_token, seed_demo). People issue their own tokens
    after their second factor, with staff_token_issue."""
    if role not in STAFF_ROLES:
        raise InvalidRequest(f"Unknown role {role!r}; roles are: {', '.join(STAFF_ROLES)}.", param="role")
    username = username.strip()
    if not username:
        raise InvalidRequest("A staff token needs a username.", param="username")
    lifetime = staff_token_lifetime(expires_in)
    user, created = get_user_model().objects.get_or_create(username=username, defaults={"is_staff": True})
    before = StaffPrivileges.of(user) if not created else StaffPrivileges(
        roles=frozenset(), is_staff=False, is_superuser=False, is_active=False,
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)
    staff_privileges_changed(user=user, before=before, actor=actor)
    token, secret = _staff_token_new(user=user, label=label or role, lifetime=lifetime)
    audit_record(
        actor=actor, action=AuditAction.STAFF_TOKEN_CREATE, target=token,
        details={"username": username, "role": role, "prefix": token.prefix, "user_created": created,
                 "expires_at": token.expires_at.isoformat(), "issued_by": "command"},
    )
    return IssuedSecret(record=token, secret=secret)


@transaction.atomic
def staff_token_issue(*, user, label: str, expires_in: timedelta | None, actor: Actor) -> IssuedSecret:
    """A personal token for a signed-in staff user who has just passed their second factor
    (the caller checks that: backoffice's Staff tokens page). It acts with the user's roles."""
    if not user.is_active or not user.is_staff:
        raise InvalidRequest("Only active staff users hold staff tokens.")
    lifetime = staff_token_lifetime(expires_in)
    token, secret = _staff_token_new(user=user, label=label.strip() or "personal", lifetime=lifetime)
    audit_record(
        actor=actor, action=AuditAction.STAFF_TOKEN_CREATE, target=token,
        details={"username": user.get_username(), "prefix": token.prefix, "expires_at": token.expires_at.isoformat(),
                 "issued_by": "staff_page"},
    )
    return IssuedSecret(record=token, secret=secret)


def staff_token_revoke(*, staff_token_id: int, actor: Actor) -> StaffToken:
    return _credential_revoke(model=StaffToken, pk=staff_token_id, action=AuditAction.STAFF_TOKEN_REVOKE, actor=actor)


@transaction.atomic
def _credential_revoke(*, model: type[ApiKey] | type[StaffToken], pk: int, action: AuditAction, actor: Actor):
    """Revoking twice is a no-op: the first revocation time and audit entry stand."""
    credential = model.objects.select_for_update().get(pk=pk)
    if credential.revoked_at is None:
        credential.revoked_at = timezone.now()
        credential.save(update_fields=["revoked_at", "updated_at"])
        audit_record(actor=actor, action=action, target=credential, details={"prefix": credential.prefix})
    return credential
