"""Money invariants live in the database, and the state machine in the model."""

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F
from django_fsm import TransitionNotAllowed

from payments.models import Transaction

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": 0},
        {"amount": -5},
        {"amount": 100_000_000_000},
        {"amount_refunded": F("amount_captured") + 1},
        {"amount_captured": F("amount") + 1},
        {"amount_refunded": -1},
        {"currency": "usd"},
        {"currency": "US"},
        {"status": "teleported"},
        {"status": "authorized"},  # captured money in a non-captured state
        {"status": "refunded"},  # refunded without refunds
        {"capture_method": "whenever"},
    ],
)
def test_database_rejects_rows_that_break_money_invariants(merchant_a, make_payment, changes):
    txn = make_payment(merchant_a)
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            Transaction.objects.filter(pk=txn.pk).update(**changes)
    txn.refresh_from_db()
    assert (txn.status, txn.amount_captured, txn.amount_refunded) == ("completed", 1999, 0)


def test_status_cannot_be_assigned_directly(merchant_a, make_payment):
    txn = make_payment(merchant_a)
    with pytest.raises(AttributeError):
        txn.status = "refunded"


def test_transitions_refuse_illegal_moves_and_do_no_io(merchant_a, make_payment, django_assert_num_queries):
    failed = make_payment(merchant_a, payment_method="pm_card_chargeDeclinedInsufficientFunds")
    with pytest.raises(TransitionNotAllowed):
        failed.capture(amount=1, now=None)
    authorized = make_payment(merchant_a, capture_method="manual")
    with django_assert_num_queries(0):
        authorized.capture(amount=500, now=None)
    assert authorized.status == "completed" and authorized.amount_captured == 500


def test_admin_edits_are_recorded_by_auditlog(mfa_admin_client, merchant_a):
    from auditlog.models import LogEntry

    merchant = merchant_a.merchant
    response = mfa_admin_client.post(
        f"/admin/accounts/merchant/{merchant.pk}/change/", {"name": "Renamed", "is_active": "on",
                                                             "api_keys-TOTAL_FORMS": "0", "api_keys-INITIAL_FORMS": "0"}
    )
    assert response.status_code == 302
    merchant.refresh_from_db()
    assert merchant.name == "Renamed"
    change = LogEntry.objects.get_for_object(merchant).get(action=LogEntry.Action.UPDATE)
    assert change.changes_dict["name"] == ["Merchant A", "Renamed"]
