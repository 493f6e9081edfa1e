"""Lockouts of staff usernames. django-axes counts the failures (wrong passwords, and wrong
or missing codes, which staff_sign_in reports to it) and refuses a locked username before
its password is checked; a StaffLockout row is the lockout as staff see it: opened when axes
locks, released by an admin (with a reason) or when its time is up, each step audited.

Rule: axes' counters and the open StaffLockout move together: releasing a lockout also
clears axes' failures for the username, so the next sign-in starts from zero."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import StaffLockout
from audit.actions import AuditAction
from audit.models import AuditEntry
from audit.services import audit_record
from core.actors import Actor, ActorType
from core.errors import InvalidRequest, PermissionDenied
from core.permissions import Capability, roles_can

EXPIRY_ACTOR = Actor.system("lockout expiry")


@dataclass(frozen=True)
class LockoutOpened:
    lockout: StaffLockout
    created: bool  # False: the username was locked already


def _signin_actor(username: str, ip: str | None) -> Actor:
    """The locked user; a username nobody has is not recorded (it may be a mistyped password)."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        return Actor(type=ActorType.STAFF, id="unknown-user", ip=ip)
    return Actor(type=ActorType.STAFF, id=user.get_username(), user_id=user.pk, ip=ip)


def staff_lockout_open(*, username: str, failures: int | None, ip: str | None) -> LockoutOpened:
    """Record that axes has locked `username` (idempotent: an open lockout is returned as is)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            lockout = StaffLockout.objects.create(
                username=username[:150], locked_at=now,
                locked_until=now + timedelta(minutes=settings.FLOWPAY_STAFF_LOCKOUT_MINUTES),
                failures=failures or settings.FLOWPAY_STAFF_LOCKOUT_FAILURES, origin_ip=ip,
            )
            audit_record(
                actor=_signin_actor(username, ip), action=AuditAction.STAFF_USER_LOCKED, target=lockout,
                result=AuditEntry.Result.DENIED,
                details={"reason": "too_many_failures", "failures": lockout.failures, "locked_until": lockout.locked_until.isoformat()},
            )
    except IntegrityError:  # one open lockout per username: someone else's attempt opened it
        return LockoutOpened(lockout=StaffLockout.objects.get(username=username[:150], released_at__isnull=True), created=False)
    return LockoutOpened(lockout=lockout, created=True)


def _release(lockout: StaffLockout, *, reason: str, actor: Actor, now: datetime) -> None:
    lockout.released_at = now
    lockout.released_by = actor.id
    lockout.release_reason = reason[:500]
    lockout.save(update_fields=["released_at", "released_by", "release_reason"])
    AxesProxyHandler.reset_attempts(username=lockout.username)
    audit_record(
        actor=actor, action=AuditAction.STAFF_USER_UNLOCKED, target=lockout,
        details={"lockout": lockout.pk, "reason": lockout.release_reason, "locked_at": lockout.locked_at.isoformat()},
    )


@transaction.atomic
def staff_lockout_release(*, lockout_id: int, reason: str, actor: Actor) -> StaffLockout:
    """An admin unlocks a username before its time is up. A reason is required; releasing a
    released lockout changes nothing."""
    if not roles_can(actor.roles, Capability.STAFF_SECURITY):
        raise PermissionDenied("Only admins may unlock a staff user.")
    reason = reason.strip()
    if not reason:
        raise InvalidRequest("Say why the user is unlocked.", param="reason")
    lockout = StaffLockout.objects.select_for_update().get(pk=lockout_id)
    if lockout.is_open:
        _release(lockout, reason=reason, actor=actor, now=timezone.now())
    return lockout


def staff_lockouts_release_expired(*, username: str | None = None) -> int:
    """Release (audited, by the system) the lockouts whose time is up: all of them (beat), or
    the username's (before its next sign-in, so the log shows the release first)."""
    now = timezone.now()
    released = 0
    with transaction.atomic():
        due = StaffLockout.objects.select_for_update(skip_locked=True).filter(released_at__isnull=True, locked_until__lte=now)
        if username is not None:
            due = due.filter(username=username[:150])
        for lockout in due:
            _release(lockout, reason="lockout period over", actor=EXPIRY_ACTOR, now=now)
            released += 1
    return released
