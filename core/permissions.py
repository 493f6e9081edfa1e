"""Staff roles are Django groups of these names (created by a data migration)."""

FINANCE = "finance"
SUPPORT = "support"
OPERATOR = "operator"
AUDITOR = "auditor"
ADMIN = "admin"

STAFF_ROLES = (FINANCE, SUPPORT, OPERATOR, AUDITOR, ADMIN)


def user_roles(user) -> set[str]:
    if user is None or not getattr(user, "is_active", False):
        return set()
    roles = set(user.groups.filter(name__in=STAFF_ROLES).values_list("name", flat=True))
    if user.is_superuser:
        roles.add(ADMIN)
    return roles
