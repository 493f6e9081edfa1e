"""Staff passwords: their history (for accounts.passwords.PasswordHistoryValidator) and the
audit entry of a change.

Rule: only the hash Django made is kept; the history is written by Django's own hook
(`password_changed`, called by User.save() after set_password) so every way of setting a
password records it: forms, commands, services."""

from django.db import transaction

from accounts.models import PasswordHistoryEntry
from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor

# Hashes kept per user: more than any validator asks for, fewer than would grow forever.
HISTORY_KEPT = 12


@transaction.atomic
def password_history_record(*, user) -> None:
    if not user.password or not user.has_usable_password():
        return
    PasswordHistoryEntry.objects.create(user_id=user.pk, password=user.password)
    stale = PasswordHistoryEntry.objects.filter(user_id=user.pk).values_list("pk", flat=True)[HISTORY_KEPT:]
    PasswordHistoryEntry.objects.filter(pk__in=list(stale)).delete()


def staff_password_changed(*, user, actor: Actor, by_self: bool) -> None:
    """Audit a password change (the change itself was made by Django's password forms, which
    validated it). Call it in the transaction that saved the new password."""
    audit_record(
        actor=actor, action=AuditAction.STAFF_USER_PASSWORD_CHANGE, target=user,
        details={"username": user.get_username(), "changed_by": "self" if by_self else "admin"},
    )
