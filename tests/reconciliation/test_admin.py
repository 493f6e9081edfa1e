"""The reconciliation admin: runs and items with filters for finance and admin, the
decisions as confirmation pages (one-time tokens) calling the services as the staff user,
and the four-eyes approval of a ledger adjustment."""

import datetime as dt
import re

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from audit.models import AuditEntry
from core.actors import Actor
from gateways.simulator.settlements import SettlementDiscrepancies, settlement_discrepancies_set
from ledger.models import LedgerTransaction
from reconciliation.models import ItemState, ReconciliationItem, ReconciliationRun
from reconciliation.services.runs import reconciliation_run

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("simulator_only", "away_from_midnight")]


@pytest.fixture
def item(merchant_a, make_payment):
    txn = make_payment(merchant_a, amount=1500)
    settlement_discrepancies_set(SettlementDiscrepancies(amount_delta={txn.gateway_reference: -15}))
    reconciliation_run(gateway="simulator", settlement_date=dt.datetime.now(dt.UTC).date(), actor=Actor.system("test"))
    return ReconciliationItem.objects.get()


@pytest.fixture
def as_user(client, staff_user, staff_sign_in):
    def login(username: str, *roles: str):
        user = staff_user(username, *roles)
        staff_sign_in(client, user)
        return user

    return login


def url(name: str, *args) -> str:
    return reverse(f"admin:reconciliation_reconciliationitem_{name}", args=args)


def token_of(page) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', page.content.decode()).group(1)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_finance_sees_runs_and_items_with_filters_and_others_do_not(client, as_user, item):
    as_user("fiona", "finance")
    items = client.get(url("changelist"), {"category": "amount_mismatch", "state": "open"})
    runs = client.get(reverse("admin:reconciliation_reconciliationrun_changelist"), {"gateway": "simulator"})

    assert items.status_code == runs.status_code == 200
    assert item.public_id in items.content.decode()
    assert ReconciliationRun.objects.get().public_id in runs.content.decode()
    client.logout()
    as_user("otto", "operator")
    assert client.get(url("changelist")).status_code == 403


def test_resolving_from_the_item_page_runs_once_and_is_audited(client, as_user, item):
    as_user("fiona", "finance")
    page = client.get(url("resolve_detail", item.pk))
    body = {"resolution": "force_match", "reason": "rounding agreed with the gateway", "form_token": token_of(page)}

    first = client.post(url("resolve_detail", item.pk), body)
    second = client.post(url("resolve_detail", item.pk), body)

    assert first.status_code == second.status_code == 302
    item.refresh_from_db()
    assert (item.state, item.resolution, item.resolved_by.username) == (ItemState.RESOLVED, "force_match", "fiona")
    assert any("already submitted" in m for m in messages_of(second))
    assert AuditEntry.objects.filter(action="reconciliation_item.resolve", actor_id="fiona").count() == 1


def test_a_ledger_adjustment_requested_in_the_admin_waits_for_another_approver(client, as_user, item):
    as_user("fiona", "finance")
    page = client.get(url("resolve_detail", item.pk))
    client.post(url("resolve_detail", item.pk), {"resolution": "ledger_adjustment", "reason": "book the 0.15",
                                                 "form_token": token_of(page)})
    own = client.post(url("approve_detail", item.pk), {"form_token": token_of(client.get(url("approve_detail", item.pk)))})

    assert any("someone other than its requester" in m for m in messages_of(own))
    client.logout()
    as_user("adam", "admin")
    other = client.post(url("approve_detail", item.pk), {"form_token": token_of(client.get(url("approve_detail", item.pk)))})
    assert other.status_code == 302
    item.refresh_from_db()
    assert (item.state, item.resolution, item.requested_by.username, item.approved_by.username) == (
        ItemState.RESOLVED, "ledger_adjustment", "fiona", "adam")
    # the gateway settled 0.15 less: taken from the merchant's funds, out of the gateway's clearing account
    ltx = LedgerTransaction.objects.get(public_id=item.ledger_reference)
    assert (ltx.source_id, ltx.amount) == (item.public_id, -15)
    assert sum(e.amount for e in ltx.entries.all() if e.side == "credit") == 15
