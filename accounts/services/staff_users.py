"""Staff users' roles: who holds which staff role (core.permissions) and the audit entry of a
change (PCI DSS 10.2.1.5: changes to identification and authentication credentials and
privileges)."""

from dataclasses import dataclass

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor
from core.permissions import STAFF_ROLES


@dataclass(frozen=True)
class StaffPrivileges:
    roles: frozenset[str]
    is_staff: bool
    is_superuser: bool
    is_active: bool

    @classmethod
    def of(cls, user) -> "StaffPrivileges":
        roles = frozenset(user.groups.filter(name__in=STAFF_ROLES).values_list("name", flat=True)) if user.pk else frozenset()
        return cls(roles=roles, is_staff=user.is_staff, is_superuser=user.is_superuser, is_active=user.is_active)


def staff_privileges_changed(*, user, before: StaffPrivileges, actor: Actor) -> bool:
    """Audit what changed in a user's roles and flags since `before` (nothing when nothing
    did). Call it in the transaction that saved the change."""
    after = StaffPrivileges.of(user)
    if after == before:
        return False
    audit_record(
        actor=actor, action=AuditAction.STAFF_USER_ROLES_CHANGE, target=user,
        details={
            "username": user.get_username(),
            "roles_added": sorted(after.roles - before.roles), "roles_removed": sorted(before.roles - after.roles),
            **{flag: {"from": getattr(before, flag), "to": getattr(after, flag)}
               for flag in ("is_staff", "is_superuser", "is_active") if getattr(before, flag) != getattr(after, flag)},
        },
    )
    return True
