"""The read replica (DATABASE_REPLICA_URL, core/db_routing.py): report selectors read it,
writes and reads inside a transaction on the primary never go there.

The replica here is a second connection alias, `replica`, to the test database through a
read-only session (default_transaction_read_only, as production configures it): a real
second PostgreSQL connection, on which any write fails."""

import copy
import datetime as dt
import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connections, transaction
from django.db.utils import load_backend
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.actors import Actor
from core.db_routing import REPLICA, replica_reads
from payments.models import Customer, Transaction
from payments.selectors import payment_success_counts, transactions_failed_summary

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def replica(monkeypatch):
    """The `replica` alias for this test: configured (settings.DATABASES, which the router
    reads) and connected (a connection of its own, to the test database, read-only)."""
    alias = copy.deepcopy(connections["default"].settings_dict)
    options = alias.get("OPTIONS", {})
    alias["OPTIONS"] = {**options, "options": f"{options.get('options', '')} -c default_transaction_read_only=on".strip()}
    alias["CONN_MAX_AGE"] = None
    monkeypatch.setitem(settings.DATABASES, REPLICA, alias)
    wrapper = load_backend(alias["ENGINE"]).DatabaseWrapper(alias, REPLICA)
    # Connected here, before the test: Django's test case refuses to open connections of
    # aliases the test case does not list, and pytest-django lists only those that exist
    # when the session starts (the replica is this module's own).
    wrapper.connect()
    connections[REPLICA] = wrapper
    yield wrapper
    wrapper.close()
    delattr(connections._connections, REPLICA)


def _tables(queries) -> str:
    return " ".join(query["sql"] for query in queries)


def test_a_report_selector_reads_the_replica_and_sees_committed_rows(replica, merchant_a, make_payment):
    make_payment(merchant_a, amount=1000)
    make_payment(merchant_a, amount=2000, payment_method="pm_card_chargeDeclined")
    since = timezone.now() - dt.timedelta(hours=1)
    with CaptureQueriesContext(replica) as on_replica, CaptureQueriesContext(connections["default"]) as on_primary:
        rows = payment_success_counts(since=since, by_gateway=False)
    assert (sum(row["succeeded"] for row in rows), sum(row["failed"] for row in rows)) == (1, 1)
    assert "transactions" in _tables(on_replica.captured_queries)
    assert "transactions" not in _tables(on_primary.captured_queries)


def test_the_replica_alias_is_a_read_only_session(replica, merchant_a, make_payment):
    # a second connection on which a write is impossible, so a routing mistake cannot write there
    make_payment(merchant_a)
    with pytest.raises(DatabaseError, match="read-only"):
        Transaction.objects.using(REPLICA).update(description="changed on the replica")
    assert not Transaction.objects.filter(description="changed on the replica").exists()


def test_inside_a_transaction_on_the_primary_marked_reads_stay_on_the_primary(replica, merchant_a, make_payment):
    since = timezone.now() - dt.timedelta(hours=1)
    with transaction.atomic():
        make_payment(merchant_a, amount=1500)  # not committed: only this transaction sees it
        with CaptureQueriesContext(replica) as on_replica:
            rows = payment_success_counts(since=since, by_gateway=False)
        assert sum(row["succeeded"] for row in rows) == 1  # read on the primary, inside the transaction
        assert on_replica.captured_queries == []


def test_writes_marked_for_the_replica_go_to_the_primary(replica, merchant_a):
    from payments.services.customers import customer_create

    with replica_reads(), CaptureQueriesContext(connections["default"]) as on_primary:
        customer = customer_create(merchant=merchant_a.merchant, livemode=False, email="", name="Ana", metadata={},
                                   actor=Actor.system("test"), idempotency_record_id=None)
    assert Customer.objects.filter(pk=customer.pk).exists()
    assert "INSERT" in _tables(on_primary.captured_queries)


def test_unmarked_selectors_read_the_primary(replica, merchant_a, make_payment):
    make_payment(merchant_a, payment_method="pm_card_chargeDeclined")
    with CaptureQueriesContext(replica) as on_replica:
        summary = transactions_failed_summary(since=timezone.now() - dt.timedelta(hours=1))
    assert summary and on_replica.captured_queries == []


def test_the_pci_report_reads_its_figures_from_the_replica_and_verifies_the_chain_on_the_primary(replica, merchant_a):
    month = timezone.now().strftime("%Y-%m")
    out = StringIO()
    with CaptureQueriesContext(replica) as on_replica, CaptureQueriesContext(connections["default"]) as on_primary:
        try:
            call_command("generate_pci_audit_report", f"--month={month}", "--format=json", stdout=out)
        except SystemExit:
            pass  # exit 1 flags an overdue gateway key in this environment; the figures are printed all the same
    report = json.loads(out.getvalue())
    assert report["auditEntries"] >= 2  # the merchant and its API key
    assert "audit_entry" in _tables(on_replica.captured_queries)
    assert "audit_seal" in _tables(on_primary.captured_queries)
    assert "audit_seal" not in _tables(on_replica.captured_queries)


def test_without_a_replica_marked_reads_use_the_primary(merchant_a, make_payment):
    make_payment(merchant_a)
    assert REPLICA not in settings.DATABASES
    rows = payment_success_counts(since=timezone.now() - dt.timedelta(hours=1), by_gateway=False)
    assert sum(row["succeeded"] for row in rows) == 1


def test_database_replica_url_configures_a_read_only_alias_mirrored_in_tests():
    code = ("import django, json; django.setup(); from django.conf import settings;"
            "r = settings.DATABASES['replica']; print(json.dumps([r['HOST'], r['NAME'], r['OPTIONS'], r['TEST'],"
            "settings.DATABASE_ROUTERS]))")
    env = {**os.environ, "DATABASE_REPLICA_URL": "postgres://reader:pw@replica.db:5432/payments"}
    result = subprocess.run([sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True,
                            timeout=60, check=True)
    host, name, options, test, routers = json.loads(result.stdout.strip().splitlines()[-1])
    assert (host, name) == ("replica.db", "payments")
    assert options["options"] == "-c search_path=payments,public -c default_transaction_read_only=on"
    assert test["MIRROR"] == "default"
    assert routers == ["core.db_routing.ReplicaRouter"]
