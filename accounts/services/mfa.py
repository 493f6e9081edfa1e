"""The second factor of staff users (django-otp): a TOTP device enrolled by its user, ten
single-use recovery codes, and the admin's reset.

Rules: a secret and the recovery codes are shown once, by the function that creates them,
and never logged or audited. A TOTP code is accepted once: django-otp keeps the last
accepted time step (`last_t`) and verifies under a row lock, so a code used once (or by two
requests at the same moment) is refused the second time. A reset removes every device, and
the user enrols again at the next sign-in."""

import time
from dataclasses import dataclass, field

import segno
from django.db import transaction
from django_otp import devices_for_user
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.errors import InvalidRequest, PermissionDenied
from core.permissions import Capability, roles_can

RECOVERY_CODE_COUNT = 10
TOTP_DEVICE_NAME = "authenticator"
RECOVERY_DEVICE_NAME = "recovery codes"


@dataclass(frozen=True)
class Enrolment:
    """A TOTP device waiting for its first code: its secret (base32) and otpauth:// URI, shown
    once on the enrolment page, and the QR code of that URI (SVG)."""

    device_id: int
    secret: str
    otpauth_uri: str
    qr_svg: str


@dataclass(frozen=True)
class Enrolled:
    device: TOTPDevice
    recovery_codes: list[str] = field(repr=False)  # shown once


@dataclass(frozen=True)
class SecondFactorCheck:
    device: TOTPDevice | StaticDevice | None  # the device that accepted the code
    failure: str = ""  # otp_missing, otp_invalid, otp_replayed, otp_throttled
    recovery_codes_left: int | None = None  # after a recovery code was used

    @property
    def ok(self) -> bool:
        return self.device is not None

    @property
    def used_recovery_code(self) -> bool:
        return isinstance(self.device, StaticDevice)


def totp_secret(device: TOTPDevice) -> str:
    """The device's key as authenticator apps take it (base32, no padding)."""
    from base64 import b32encode

    return b32encode(device.bin_key).decode("ascii").rstrip("=")


def user_has_second_factor(user) -> bool:
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).exists()


def _qr_svg(uri: str) -> str:
    return segno.make(uri, error="m").svg_inline(scale=5, dark="#111827", light="#ffffff")


@transaction.atomic
def staff_mfa_enrolment_begin(*, user) -> Enrolment:
    """A new unconfirmed TOTP device for a user without a confirmed one (any earlier
    unconfirmed device is dropped: its secret was shown already)."""
    if user_has_second_factor(user):
        raise InvalidRequest("This user has an authenticator already; an admin must reset it first.")
    TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).delete()
    device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    uri = device.config_url
    return Enrolment(device_id=device.pk, secret=totp_secret(device), otpauth_uri=uri, qr_svg=_qr_svg(uri))


@transaction.atomic
def staff_mfa_enrolment_confirm(*, user, device_id: int, code: str, actor: Actor) -> Enrolled:
    """The first code from the new device confirms it; the user's recovery codes are made
    anew. A wrong code changes nothing (the page asks again)."""
    device = TOTPDevice.objects.select_for_update().filter(pk=device_id, user_id=user.pk, confirmed=False).first()
    if device is None:
        raise InvalidRequest("This enrolment has expired: start again.", param="code")
    if not device.verify_token(_normalised(code)):
        raise InvalidRequest("That code is not the one the authenticator shows now.", param="code")
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = _recovery_codes_replace(user)
    audit_record(
        actor=actor, action=AuditAction.STAFF_USER_MFA_ENROL, target=user,
        details={"username": user.get_username(), "device": "totp", "recovery_codes_issued": len(codes)},
    )
    return Enrolled(device=device, recovery_codes=codes)


def _recovery_codes_replace(user) -> list[str]:
    StaticDevice.objects.filter(user_id=user.pk).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    codes = []
    while len(codes) < RECOVERY_CODE_COUNT:
        candidate = StaticToken.random_token()
        if candidate not in codes:
            codes.append(candidate)
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def _normalised(code: str) -> str:
    return "".join((code or "").split()).replace("-", "").lower()


def _was_replayed(device: TOTPDevice, code: str) -> bool:
    """Whether `code` is the device's code for a time step already used (django-otp refuses
    it; this only names the reason for the audit log)."""
    try:
        token = int(code)
    except ValueError:
        return False
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return totp.verify(token, device.tolerance) and totp.t() <= device.last_t


def staff_second_factor_check(*, user, code: str) -> SecondFactorCheck:
    """Verify a code from the user's authenticator (digits) or one of their recovery codes.
    Each device is verified under its row lock, so a code is never accepted twice."""
    code = _normalised(code)
    if not code:
        return SecondFactorCheck(device=None, failure="otp_missing")
    with transaction.atomic():
        if code.isdigit() and len(code) == 6:  # an authenticator's code; recovery codes are 8 characters
            for device in TOTPDevice.objects.select_for_update().filter(user_id=user.pk, confirmed=True):
                if not device.verify_is_allowed()[0]:
                    return SecondFactorCheck(device=None, failure="otp_throttled")
                if device.verify_token(code):
                    return SecondFactorCheck(device=device)
                return SecondFactorCheck(device=None, failure="otp_replayed" if _was_replayed(device, code) else "otp_invalid")
            return SecondFactorCheck(device=None, failure="otp_invalid")
        for device in StaticDevice.objects.select_for_update().filter(user_id=user.pk, confirmed=True):
            if device.verify_token(code):
                return SecondFactorCheck(device=device, recovery_codes_left=device.token_set.count())
        return SecondFactorCheck(device=None, failure="otp_invalid")


@transaction.atomic
def staff_mfa_reset(*, user_id: int, reason: str, actor: Actor) -> int:
    """An admin removes a user's authenticator and recovery codes (lost phone, suspected
    compromise): the user must enrol again at the next sign-in. Needs a reason; nobody resets
    their own. Returns the number of devices removed."""
    from django.contrib.auth import get_user_model

    if not roles_can(actor.roles, Capability.STAFF_SECURITY):
        raise PermissionDenied("Only admins may reset a staff user's second factor.")
    reason = reason.strip()
    if not reason:
        raise InvalidRequest("Say why the second factor is reset.", param="reason")
    user = get_user_model().objects.select_for_update().get(pk=user_id)
    if actor.user_id == user.pk:
        raise PermissionDenied("Ask another admin to reset your own second factor.")
    removed = 0
    for device in list(devices_for_user(user, confirmed=None)):
        device.delete()
        removed += 1
    audit_record(
        actor=actor, action=AuditAction.STAFF_USER_MFA_RESET, target=user,
        details={"username": user.get_username(), "reason": reason[:500], "devices_removed": removed},
    )
    return removed
