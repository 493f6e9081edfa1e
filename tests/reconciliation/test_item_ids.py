"""Reconciliation items made by a run have public ids without digits: a run of them could
pass for a card number, and the card-data guard refuses such a path (the item could not be
resolved through the API)."""

import re

import pytest

from core.actors import Actor
from core.carddata import find_card_number_path
from gateways.simulator.settlements import SettlementDiscrepancies, settlement_discrepancies_set
from reconciliation.models import ReconciliationItem
from reconciliation.services.runs import reconciliation_run
from tests.support.reconciliation import today

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("simulator_only", "away_from_midnight")]


def test_item_ids_made_by_a_run_hold_no_digits(merchant_a, make_payment):
    txns = [make_payment(merchant_a, amount=1000 + n) for n in range(20)]
    settlement_discrepancies_set(SettlementDiscrepancies(amount_delta={t.gateway_reference: 1 for t in txns}))

    reconciliation_run(gateway="simulator", settlement_date=today(), actor=Actor.system("test"))

    ids = list(ReconciliationItem.objects.values_list("public_id", flat=True))
    assert len(ids) == 20 and len(set(ids)) == 20
    assert all(re.fullmatch(r"recitem_[g-pa-f]{32}", public_id) for public_id in ids), ids
    assert all(find_card_number_path(f"/payment/reconciliation/items/{public_id}/resolve") is None for public_id in ids)
