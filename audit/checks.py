"""Start-up system checks of the audit log's protections (registered by AuditConfig.ready).

- audit.E001: production (DEBUG off) without FLOWPAY_AUDIT_CHAIN_KEYS: entries would be
  signed with the public development key, which anyone can recompute (audit.W001 with DEBUG).
- audit.E002 / E003: a key that is not usable, or an active key id that is not listed.
- audit.W002: the application's database role could bypass the append-only triggers: it is
  a superuser, owns (or may act as the owner of) an audit table, or may set
  session_replication_role. The application should run as a role that owns no table
  (docs/operations.md, "Database roles"; deploy/sql/roles.sql).
"""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError, connection

from audit.chain import DEV_KEY_ID, decode_secret

AUDIT_TABLES = ("audit_entry", "audit_seal")
KEY_ID_MAX_LENGTH = 64  # AuditEntry.key_id, AuditSeal.key_id


@register(Tags.security)
def check_audit_chain_keys(app_configs, **kwargs):
    keys = settings.FLOWPAY_AUDIT_CHAIN_KEYS
    active = settings.FLOWPAY_AUDIT_CHAIN_KEY_ID
    if not keys:
        if settings.DEBUG:
            return [Warning("FLOWPAY_AUDIT_CHAIN_KEYS is not set: the audit log is signed with the public development key",
                            hint="fine for development; production must set its own keys", id="audit.W001")]
        return [Error(
            "FLOWPAY_AUDIT_CHAIN_KEYS is not set: the audit log would be signed with the public development key",
            hint="set FLOWPAY_AUDIT_CHAIN_KEYS=<key id>:<base64 secret of 32+ random bytes>, e.g. from "
                 "python -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())'",
            id="audit.E001",
        )]
    errors = []
    for key_id, secret in keys.items():
        problem = _key_problem(key_id, secret)
        if problem:
            errors.append(Error(f"FLOWPAY_AUDIT_CHAIN_KEYS: key {key_id!r}: {problem}", id="audit.E002"))
    if active and active not in keys:
        errors.append(Error(f"FLOWPAY_AUDIT_CHAIN_KEY_ID {active!r} is not one of FLOWPAY_AUDIT_CHAIN_KEYS",
                            hint="list the active key with its secret, and keep the retired ones listed", id="audit.E003"))
    return errors


def _key_problem(key_id: str, secret: str) -> str | None:
    if key_id == DEV_KEY_ID:
        return f"the id {DEV_KEY_ID!r} is reserved for the development key"
    if len(key_id) > KEY_ID_MAX_LENGTH:
        return f"the id is longer than {KEY_ID_MAX_LENGTH} characters"
    try:
        decode_secret(secret)
    except ValueError as exc:
        return str(exc)
    return None


_ROLE_SQL = """
SELECT current_user,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
       ARRAY(SELECT c.relname FROM pg_class c
             WHERE c.relname = ANY(%s) AND c.relkind = 'r' AND pg_table_is_visible(c.oid)
               AND pg_has_role(current_user, c.relowner, 'MEMBER'))
"""


@register()
def check_audit_database_role(app_configs, **kwargs):
    if connection.vendor != "postgresql":
        return []
    try:
        with connection.cursor() as cursor:
            cursor.execute(_ROLE_SQL, [list(AUDIT_TABLES)])
            role, superuser, owned = cursor.fetchone()
            can_skip_triggers = False
            if connection.pg_version >= 150000:  # GRANT SET ON PARAMETER exists since PostgreSQL 15
                cursor.execute("SELECT has_parameter_privilege('session_replication_role', 'SET')")
                can_skip_triggers = cursor.fetchone()[0]
    except DatabaseError:  # no database yet, or it does not answer: other checks and /readyz say so
        return []
    reasons = []
    if superuser:
        reasons.append("is a superuser")
    if owned:
        reasons.append(f"owns (or is a member of the owner of) {', '.join(sorted(owned))}")
    if can_skip_triggers and not superuser:
        reasons.append("may set session_replication_role")
    if not reasons:
        return []
    return [Warning(
        f"the database role {role!r} {' and '.join(reasons)}: it can disable the audit log's append-only triggers",
        hint="run migrations as an owner role and the application as a role that owns no table, with SELECT "
             "and INSERT only on the audit tables (docs/operations.md, Database roles; deploy/sql/roles.sql). "
             "Expected while migrate runs as the owner role.",
        id="audit.W002",
    )]
