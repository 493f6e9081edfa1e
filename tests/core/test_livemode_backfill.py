"""The livemode migrations mark what existed before modes did: refunds, customers, saved
methods and events of live payments live, webhook endpoints of merchants with a live key
live, and everything else test."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("payments", "0008_attempt_unknown_idx"), ("refunds", "0004_chargeback_on_refunded_funds"),
          ("subscriptions", "0003_idempotency_record"), ("webhooks", "0004_idempotency_record")]
AFTER = [("payments", "0009_livemode"), ("refunds", "0005_livemode"), ("subscriptions", "0004_livemode"),
         ("webhooks", "0005_livemode")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _rows_before_modes(apps) -> None:
    model = apps.get_model
    live, test = (model("accounts", "Merchant").objects.create(name=name, public_id=f"mer_{name}") for name in ("live", "test"))
    model("accounts", "ApiKey").objects.create(merchant=live, environment="live", key_hash="h1", prefix="fp_live_1")
    model("accounts", "ApiKey").objects.create(merchant=test, environment="test", key_hash="h2", prefix="fp_test_1")
    customer, other = (model("payments", "Customer").objects.create(merchant=live, public_id=f"cus_{n}") for n in ("paid", "idle"))
    model("payments", "PaymentMethod").objects.create(merchant=live, customer=customer, gateway="simulator",
                                                      gateway_token="t", public_id="pm_paid")
    txn = model("payments", "Transaction").objects.create(
        merchant=live, customer=customer, livemode=True, amount=100, currency="USD", public_id="txn_live",
        payment_method="pm_card_visa", payment_method_token="pm_card_visa", status="completed", amount_captured=100,
        amount_refund_reserved=50,
    )
    model("refunds", "Refund").objects.create(transaction=txn, merchant=live, amount=50, currency="USD", public_id="re_live",
                                              initiated_by_type="api", initiated_by_id="x", holds_reservation=True)
    events = model("webhooks", "OutboxEvent").objects
    events.create(merchant=live, type="refund.succeeded", payload={"id": "re_live"}, public_id="evt_refund")
    events.create(merchant=live, type="transaction.completed", payload={"id": "txn_live", "livemode": True}, public_id="evt_txn")
    events.create(merchant=test, type="transaction.completed", payload={"id": "txn_t", "livemode": False}, public_id="evt_test")
    endpoints = model("webhooks", "WebhookEndpoint").objects
    endpoints.create(merchant=live, url="https://live.example", secret="s", public_id="we_live")
    endpoints.create(merchant=test, url="https://test.example", secret="s", public_id="we_test")


@pytest.fixture
def _latest_schema_afterwards():
    """The test moves the schema back in time; later tests on this database need every
    migration applied again."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_latest_schema_afterwards")
def test_the_migrations_mark_existing_rows_with_the_mode_of_what_they_belong_to():
    try:
        _rows_before_modes(_migrate(BEFORE))
    finally:
        apps = _migrate(AFTER)

    def modes(app, name, field="public_id"):
        return dict(apps.get_model(app, name).objects.values_list(field, "livemode"))

    assert modes("payments", "Customer") == {"cus_paid": True, "cus_idle": False}
    assert modes("payments", "PaymentMethod") == {"pm_paid": True}
    assert modes("refunds", "Refund") == {"re_live": True}
    assert modes("webhooks", "OutboxEvent") == {"evt_refund": True, "evt_txn": True, "evt_test": False}
    assert modes("webhooks", "WebhookEndpoint") == {"we_live": True, "we_test": False}
