"""The audit log's start-up system checks: the chain keys, and a database role that could
bypass the append-only triggers."""

import base64

import pytest

from audit.checks import check_audit_chain_keys, check_audit_database_role

GOOD = base64.b64encode(b"\x07" * 32).decode()


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_production_without_keys_is_an_error_development_a_warning(settings):
    settings.FLOWPAY_AUDIT_CHAIN_KEYS = {}
    settings.DEBUG = False
    assert ids(check_audit_chain_keys(None)) == ["audit.E001"]
    settings.DEBUG = True
    assert ids(check_audit_chain_keys(None)) == ["audit.W001"]


@pytest.mark.parametrize("keys, active, expected", [
    ({"k1": GOOD}, "", []),
    ({"k1": GOOD, "k0": GOOD}, "k0", []),
    ({"k1": "not base64!"}, "", ["audit.E002"]),
    ({"k1": base64.b64encode(b"short").decode()}, "", ["audit.E002"]),
    ({"dev": GOOD}, "", ["audit.E002"]),
    ({"k1": GOOD}, "k9", ["audit.E003"]),
])
def test_configured_keys_must_be_usable(settings, keys, active, expected):
    settings.DEBUG = False
    settings.FLOWPAY_AUDIT_CHAIN_KEYS = keys
    settings.FLOWPAY_AUDIT_CHAIN_KEY_ID = active
    assert ids(check_audit_chain_keys(None)) == expected


@pytest.mark.django_db
def test_a_superuser_application_role_is_warned_about():
    # The suite connects as a superuser (it must, to bypass triggers in tampering tests).
    [warning] = check_audit_database_role(None)
    assert warning.id == "audit.W002" and "is a superuser" in warning.msg and warning.is_serious() is False


@pytest.mark.django_db
def test_an_application_role_that_owns_no_table_passes_and_the_owner_is_warned_about():
    import uuid

    from django.db import connection

    app, owner = f"fp_app_{uuid.uuid4().hex[:8]}", f"fp_owner_{uuid.uuid4().hex[:8]}"
    # Roles created in the test's transaction: rolled back with it.
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {app}")
        cursor.execute(f"CREATE ROLE {owner}")
        # The tables are in FlowPay's schema: roles need USAGE on it (deploy/sql/roles.sql).
        cursor.execute(f"GRANT USAGE ON SCHEMA payments TO {app}, {owner}")
        cursor.execute(f"GRANT SELECT, INSERT ON audit_entry, audit_seal TO {app}")
        cursor.execute(f"SET LOCAL ROLE {app}")
    assert check_audit_database_role(None) == []
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
        cursor.execute(f"ALTER TABLE audit_seal OWNER TO {owner}")
        cursor.execute(f"SET LOCAL ROLE {owner}")
    [warning] = check_audit_database_role(None)
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
    assert warning.id == "audit.W002" and f"'{owner}' owns (or is a member of the owner of) audit_seal" in warning.msg
