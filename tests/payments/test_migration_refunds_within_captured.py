"""The rule "refunds plus disputed funds never exceed the capture" arrives by a migration: over
rows that already break it, that migration stops with their list and changes nothing."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("payments", "0005_models_moved_to_other_apps")]
RULE = [("payments", "0006_refunds_and_disputes_within_captured")]


@pytest.fixture
def _latest_schema_afterwards():
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_latest_schema_afterwards")
def test_rows_that_break_the_rule_stop_the_migration_with_their_list():
    apps = _migrate(BEFORE)
    merchant = apps.get_model("accounts", "Merchant").objects.create(name="m", public_id="mer_m")
    payments = apps.get_model("payments", "Transaction").objects
    common = {"merchant": merchant, "amount": 10000, "currency": "USD", "payment_method": "pm_card_visa",
              "payment_method_token": "pm_card_visa", "amount_captured": 10000}
    payments.create(public_id="txn_over", status="partially_refunded", disputed=True, amount_refund_reserved=6000, amount_disputed=5000, **common)
    payments.create(public_id="txn_fine", status="partially_refunded", disputed=True, amount_refund_reserved=5000, amount_disputed=5000, **common)

    with pytest.raises(RuntimeError) as stopped:
        _migrate(RULE)

    message = str(stopped.value)
    assert "1 transaction(s)" in message and "txn_over (captured 10000, refunds 6000, disputed 5000)" in message
    assert "txn_fine" not in message and "Nothing was changed" in message
    assert MigrationExecutor(connection).loader.applied_migrations.keys() >= set(BEFORE)
    assert RULE[0] not in MigrationExecutor(connection).loader.applied_migrations
    assert payments.get(public_id="txn_over").amount_refund_reserved == 6000

    # once finance has settled it, the migration applies
    payments.filter(public_id="txn_over").update(amount_refund_reserved=5000)
    _migrate(RULE)
    assert RULE[0] in MigrationExecutor(connection).loader.applied_migrations
