"""Chargebacks: the runbook's POST /payment/transactions/{id}/chargeback, duplicate
references, evidence, accept, outcomes with the funds they move, the transaction's disputed
flags, audit, merchant isolation and staff roles."""

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from core.actors import Actor, ActorType
from refunds.models import Chargeback, ChargebackEvidence
from refunds.services.chargebacks import chargeback_create

pytestmark = pytest.mark.django_db

RUNBOOK_BODY = {"chargebackReference": "CB12345", "amount": 1999, "reason": "Unauthorized transaction"}


def chargeback_url(txn) -> str:
    return f"/payment/transactions/{txn.public_id}/chargeback"


@pytest.fixture
def support(staff_api):
    return staff_api("support", "sam-support")


@pytest.fixture
def finance(staff_api):
    return staff_api("finance", "fiona-finance")


@pytest.fixture
def recorded(merchant_a, make_payment, support):
    """A completed 19.99 payment with the runbook's chargeback recorded on it."""
    txn = make_payment(merchant_a, amount=1999)
    body = support.post(chargeback_url(txn), RUNBOOK_BODY, format="json").json()
    return txn, body


def test_runbook_chargeback_is_recorded_with_a_due_date_and_audited(merchant_a, make_payment, support):
    txn = make_payment(merchant_a, amount=1999)

    response = support.post(chargeback_url(txn), RUNBOOK_BODY, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"].startswith("cb_") and body["object"] == "chargeback"
    assert (body["status"], body["chargebackReference"], body["amount"], body["currency"]) == (
        "needs_response", "CB12345", 1999, "USD")
    assert body["reason"] == "Unauthorized transaction" and body["transaction"] == txn.public_id
    due = dt.datetime.fromisoformat(body["evidenceDueBy"].replace("Z", "+00:00"))
    assert dt.timedelta(days=6, hours=23) < due - timezone.now() <= dt.timedelta(days=7)
    assert body["evidence"] == [] and body["amountWithdrawn"] == 0 and body["fundsWithdrawnAt"] is None
    assert body["initiatedBy"] == {"type": "staff", "id": "sam-support"}
    entry = AuditEntry.objects.get(action="chargeback.create", object_id=body["id"])
    assert (entry.actor_type, entry.actor_id, entry.merchant_id) == ("staff", "sam-support", merchant_a.merchant.pk)
    # recording it does not withdraw anything yet
    txn.refresh_from_db()
    assert (txn.disputed, txn.amount_disputed) == (False, 0)


def test_the_same_reference_twice_returns_the_existing_chargeback(recorded, support, merchant_a):
    txn, first = recorded

    again = support.post(chargeback_url(txn), RUNBOOK_BODY, format="json")
    by_merchant = merchant_a.client.post(chargeback_url(txn), {**RUNBOOK_BODY, "amount": 100}, format="json")

    assert again.status_code == by_merchant.status_code == 200
    assert again.json()["id"] == by_merchant.json()["id"] == first["id"]
    assert Chargeback.objects.count() == 1
    assert AuditEntry.objects.filter(action="chargeback.create").count() == 1


def test_gateway_dispute_events_use_the_same_service_and_are_deduplicated(merchant_a, make_payment):
    txn = make_payment(merchant_a, amount=5000)
    webhook = Actor(type=ActorType.WEBHOOK, id="stripe:evt_123")
    due = timezone.now() + dt.timedelta(days=10)

    first, created = chargeback_create(transaction_id=txn.pk, chargeback_reference="dp_1", amount=5000,
                                       reason="fraudulent", actor=webhook, evidence_due_by=due,
                                       gateway="stripe", gateway_reference="dp_1")
    again, created_again = chargeback_create(transaction_id=txn.pk, chargeback_reference="dp_1", amount=5000,
                                             reason="fraudulent", actor=webhook, evidence_due_by=due)

    assert created and not created_again and again.pk == first.pk
    assert (first.gateway, first.gateway_reference, first.evidence_due_by) == ("stripe", "dp_1", due)
    assert AuditEntry.objects.get(action="chargeback.create").actor_type == "webhook"


def test_evidence_moves_it_under_review_and_is_kept(recorded, merchant_a):
    txn, chargeback = recorded
    url = f"/payment/chargebacks/{chargeback['id']}/evidence"

    response = merchant_a.client.post(url, {"text": "Signed delivery receipt attached.",
                                            "files": ["s3://evidence/cb12345/receipt.pdf", "doc_42"]}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "under_review" and body["evidenceSubmittedAt"] is not None
    assert body["evidence"][0]["text"] == "Signed delivery receipt attached."
    assert body["evidence"][0]["files"] == ["s3://evidence/cb12345/receipt.pdf", "doc_42"]
    assert body["evidence"][0]["submittedBy"]["type"] == "api"
    assert AuditEntry.objects.filter(action="chargeback.evidence_submitted", object_id=chargeback["id"]).exists()
    # evidence is submitted once: the case is now with the network
    again = merchant_a.client.post(url, {"text": "more"}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"
    assert ChargebackEvidence.objects.count() == 1


def test_late_or_empty_evidence_is_refused(recorded, merchant_a):
    _, chargeback = recorded
    url = f"/payment/chargebacks/{chargeback['id']}/evidence"

    assert merchant_a.client.post(url, {}, format="json").status_code == 400
    assert merchant_a.client.post(url, {"files": [""]}, format="json").status_code == 400
    Chargeback.objects.filter(public_id=chargeback["id"]).update(evidence_due_by=timezone.now() - dt.timedelta(hours=1))
    late = merchant_a.client.post(url, {"text": "too late"}, format="json")
    assert late.status_code == 409 and late.json()["error"]["code"] == "evidence_past_due"


def test_accepting_withdraws_the_funds_and_marks_the_payment_disputed(recorded, merchant_a):
    txn, chargeback = recorded

    response = merchant_a.client.post(f"/payment/chargebacks/{chargeback['id']}/accept", format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "accepted" and body["amountWithdrawn"] == 1999 and body["fundsWithdrawnAt"]
    assert body["acceptedAt"] and body["closedAt"]
    payment = merchant_a.client.get(f"/payment/transactions/{txn.public_id}").json()
    assert (payment["disputed"], payment["amountDisputed"], payment["amountRefundable"]) == (True, 1999, 0)
    assert [e.action for e in AuditEntry.objects.filter(action__in=["chargeback.accept", "transaction.disputed"]).order_by("id")] == [
        "chargeback.accept", "transaction.disputed"]
    # accepted is final
    assert merchant_a.client.post(f"/payment/chargebacks/{chargeback['id']}/accept").status_code == 409


def test_a_won_chargeback_reinstates_the_funds(recorded, merchant_a, finance):
    txn, chargeback = recorded
    merchant_a.client.post(f"/payment/chargebacks/{chargeback['id']}/evidence", {"text": "Proof"}, format="json")

    response = finance.post(f"/payment/chargebacks/{chargeback['id']}/outcome", {"outcome": "won"}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["amountReinstated"], body["amountWithdrawn"]) == ("won", 1999, 0)
    assert body["fundsReinstatedAt"] and body["closedAt"]
    txn.refresh_from_db()
    assert (txn.disputed, txn.amount_disputed, txn.amount_refundable) == (False, 0, 1999)
    entry = AuditEntry.objects.get(action="chargeback.won")
    assert (entry.actor_type, entry.actor_id) == ("staff", "fiona-finance")
    # the dispute is closed: the merchant may refund again
    assert merchant_a.client.post(f"/payment/transactions/{txn.public_id}/refund", {"amount": 100},
                                  format="json").status_code == 201


def test_a_lost_chargeback_withdraws_the_funds_and_limits_later_refunds(merchant_a, make_payment, support, finance,
                                                                         queued_refunds):
    txn = make_payment(merchant_a, amount=1000)
    chargeback = support.post(chargeback_url(txn), {"chargebackReference": "CB-9", "amount": 600, "reason": "Not received"},
                              format="json").json()

    response = finance.post(f"/payment/chargebacks/{chargeback['id']}/outcome", {"outcome": "lost"}, format="json")

    assert response.status_code == 200 and response.json()["status"] == "lost"
    assert response.json()["amountWithdrawn"] == 600
    txn.refresh_from_db()
    assert (txn.disputed, txn.amount_disputed, txn.amount_refundable) == (True, 600, 400)
    assert AuditEntry.objects.filter(action="chargeback.lost").exists()
    assert AuditEntry.objects.filter(action="transaction.disputed", object_id=txn.public_id).exists()
    # the customer already got 6.00 back through the network: only 4.00 can still be refunded
    too_much = merchant_a.client.post(f"/payment/transactions/{txn.public_id}/refund", {"amount": 500}, format="json")
    assert too_much.status_code == 400 and "400" in too_much.json()["error"]["message"]
    assert merchant_a.client.post(f"/payment/transactions/{txn.public_id}/refund", {"amount": 400},
                                  format="json").status_code == 201
    # same outcome again is a no-op (a redelivered event); the other outcome is a conflict
    assert finance.post(f"/payment/chargebacks/{chargeback['id']}/outcome", {"outcome": "lost"}, format="json").status_code == 200
    assert finance.post(f"/payment/chargebacks/{chargeback['id']}/outcome", {"outcome": "won"}, format="json").status_code == 409
    txn.refresh_from_db()
    assert txn.amount_disputed == 600


@pytest.mark.parametrize("who,expected", [("merchant", 403), ("support", 403), ("auditor", 403), ("finance", 200), ("admin", 200)])
def test_only_finance_and_admin_record_outcomes(recorded, merchant_a, staff_api, who, expected):
    _, chargeback = recorded
    client = merchant_a.client if who == "merchant" else staff_api(who)

    response = client.post(f"/payment/chargebacks/{chargeback['id']}/outcome", {"outcome": "lost"}, format="json")

    assert response.status_code == expected


@pytest.mark.parametrize("role,expected", [("support", 201), ("finance", 201), ("admin", 201), ("operator", 403), ("auditor", 403)])
def test_staff_roles_that_may_record_chargebacks(merchant_a, make_payment, staff_api, role, expected):
    txn = make_payment(merchant_a, amount=1999)
    assert staff_api(role).post(chargeback_url(txn), RUNBOOK_BODY, format="json").status_code == expected


def test_chargeback_needs_a_captured_payment_and_an_amount_within_it(merchant_a, make_payment, support):
    authorized = make_payment(merchant_a, amount=1000, capture_method="manual")
    completed = make_payment(merchant_a, amount=1000)

    assert support.post(chargeback_url(authorized), {"chargebackReference": "A"}, format="json").status_code == 409
    too_much = support.post(chargeback_url(completed), {"chargebackReference": "B", "amount": 1001}, format="json")
    assert too_much.status_code == 400 and too_much.json()["error"]["code"] == "amount_too_large"
    # amount omitted: the whole captured amount; then nothing is left to dispute
    assert support.post(chargeback_url(completed), {"chargebackReference": "C"}, format="json").json()["amount"] == 1000
    assert support.post(chargeback_url(completed), {"chargebackReference": "D", "amount": 1}, format="json").status_code == 400
    assert support.post(chargeback_url(completed), {"amount": 5}, format="json").json()["error"]["param"] == "chargebackReference"


def test_chargeback_lists_filter_by_status_and_due_date_and_stay_within_the_merchant(merchant_a, merchant_b, make_payment,
                                                                                     support):
    mine, theirs = make_payment(merchant_a, amount=1000), make_payment(merchant_b, amount=1000)
    soon = support.post(chargeback_url(mine), {"chargebackReference": "S", "amount": 100,
                                               "evidenceDueBy": (timezone.now() + dt.timedelta(days=1)).isoformat()},
                        format="json").json()
    later = support.post(chargeback_url(mine), {"chargebackReference": "L", "amount": 100}, format="json").json()
    other = support.post(chargeback_url(theirs), {"chargebackReference": "O", "amount": 100}, format="json").json()
    merchant_a.client.post(f"/payment/chargebacks/{later['id']}/accept")

    due_before = (timezone.now() + dt.timedelta(days=3)).isoformat().replace("+00:00", "Z")
    assert [c["id"] for c in merchant_a.client.get("/payment/chargebacks", {"dueBefore": due_before}).json()["data"]] == [soon["id"]]
    assert [c["id"] for c in merchant_a.client.get("/payment/chargebacks?status=accepted").json()["data"]] == [later["id"]]
    assert {c["id"] for c in merchant_a.client.get("/payment/chargebacks").json()["data"]} == {soon["id"], later["id"]}
    assert len(merchant_a.client.get(f"/payment/transactions/{mine.public_id}/chargebacks").json()["data"]) == 2
    assert merchant_a.client.get(f"/payment/chargebacks/{other['id']}").status_code == 404
    assert merchant_a.client.post(f"/payment/chargebacks/{other['id']}/accept").status_code == 404
    assert merchant_a.client.post(chargeback_url(theirs), RUNBOOK_BODY, format="json").status_code == 404
    assert len(support.get("/payment/chargebacks").json()["data"]) == 3
    assert merchant_a.client.get("/payment/chargebacks?dueBefore=tomorrow").status_code == 400
