"""Staff sign-in: username, password and the second factor in one step, under the lockout.

    staff_sign_in(request=..., username=..., password=..., code=...) -> SignInResult

1. A lockout whose time is up is released first (audited), then django-axes refuses a locked
   username before its password is checked: locked means refused, right password or not.
2. A wrong password counts one failure (axes, through Django's user_login_failed).
3. With the right password, a user with an authenticator must give a valid code (or an
   unused recovery code); a missing, wrong or replayed code counts one failure too (reported
   to axes the same way). The tenth failure locks the username.
4. A user without an authenticator is signed in with the password only, for enrolment: the
   back office lets that session do nothing but enrol (backoffice.staff.middleware).

Every attempt is audited (PCI DSS 10.2.1.4, 10.2.2): who (the username, when it exists),
when, from where, the result and, for a failure, the reason; never the password or the code.
The page shows one message for every failure that is not a lockout, so it never tells which
of username, password or code was wrong.

This service works on the request: Django's authenticate() and login(), axes and django-otp
keep their state on it and on its session.
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model, login
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.utils import timezone
from django_otp import login as otp_login

from accounts.models import StaffLockout
from accounts.services.lockout import staff_lockout_open, staff_lockouts_release_expired
from accounts.services.mfa import staff_second_factor_check, user_has_second_factor
from audit.actions import AuditAction
from audit.models import AuditEntry
from audit.services import audit_record
from core.actors import Actor, ActorType
from core.network import client_ip

# Session keys: when the session last passed the second factor (epoch seconds), and until
# when a password-only session may enrol an authenticator.
SESSION_MFA_AT = "flowpay_mfa_at"
SESSION_ENROL_UNTIL = "flowpay_enrol_until"
UNKNOWN_USER = "unknown-user"  # the actor of a sign-in with a username nobody has


@dataclass(frozen=True)
class SignInResult:
    outcome: str  # signed_in, enrolment_required, refused, locked
    reason: str = ""  # of a refusal (audited): unknown_user, bad_password, not_staff, otp_missing, ...
    locked_until: datetime | None = None

    @property
    def signed_in(self) -> bool:
        return self.outcome in ("signed_in", "enrolment_required")


def _actor(user, ip: str | None) -> Actor:
    """The user who signs in, or UNKNOWN_USER: what was typed as a username that nobody has
    is never recorded (it is often a password typed in the wrong field)."""
    if user is not None:
        return Actor(type=ActorType.STAFF, id=user.get_username(), user_id=user.pk, ip=ip)
    return Actor(type=ActorType.STAFF, id=UNKNOWN_USER, ip=ip)


def _audit(*, actor: Actor, user, result: str, details: dict) -> None:
    audit_record(actor=actor, action=AuditAction.STAFF_USER_SIGN_IN, target=user, result=result, details=details)


def _existing_user(username: str):
    return get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first() if username else None


def _refused(request, *, username: str, user, ip: str | None, reason: str, counts: bool) -> SignInResult:
    """A failed attempt: reported to axes when it counts toward the lockout, audited, and
    turned into a lockout when it was the last one allowed."""
    if counts:
        user_login_failed.send(sender=__name__, credentials={"username": username}, request=request)
    _audit(actor=_actor(user, ip), user=user, result=AuditEntry.Result.FAILURE, details={"reason": reason})
    if getattr(request, "axes_locked_out", False):
        return _locked(request, username=username, ip=ip)
    return SignInResult(outcome="refused", reason=reason)


def _locked(request, *, username: str, ip: str | None) -> SignInResult:
    opened = staff_lockout_open(username=username, failures=getattr(request, "axes_failures_since_start", None), ip=ip)
    return SignInResult(outcome="locked", reason="locked", locked_until=opened.lockout.locked_until)


def staff_sign_in(*, request, username: str, password: str, code: str) -> SignInResult:
    username = (username or "").strip()
    ip = client_ip(request)
    staff_lockouts_release_expired(username=username)
    user = authenticate(request, username=username, password=password)
    if user is None:
        existing = _existing_user(username)
        if getattr(request, "axes_locked_out", False) and getattr(request, "axes_failures_since_start", None) is None:
            # refused by axes before the password was checked: the username is locked
            _audit(actor=_actor(existing, ip), user=existing, result=AuditEntry.Result.DENIED, details={"reason": "locked"})
            return _locked(request, username=username, ip=ip)
        # authenticate() already reported the failure to axes
        return _refused(request, username=username, user=existing, ip=ip,
                        reason="bad_password" if existing is not None else "unknown_user", counts=False)
    if not user.is_staff:
        return _refused(request, username=username, user=user, ip=ip, reason="not_staff", counts=False)

    if not user_has_second_factor(user):
        with transaction.atomic():
            login(request, user)
            request.session[SESSION_ENROL_UNTIL] = int(timezone.now().timestamp()) + _enrolment_seconds()
            _audit(actor=_actor(user, ip), user=user, result=AuditEntry.Result.SUCCESS,
                   details={"factor": "password", "mfa": "enrolment_required"})
        return SignInResult(outcome="enrolment_required")

    check = staff_second_factor_check(user=user, code=code)
    if not check.ok:
        return _refused(request, username=username, user=user, ip=ip, reason=check.failure, counts=True)
    with transaction.atomic():
        login(request, user)
        otp_login(request, check.device)
        request.session[SESSION_MFA_AT] = int(timezone.now().timestamp())
        actor = _actor(user, ip)
        _audit(actor=actor, user=user, result=AuditEntry.Result.SUCCESS,
               details={"factor": "recovery_code" if check.used_recovery_code else "totp"})
        if check.used_recovery_code:
            audit_record(actor=actor, action=AuditAction.STAFF_USER_RECOVERY_CODE_USED, target=user,
                         details={"recovery_codes_left": check.recovery_codes_left})
    return SignInResult(outcome="signed_in")


def staff_sign_out(*, request) -> None:
    """Audit a sign-out (the caller then ends the session)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        audit_record(actor=Actor.staff(user=user, ip=client_ip(request)), action=AuditAction.STAFF_USER_SIGN_OUT, target=user,
                     details={"verified": bool(getattr(user, "is_verified", lambda: False)())})


def staff_mfa_freshly_verified(*, request) -> bool:
    """Whether this session passed its second factor within FLOWPAY_STAFF_TOKEN_MFA_MAX_AGE_SECONDS."""
    verified_at = request.session.get(SESSION_MFA_AT)
    if not verified_at or not request.user.is_verified():
        return False
    return timezone.now().timestamp() - verified_at <= settings.FLOWPAY_STAFF_TOKEN_MFA_MAX_AGE_SECONDS


def staff_mfa_step_up(*, request, code: str) -> bool:
    """Check a fresh code for a signed-in, verified session (before a sensitive action such as
    issuing a token). A failure counts toward the lockout like a sign-in's."""
    user = request.user
    check = staff_second_factor_check(user=user, code=code)
    ip = client_ip(request)
    if not check.ok:
        _refused(request, username=user.get_username(), user=user, ip=ip, reason=check.failure, counts=True)
        return False
    request.session[SESSION_MFA_AT] = int(timezone.now().timestamp())
    actor = _actor(user, ip)
    _audit(actor=actor, user=user, result=AuditEntry.Result.SUCCESS,
           details={"factor": "recovery_code" if check.used_recovery_code else "totp", "step_up": True})
    if check.used_recovery_code:
        audit_record(actor=actor, action=AuditAction.STAFF_USER_RECOVERY_CODE_USED, target=user,
                     details={"recovery_codes_left": check.recovery_codes_left})
    return True


def _enrolment_seconds() -> int:
    return settings.FLOWPAY_STAFF_ENROLMENT_SECONDS


def staff_lockout_for(username: str) -> StaffLockout | None:
    return StaffLockout.objects.filter(username=username[:150], released_at__isnull=True).first()
