"""The audit log is append-only: no update or delete through the model, the QuerySet or
raw SQL; entries are written in the same database transaction as the action."""

import pytest
from django.db import DatabaseError, connection, transaction

from audit.actions import AuditAction
from audit.models import AuditEntry, AuditLogImmutable
from audit.services import audit_record
from core.actors import Actor
from payments.models import Transaction

pytestmark = pytest.mark.django_db


def raw_entry(action: str, **fields) -> AuditEntry:
    # audit_record takes AuditAction members only; these tests need an entry of any action.
    return AuditEntry.objects.create(actor_type="system", actor_id="test", action=action, **fields)


@pytest.fixture
def entry(merchant_a):
    return raw_entry("test.action", merchant_id=merchant_a.merchant.pk, details={"a": 1})


def test_model_refuses_save_of_an_existing_entry_and_delete(entry):
    entry.action = "tampered"
    with pytest.raises(AuditLogImmutable):
        entry.save()
    with pytest.raises(AuditLogImmutable):
        entry.delete()
    assert AuditEntry.objects.get(pk=entry.pk).action == "test.action"


def test_queryset_refuses_update_and_delete(entry):
    with pytest.raises(AuditLogImmutable):
        AuditEntry.objects.filter(pk=entry.pk).update(action="tampered")
    with pytest.raises(AuditLogImmutable):
        AuditEntry.objects.all().delete()
    with pytest.raises(AuditLogImmutable):
        AuditEntry.objects.bulk_update([entry], ["action"])
    assert AuditEntry.objects.get(pk=entry.pk).action == "test.action"


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_entry SET action = 'tampered'",
        "DELETE FROM audit_entry",
        "UPDATE audit_entry SET details = '{}'::jsonb WHERE id = (SELECT max(id) FROM audit_entry)",
    ],
)
def test_database_trigger_rejects_raw_sql_update_and_delete(entry, sql):
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditEntry.objects.get(pk=entry.pk).action == "test.action"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("sql", ["TRUNCATE audit_entry", "TRUNCATE audit_entry CASCADE"])
def test_database_trigger_rejects_truncate_of_committed_entries(sql):
    # Committed rows (transaction=True): the trigger itself, not a pending-event check, refuses.
    entry = raw_entry("test.truncate")
    with pytest.raises(DatabaseError, match="append-only: TRUNCATE"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_entry_fields_and_redaction(merchant_a):
    entry = audit_record(
        actor=Actor(type="api", id="fp_test_abc", merchant_id=merchant_a.merchant.pk, ip="203.0.113.9"),
        action=AuditAction.MERCHANT_CREATE,
        details={"api_key": "fp_test_secret", "note": "card 4242424242424242", "amount": 100},
    )
    entry.refresh_from_db()
    assert (entry.actor_type, entry.actor_id, entry.merchant_id, entry.origin_ip) == ("api", "fp_test_abc", merchant_a.merchant.pk, "203.0.113.9")
    assert entry.details == {"api_key": "[redacted]", "note": "[redacted]", "amount": 100}
    assert entry.occurred_at is not None


def test_audit_entries_carry_the_request_correlation_id(merchant_a):
    response = merchant_a.client.post(
        "/payment/transactions", {"amount": 100, "currency": "usd", "paymentMethod": "pm_card_visa"}, format="json",
        HTTP_X_REQUEST_ID="req-abc-123",
    )
    assert response["X-Request-ID"] == "req-abc-123"
    entries = AuditEntry.objects.filter(object_id=response.json()["id"])
    assert entries.count() == 3
    assert set(entries.values_list("correlation_id", flat=True)) == {"req-abc-123"}
    assert set(entries.values_list("origin_ip", flat=True)) == {"127.0.0.1"}


def test_a_rolled_back_action_leaves_no_audit_entry(merchant_a, make_payment):
    txn = make_payment(merchant_a, capture_method="manual")
    before = AuditEntry.objects.count()
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            audit_record(actor=Actor.system("test"), action=AuditAction.TRANSACTION_CAPTURE, target=txn)
            raise RuntimeError("the action failed after auditing")
    assert AuditEntry.objects.count() == before
    assert Transaction.objects.get(pk=txn.pk).status == "authorized"
