"""The review queues: a decision taken on the page calls the same service as the API and
writes the same audit entry; four eyes hold; a decision without its reason, or submitted
twice, changes nothing more; chargebacks whose evidence is due soon are listed."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from core.actors import Actor
from fraud.models import Review
from gateways.simulator.settlements import SettlementDiscrepancies, settlement_discrepancies_set
from reconciliation.models import ReconciliationItem
from reconciliation.services.runs import reconciliation_run
from refunds.models import Refund
from refunds.services.chargebacks import chargeback_create
from refunds.services.create import refund_create
from tests.support.fraud import add_rule, pay
from tests.support.reconciliation import today

pytestmark = pytest.mark.django_db

QUEUES = reverse("admin:dashboard_review_queues")


def form_token(page) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', page.content.decode()).group(1)


def decide(client, queue: str, operation: str, obj, reason: str = ""):
    token = form_token(client.get(QUEUES))
    return client.post(QUEUES, {"queue": queue, "operation": operation, "id": obj.pk, "reason": reason,
                                "form_token": token})


def entry_shape(entry: AuditEntry) -> tuple:
    """What must be the same whichever surface took the decision."""
    return entry.action, entry.actor_type, entry.result, sorted(entry.details)


@pytest.fixture
def awaiting_approval(merchant_a, make_payment, role_user, monkeypatch):
    """Refunds of 150.00 asked by a support user (above the support limit): awaiting approval."""
    monkeypatch.setattr("refunds.services.create._dispatch", lambda **kwargs: None)
    support = role_user("support", "sam")

    def make() -> Refund:
        txn = make_payment(merchant_a, amount=20000)
        return refund_create(transaction_id=txn.pk, amount=15000, reason="Customer service request",
                             actor=Actor.staff(user=support))

    return make


def test_a_refund_approved_on_the_page_writes_the_apis_audit_entry(awaiting_approval, role_client, staff_api):
    on_page, by_api = awaiting_approval(), awaiting_approval()
    assert on_page.status == "requires_approval"
    client = role_client("finance")
    assert on_page.public_id in client.get(QUEUES).content.decode()

    assert decide(client, "refunds", "approve", on_page).status_code == 302
    assert staff_api("finance").post(f"/payment/refunds/{by_api.public_id}/approve", {}, format="json").status_code == 200

    on_page.refresh_from_db()
    assert on_page.status == "pending" and on_page.approved_by.username == "finance-dash"
    page_entry = AuditEntry.objects.get(action="refund.approve", object_id=on_page.public_id)
    api_entry = AuditEntry.objects.get(action="refund.approve", object_id=by_api.public_id)
    assert entry_shape(page_entry) == entry_shape(api_entry)
    assert page_entry.actor_id == "finance-dash"


def test_the_same_decision_submitted_twice_acts_once(awaiting_approval, role_client):
    refund = awaiting_approval()
    client = role_client("finance")
    token = form_token(client.get(QUEUES))
    form = {"queue": "refunds", "operation": "approve", "id": refund.pk, "form_token": token}
    client.post(QUEUES, form)
    client.post(QUEUES, form)
    assert AuditEntry.objects.filter(action="refund.approve", object_id=refund.public_id).count() == 1


def test_rejecting_without_a_reason_changes_nothing(awaiting_approval, role_client):
    refund = awaiting_approval()
    response = decide(role_client("finance"), "refunds", "reject", refund, reason="  ")
    assert response.status_code == 302
    refund.refresh_from_db()
    assert refund.status == "requires_approval"
    assert not AuditEntry.objects.filter(action="refund.reject").exists()


@pytest.fixture
def items(merchant_a, make_payment, simulator_only, away_from_midnight):
    """A reconciled day with two amount mismatches."""
    txns = [make_payment(merchant_a, amount=1000 * (n + 1)) for n in range(2)]
    settlement_discrepancies_set(SettlementDiscrepancies(amount_delta={t.gateway_reference: 25 for t in txns}))
    reconciliation_run(gateway="simulator", settlement_date=today(), actor=Actor.system("test"))
    return list(ReconciliationItem.objects.order_by("id"))


def test_an_item_ignored_on_the_page_shows_both_sides_and_is_audited_like_the_api(items, role_client, staff_api):
    on_page, by_api = items
    client = role_client("finance")
    html = client.get(QUEUES).content.decode()
    assert on_page.public_id in html and "item-diff" in html

    assert decide(client, "reconciliation", "ignore", on_page, reason="").status_code == 302  # no reason: refused
    on_page.refresh_from_db()
    assert on_page.state == "open"

    decide(client, "reconciliation", "ignore", on_page, reason="test settlement")
    staff_api("finance").post(f"/payment/reconciliation/items/{by_api.public_id}/resolve",
                              {"resolution": "ignore", "reason": "test settlement"}, format="json")
    on_page.refresh_from_db()
    assert (on_page.state, on_page.resolution_reason) == ("ignored", "test settlement")
    page_entry = AuditEntry.objects.get(action="reconciliation_item.ignore", object_id=on_page.public_id)
    api_entry = AuditEntry.objects.get(action="reconciliation_item.ignore", object_id=by_api.public_id)
    assert entry_shape(page_entry) == entry_shape(api_entry)


def test_a_ledger_adjustment_asked_on_the_page_needs_a_second_person(items, role_client, monkeypatch):
    monkeypatch.setattr("reconciliation.services.items.post_adjustment", lambda **kwargs: "ltx_test")
    item = items[0]
    fiona, felix = role_client("finance", "fiona"), role_client("finance", "felix")
    decide(fiona, "reconciliation", "request_adjustment", item, reason="gateway fee")
    item.refresh_from_db()
    assert (item.state, item.pending_resolution) == ("investigating", "ledger_adjustment")

    decide(fiona, "reconciliation", "approve_adjustment", item)  # the requester: refused
    item.refresh_from_db()
    assert item.state == "investigating"

    decide(felix, "reconciliation", "approve_adjustment", item)
    item.refresh_from_db()
    assert (item.state, item.ledger_reference, item.approved_by.username) == ("resolved", "ltx_test", "felix")
    assert AuditEntry.objects.filter(action="reconciliation_item.adjustment_approve", actor_id="felix").count() == 1


@pytest.fixture
def held(merchant_a):
    add_rule(merchant_a, "review if :amount: > 5000")
    body = pay(merchant_a, amount=7500).json()
    assert body["status"] == "authorized", body
    return Review.objects.get(transaction__public_id=body["id"])


def test_a_fraud_review_approved_on_the_page_captures_once_and_is_audited_like_the_api(held, role_client, staff_api,
                                                                                       merchant_a):
    client = role_client("support")
    assert held.public_id in client.get(QUEUES).content.decode()
    assert decide(client, "fraud", "approve", held, reason="known customer").status_code == 302
    held.refresh_from_db()
    held.transaction.refresh_from_db()
    assert held.status == "approved" and held.transaction.status == "completed"
    assert AuditEntry.objects.filter(object_id=held.public_id, actor_id="support-dash").exists()
    # the API's approval of another held payment writes the same entry
    other = Review.objects.get(transaction__public_id=pay(merchant_a, amount=8000).json()["id"])
    assert staff_api("support").post(f"/payment/fraud/reviews/{other.public_id}/approve", {"note": "known customer"},
                                     format="json").status_code == 200
    page_entries = AuditEntry.objects.filter(object_id=held.public_id).order_by("id")
    api_entries = AuditEntry.objects.filter(object_id=other.public_id).order_by("id")
    assert [entry_shape(e) for e in page_entries] == [entry_shape(e) for e in api_entries]
    # a second approval (a page left open) finds it closed: nothing more happens
    client.post(QUEUES, {"queue": "fraud", "operation": "approve", "id": held.pk, "reason": "again"})
    assert held.transaction.attempts.filter(operation="capture", outcome="succeeded").count() == 1


def test_chargebacks_due_soon_are_listed_and_later_ones_are_not(merchant_a, make_payment, role_client, settings):
    txn = make_payment(merchant_a, amount=5000)
    chargeback, _ = chargeback_create(transaction_id=txn.pk, chargeback_reference="CB-DUE", amount=1000,
                                      reason="fraudulent", actor=Actor.system("test"))
    due_in_days = (chargeback.evidence_due_by - timezone.now()) / dt.timedelta(days=1)
    assert due_in_days > 1
    client = role_client("finance")
    settings.FLOWPAY_CHARGEBACK_DUE_SOON_DAYS = int(due_in_days) + 1
    assert chargeback.public_id in client.get(QUEUES).content.decode()
    settings.FLOWPAY_CHARGEBACK_DUE_SOON_DAYS = int(due_in_days) - 1
    assert chargeback.public_id not in client.get(QUEUES).content.decode()
