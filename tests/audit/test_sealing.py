"""The hash chain over the audit log: verify_audit_log detects any altered, removed or
inserted entry and any edited seal. (Tampering here bypasses the append-only triggers the
way a superuser could: session_replication_role = replica.)"""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from audit.actions import AuditAction
from audit.models import AuditEntry, AuditSeal
from audit.sealing import audit_seal_pending, audit_verify
from audit.services import audit_record
from core.actors import Actor

pytestmark = pytest.mark.django_db


@pytest.fixture
def seal_at_once(settings):
    settings.FLOWPAY_AUDIT_SEAL_MIN_AGE_SECONDS = 0


def write_entries(count: int) -> list[AuditEntry]:
    return [audit_record(actor=Actor.system("test"), action=AuditAction.MERCHANT_CREATE, details={"n": i}) for i in range(count)]


def tamper(sql: str, params=()) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)


def verify_command() -> tuple[int, dict]:
    out = StringIO()
    try:
        call_command("verify_audit_log", "--format", "json", stdout=out)
        code = 0
    except SystemExit as exited:
        code = exited.code
    return code, json.loads(out.getvalue())


def test_sealed_entries_verify_and_the_chain_links(seal_at_once):
    write_entries(7)
    assert audit_seal_pending(batch_size=3) == 7  # three seals: 3 + 3 + 1
    seals = list(AuditSeal.objects.order_by("last_entry_id"))
    assert [s.entry_count for s in seals] == [3, 3, 1]
    assert [s.previous_hash for s in seals[1:]] == [s.hash for s in seals[:-1]]
    code, report = verify_command()
    assert code == 0 and report["ok"] and report["entriesVerified"] == 7 and report["entriesUnsealed"] == 0
    assert audit_seal_pending() == 1  # nothing new but the verification's own record


def test_entries_younger_than_the_minimum_age_wait(settings):
    settings.FLOWPAY_AUDIT_SEAL_MIN_AGE_SECONDS = 300
    write_entries(2)
    assert audit_seal_pending() == 0
    assert audit_verify().entries_unsealed == 2


def test_an_altered_entry_is_detected(seal_at_once):
    entries = write_entries(4)
    audit_seal_pending()
    tamper("UPDATE audit_entry SET details = %s WHERE id = %s", ['{"n": 99}', entries[1].pk])
    code, report = verify_command()
    assert code == 1 and "altered" in report["problems"][0]


def test_a_removed_entry_is_detected(seal_at_once):
    entries = write_entries(4)
    audit_seal_pending()
    tamper("DELETE FROM audit_entry WHERE id = %s", [entries[2].pk])
    code, report = verify_command()
    assert code == 1 and "removed" in report["problems"][0]


def test_an_inserted_entry_is_detected(seal_at_once):
    entries = write_entries(3)
    tamper("DELETE FROM audit_entry WHERE id = %s", [entries[1].pk])  # a hole before sealing
    audit_seal_pending()
    assert audit_verify().ok
    with connection.cursor() as cursor:  # a forged entry slipped into the sealed range
        cursor.execute(
            "INSERT INTO audit_entry (id, occurred_at, actor_type, actor_id, action, object_type, object_id, result, "
            "details, correlation_id) VALUES (%s, now(), 'staff', 'mallory', 'refund.approve', '', '', 'success', '{}', '')",
            [entries[1].pk],
        )
    code, report = verify_command()
    assert code == 1 and "inserted" in report["problems"][0]


def test_an_edited_seal_breaks_the_chain(seal_at_once):
    write_entries(4)
    audit_seal_pending(batch_size=2)
    first = AuditSeal.objects.order_by("last_entry_id").first()
    tamper("UPDATE audit_seal SET hash = %s WHERE id = %s", ["f" * 64, first.pk])
    report = audit_verify()
    assert not report.ok
    assert any("chain broken" in p["problem"] for p in report.problems)


def test_seals_are_append_only(seal_at_once):
    from django.db import DatabaseError

    from audit.models import AuditLogImmutable

    write_entries(1)
    audit_seal_pending()
    with pytest.raises(AuditLogImmutable):
        AuditSeal.objects.all().delete()
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE audit_seal SET entry_count = 0")
