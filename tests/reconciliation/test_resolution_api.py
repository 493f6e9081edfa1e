"""The reconciliation API (finance and admin staff tokens only) and the resolution workflow:
investigate, resolve and ignore with a reason, audited; the four-eyes ledger adjustment
(requested by one person, approved by another, posted to the ledger); recording
locally a payment the gateway made."""

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction

from audit.models import AuditEntry
from core.actors import Actor
from gateways.simulator.settlements import ExtraCharge, SettlementDiscrepancies, settlement_discrepancies_set
from ledger.models import LedgerTransaction
from payments.models import Transaction
from reconciliation.models import ItemState, ReconciliationItem
from reconciliation.services.runs import reconciliation_run
from tests.support.reconciliation import today

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("simulator_only", "away_from_midnight")]

ITEMS = "/payment/reconciliation/items"
RUNS = "/payment/reconciliation/runs"


@pytest.fixture
def day_with_items(merchant_a, make_payment):
    """A reconciled day with three items: a charge missing locally, an amount mismatch and
    a payment missing at the gateway."""
    txn = [make_payment(merchant_a, amount=1000 * (n + 1)) for n in range(3)]
    settlement_discrepancies_set(SettlementDiscrepancies(
        missing=(txn[0].gateway_reference,), amount_delta={txn[1].gateway_reference: 25},
        extra_charges=(ExtraCharge(reference="sim_ch_stray", amount=777, currency="USD", created=dt.datetime.now(dt.UTC)),),
    ))
    reconciliation_run(gateway="simulator", settlement_date=today(), actor=Actor.system("test"))
    return {item.category: item for item in ReconciliationItem.objects.all()}


def resolve(client, item, **body):
    return client.post(f"{ITEMS}/{item.public_id}/resolve", body, format="json")


def test_merchants_and_staff_without_the_role_get_403(day_with_items, merchant_a, staff_client):
    item = day_with_items["amount_mismatch"]
    for client in (merchant_a.client, staff_client("support"), staff_client("operator"), staff_client("auditor")):
        assert client.get(ITEMS).status_code == 403
        assert client.get(RUNS).status_code == 403
        response = resolve(client, item, resolution="force_match", reason="the same payment")
        assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    item.refresh_from_db()
    assert item.state == ItemState.OPEN


def test_finance_lists_runs_and_items_with_filters(day_with_items, staff_client):
    finance = staff_client("finance")

    runs = finance.get(RUNS, {"gateway": "simulator", "date": str(today())}).json()
    items = finance.get(ITEMS, {"category": "missing_locally,amount_mismatch", "state": "open"}).json()

    (run,) = runs["data"]
    assert (run["object"], run["gateway"], run["date"], run["attempt"], run["discrepancies"]) == (
        "reconciliation_run", "simulator", str(today()), 1, 3)
    assert {"category": "missing_locally", "count": 1} in run["counts"]
    assert {i["category"] for i in items["data"]} == {"missing_locally", "amount_mismatch"}
    stray = next(i for i in items["data"] if i["category"] == "missing_locally")
    assert (stray["gatewayReference"], stray["gatewayAmount"], stray["localReference"]) == ("sim_ch_stray", 777, None)
    assert finance.get(ITEMS, {"gateway": "stripe"}).json()["data"] == []
    assert finance.get(ITEMS, {"category": "nonsense"}).status_code == 400
    assert finance.get(ITEMS, {"colour": "red"}).status_code == 400
    detail = finance.get(f"{ITEMS}/{stray['id']}").json()
    assert detail["id"] == stray["id"] and detail["lastRun"] == run["id"]
    assert finance.get(f"{RUNS}/{run['id']}").json()["totals"][0]["currency"] == "USD"


def test_resolving_needs_a_reason_and_is_audited(day_with_items, staff_client):
    finance = staff_client("finance", "fiona")
    item = day_with_items["amount_mismatch"]

    assert resolve(finance, item, resolution="force_match", reason="  ").status_code == 400
    assert resolve(finance, item, resolution="force_match").status_code == 400
    assert resolve(finance, item, resolution="settle", reason="x").status_code == 400
    item.refresh_from_db()
    assert item.state == ItemState.OPEN

    response = resolve(finance, item, resolution="force_match", reason="card network rounding, confirmed by Stripe")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["state"], body["resolution"], body["resolvedBy"]) == ("resolved", "force_match", "fiona")
    entry = AuditEntry.objects.get(action="reconciliation_item.resolve", object_id=item.public_id)
    assert (entry.actor_type, entry.actor_id) == ("staff", "fiona")
    assert entry.details["reason"] == "card network rounding, confirmed by Stripe"
    again = resolve(finance, item, resolution="ignore", reason="again")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"


def test_investigate_then_ignore(day_with_items, staff_client):
    admin = staff_client("admin")
    item = day_with_items["missing_at_gateway"]

    investigating = admin.post(f"{ITEMS}/{item.public_id}/investigate", {"note": "asked the gateway"}, format="json")
    ignored = resolve(admin, item, resolution="ignore", reason="test payment of the gateway's sandbox")

    assert investigating.json()["state"] == "investigating" and investigating.json()["note"] == "asked the gateway"
    assert ignored.json()["state"] == "ignored" and ignored.json()["resolution"] == "ignore"
    assert set(AuditEntry.objects.filter(object_id=item.public_id).values_list("action", flat=True)) == {
        "reconciliation_item.investigate", "reconciliation_item.ignore"}


def test_a_ledger_adjustment_needs_a_second_approver(day_with_items, merchant_a, staff_client):
    first, second = staff_client("finance", "fiona"), staff_client("admin", "adam")
    item = day_with_items["amount_mismatch"]

    requested = resolve(first, item, resolution="ledger_adjustment", reason="gateway kept 25 more")
    assert requested.status_code == 202
    assert requested.json()["pendingResolution"]["requestedBy"] == "fiona" and requested.json()["state"] == "investigating"
    # the requester cannot approve their own request
    own = first.post(f"{ITEMS}/{item.public_id}/approve", {}, format="json")
    assert own.status_code == 403
    # a second person can: the gateway's 25 more posts to the ledger, the item is resolved
    approved = second.post(f"{ITEMS}/{item.public_id}/approve", {}, format="json")

    assert approved.status_code == 200, approved.json()
    body = approved.json()
    assert (body["state"], body["resolution"]) == ("resolved", "ledger_adjustment")
    ltx = LedgerTransaction.objects.get(public_id=body["ledgerReference"])
    assert (ltx.kind, ltx.idempotency_key, ltx.source_type, ltx.source_id, ltx.currency) == (
        "adjustment", f"reconciliation:{item.public_id}", "reconciliation_item", item.public_id, "USD")
    assert (ltx.merchant_id, ltx.balance_type, ltx.amount, ltx.net) == (merchant_a.merchant.pk, "adjustment", 25, 25)
    entries = {(e.account.code, e.account.gateway, e.side): e.amount for e in ltx.entries.select_related("account")}
    assert entries == {("gateway_clearing", "simulator", "debit"): 25, ("merchant_available", "", "credit"): 25}
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the ledger's balance trigger runs now, not at COMMIT
    # approving again posts nothing more
    again = second.post(f"{ITEMS}/{item.public_id}/approve", {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"
    assert LedgerTransaction.objects.filter(source_id=item.public_id).count() == 1
    assert AuditEntry.objects.get(object_id=item.public_id, action="reconciliation_item.adjustment_approve").details[
        "ledger_reference"] == ltx.public_id
    assert AuditEntry.objects.filter(action="reconciliation_item.adjustment_approve", actor_id="adam").count() == 1


def test_a_rejected_adjustment_can_be_requested_again(day_with_items, staff_client):
    first, second = staff_client("finance", "fiona"), staff_client("finance", "frank")
    item = day_with_items["missing_at_gateway"]
    resolve(first, item, resolution="ledger_adjustment", reason="write it off")

    rejected = second.post(f"{ITEMS}/{item.public_id}/reject", {"reason": "the gateway will settle it"}, format="json")

    assert rejected.status_code == 200 and rejected.json()["pendingResolution"] is None
    assert resolve(first, item, resolution="ledger_adjustment", reason="it did not").status_code == 202


def test_the_database_refuses_an_adjustment_approved_by_its_requester(day_with_items, staff_user):
    fiona, adam = staff_user("fiona", "finance"), staff_user("adam", "admin")
    item = day_with_items["amount_mismatch"]
    decided = {"state": ItemState.RESOLVED, "resolution": "ledger_adjustment", "resolution_reason": "x",
               "resolved_by": fiona, "resolved_at": dt.datetime.now(dt.UTC), "requested_by": fiona,
               "ledger_reference": "ltx_1"}

    with pytest.raises(IntegrityError), transaction.atomic():
        ReconciliationItem.objects.filter(pk=item.pk).update(**decided, approved_by=fiona)

    assert ReconciliationItem.objects.filter(pk=item.pk).update(**decided, approved_by=adam) == 1


def test_create_local_record_records_the_gateway_s_payment(day_with_items, staff_client, merchant_a):
    finance = staff_client("finance", "fiona")
    stray = day_with_items["missing_locally"]

    nameless = resolve(finance, stray, resolution="create_local_record", reason="order 4411, paid by phone")
    response = resolve(finance, stray, resolution="create_local_record", reason="order 4411, paid by phone",
                       merchant=merchant_a.merchant.public_id)

    assert nameless.status_code == 400
    assert response.status_code == 200, response.json()
    txn = Transaction.objects.get(gateway="simulator", gateway_reference="sim_ch_stray")
    assert (txn.status, txn.amount_captured, txn.merchant_id) == ("completed", 777, merchant_a.merchant.pk)
    assert response.json()["localReference"] == txn.public_id
    assert AuditEntry.objects.filter(action="transaction.recorded_from_gateway", object_id=txn.public_id).exists()
    other = resolve(finance, day_with_items["amount_mismatch"], resolution="create_local_record", reason="no",
                    merchant=merchant_a.merchant.public_id)
    assert other.status_code == 400
    # reconciled again, the gateway's payment now matches FlowPay's record
    report = reconciliation_run(gateway="simulator", settlement_date=today(), actor=Actor.system("test"), rerun=True)
    assert "missing_locally" not in {item.category for item in report.items}
