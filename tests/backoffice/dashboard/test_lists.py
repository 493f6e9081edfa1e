"""The dashboard's lists: the filters answer Django admin's lookup names, the export holds
the whole filtered set (not the page) with amounts in minor units and decimals and UTC
times, a large export is queued for a worker and downloaded by its requester only, and a
row's timeline is one page of a constant number of queries."""

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from backoffice.dashboard.exports.models import ExportJob
from backoffice.dashboard.exports.services import export_job_run
from core.actors import Actor
from payments.models import Transaction
from payments.services.customers import customer_create
from payments.services.transactions import PaymentInput, transaction_create
from refunds.services.chargebacks import chargeback_create
from refunds.services.create import refund_create

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
LIST = reverse("admin:payments_transaction_changelist")
EXPORT = reverse("admin:payments_transaction_export_csv")


@pytest.fixture
def payments(merchant_a, merchant_b):
    """Nine payments: USD and JPY, two merchants, two customers, completed and declined."""
    alice = customer_create(merchant=merchant_a.merchant, email="alice@example.com", actor=SYSTEM)
    bob = customer_create(merchant=merchant_b.merchant, email="bob@example.com", actor=SYSTEM)
    made = []
    for account, customer, amount, currency, method in [
        (merchant_a, alice, 1999, "USD", "pm_card_visa"), (merchant_a, alice, 500, "USD", "pm_card_visa"),
        (merchant_a, None, 120000, "USD", "pm_card_visa"), (merchant_a, alice, 3000, "JPY", "pm_card_visa"),
        (merchant_a, None, 2500, "USD", "pm_card_chargeDeclined"), (merchant_b, bob, 7000, "USD", "pm_card_visa"),
        (merchant_b, bob, 1, "JPY", "pm_card_visa"), (merchant_b, None, 4200, "USD", "pm_card_visa"),
        (merchant_b, bob, 999, "USD", "pm_card_chargeDeclined"),
    ]:
        made.append(transaction_create(
            merchant=account.merchant, actor=SYSTEM,
            payment=PaymentInput(amount=amount, currency=currency, payment_method=method,
                                 customer=customer.public_id if customer else None),
        ))
    return made


def csv_rows(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_filters_use_the_admin_lookup_names_and_the_export_is_the_whole_filtered_set(role_client, payments, settings):
    settings.FLOWPAY_EXPORT_STREAM_MAX_ROWS = 1000
    client = role_client("finance")
    query = "status__exact=completed&currency__exact=USD&amount__gte=1000"
    # the expected set, from the payments made (not from any selector)
    expected = {p.public_id for p in payments if p.status == "completed" and p.currency == "USD" and p.amount >= 1000}
    assert len(expected) == 4

    page = client.get(f"{LIST}?{query}")
    assert page.status_code == 200
    shown = {p.public_id for p in payments if p.public_id in page.content.decode()}
    assert shown == expected

    # the export of the same filters: every row, even when the list pages
    response = client.get(f"{EXPORT}?{query}")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = csv_rows(response)
    assert {row["id"] for row in rows} == expected
    assert sum(int(row["amount_minor"]) for row in rows) == sum(p.amount for p in payments if p.public_id in expected)
    entry = AuditEntry.objects.get(action="export.request")
    assert entry.details["delivery"] == "streamed" and entry.details["rows"] == 4 and entry.actor_id == "finance-dash"


def test_export_renders_money_in_minor_units_and_decimals_and_times_in_utc(role_client, payments):
    rows = {row["id"]: row for row in csv_rows(role_client("finance").get(f"{EXPORT}?status__exact=completed"))}
    usd = next(p for p in payments if p.amount == 1999)
    jpy = next(p for p in payments if p.amount == 3000)
    assert (rows[usd.public_id]["amount_minor"], rows[usd.public_id]["amount_decimal"], rows[usd.public_id]["currency"]) == (
        "1999", "19.99", "USD")
    assert (rows[jpy.public_id]["amount_minor"], rows[jpy.public_id]["amount_decimal"]) == ("3000", "3000")
    assert rows[usd.public_id]["customer_email"] == "alice@example.com"
    assert rows[usd.public_id]["created_at"].endswith("Z") and "T" in rows[usd.public_id]["created_at"]


@pytest.mark.parametrize(("query", "expected_count"), [
    ("customer__email__icontains=bob@example.com", 3),
    ("merchant__id__exact={merchant_b}", 4),
    ("gateway__exact=simulator&currency__exact=JPY", 2),
    ("amount_from=500&amount_to=2000", 3),
    ("amount__lte=999", 3),
])
def test_each_filter_narrows_the_export(role_client, payments, merchant_b, query, expected_count):
    query = query.format(merchant_b=merchant_b.merchant.pk)
    rows = csv_rows(role_client("support").get(f"{EXPORT}?{query}"))
    assert len(rows) == expected_count


def test_search_finds_a_payment_by_its_id_gateway_reference_or_customer_email(role_client, payments):
    client = role_client("support")
    target = next(p for p in payments if p.amount == 7000)
    for term in [target.public_id, target.gateway_reference, "bob@example.com"]:
        ids = {row["id"] for row in csv_rows(client.get(EXPORT, {"q": term}))}
        assert target.public_id in ids, term
    assert {row["id"] for row in csv_rows(client.get(EXPORT, {"q": target.public_id}))} == {target.public_id}


def test_a_filter_the_list_refuses_exports_nothing(role_client, payments):
    response = role_client("finance").get(f"{EXPORT}?amount__gte=not-a-number")
    assert response.status_code == 302 and response["Location"].startswith(LIST)
    assert not AuditEntry.objects.filter(action="export.request").exists()


def test_an_export_above_the_stream_limit_is_queued_and_only_its_requester_downloads_it(
    role_client, payments, settings, tmp_path, django_capture_on_commit_callbacks, monkeypatch,
):
    settings.FLOWPAY_EXPORT_STREAM_MAX_ROWS = 2
    settings.FLOWPAY_EXPORT_DIR = tmp_path
    queued = []
    monkeypatch.setattr("backoffice.dashboard.exports.services._queue", queued.append)
    finance = role_client("finance")
    with django_capture_on_commit_callbacks(execute=True):
        response = finance.get(f"{EXPORT}?status__exact=completed")
    assert response.status_code == 302 and response["Location"] == reverse("admin:dashboard_exports")
    job = ExportJob.objects.get()
    assert queued == [job.pk] and job.status == "queued"
    assert AuditEntry.objects.get(action="export.request").details["delivery"] == "file"

    export_job_run(export_id=job.pk)  # as the worker does (a real one: test_exports_worker.py)
    job.refresh_from_db()
    expected = [p for p in payments if p.status == "completed"]
    assert (job.status, job.row_count) == ("ready", len(expected))
    assert AuditEntry.objects.filter(action="export.complete", object_id=job.public_id, actor_type="worker").exists()
    assert job.public_id in finance.get(reverse("admin:dashboard_exports")).content.decode()

    download = reverse("admin:dashboard_export_download", args=[job.public_id])
    answer = finance.get(download)
    assert answer.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(answer.streaming_content).decode())))
    assert {row["id"] for row in rows} == {p.public_id for p in expected}
    assert AuditEntry.objects.filter(action="export.download", object_id=job.public_id).count() == 1
    # another staff user, even an admin, gets nothing
    assert role_client("admin").get(download).status_code == 404


def test_running_an_export_twice_writes_it_once(role_client, payments, settings, tmp_path, monkeypatch,
                                                django_capture_on_commit_callbacks):
    settings.FLOWPAY_EXPORT_STREAM_MAX_ROWS = 1
    settings.FLOWPAY_EXPORT_DIR = tmp_path
    monkeypatch.setattr("backoffice.dashboard.exports.services._queue", lambda pk: None)
    role_client("finance").get(EXPORT)
    job = ExportJob.objects.get()
    export_job_run(export_id=job.pk)
    export_job_run(export_id=job.pk)  # a redelivered task
    assert AuditEntry.objects.filter(action="export.complete").count() == 1


def test_an_export_left_running_by_a_dead_worker_is_taken_over(role_client, payments, settings, tmp_path, monkeypatch):
    settings.FLOWPAY_EXPORT_STREAM_MAX_ROWS = 1
    settings.FLOWPAY_EXPORT_DIR = tmp_path
    monkeypatch.setattr("backoffice.dashboard.exports.services._queue", lambda pk: None)
    role_client("finance").get(EXPORT)
    job = ExportJob.objects.get()
    ExportJob.objects.filter(pk=job.pk).update(status="running", started_at=timezone.now() - dt.timedelta(minutes=30))
    assert export_job_run(export_id=job.pk).status == "running"  # a live claim is left alone
    ExportJob.objects.filter(pk=job.pk).update(started_at=timezone.now() - dt.timedelta(hours=2))
    job = export_job_run(export_id=job.pk)
    assert (job.status, job.row_count) == ("ready", len(payments))


def _payment_with(merchant_a, refunds: int) -> Transaction:
    txn = transaction_create(merchant=merchant_a.merchant, actor=SYSTEM,
                             payment=PaymentInput(amount=100000, currency="USD", payment_method="pm_card_visa"))
    for number in range(refunds):
        refund_create(transaction_id=txn.pk, amount=100 + number, reason="Customer service request", actor=SYSTEM)
    chargeback_create(transaction_id=txn.pk, chargeback_reference=f"CB-{txn.pk}", amount=500, reason="fraudulent",
                      actor=SYSTEM)
    return txn


def test_timeline_shows_attempts_transitions_refunds_and_disputes_in_order_in_constant_queries(
    role_client, merchant_a, django_assert_max_num_queries, monkeypatch,
):
    monkeypatch.setattr("refunds.services.create._dispatch", lambda **kwargs: None)  # refunds stay pending
    client = role_client("finance")
    small, large = _payment_with(merchant_a, refunds=1), _payment_with(merchant_a, refunds=6)

    def timeline(txn):
        return client.get(reverse("admin:payments_transaction_timeline", args=[txn.pk]))

    timeline(small)  # warm the session and the caches
    # The admin's sidebar asks each model's access of the user's roles (one small query each);
    # the timeline itself reads one query per kind of record.
    with django_assert_max_num_queries(70) as small_queries:
        timeline(small)
    with django_assert_max_num_queries(70) as large_queries:
        page = timeline(large)
    assert len(large_queries.captured_queries) == len(small_queries.captured_queries), "a query per refund (N+1)"
    html = page.content.decode()
    for refund in large.refunds.all():
        assert refund.public_id in html
    chargeback = large.chargebacks.get()
    attempt_at = html.index("Attempt 1: authorize")
    assert html.index("Payment created") < attempt_at < html.index(f"Chargeback {chargeback.public_id}")
    assert "transaction.create" in html or "transaction.completed" in html
