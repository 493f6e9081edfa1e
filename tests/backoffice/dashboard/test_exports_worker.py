"""An export of 150,000 payments goes through the Celery path: a real worker (its own
process, a private queue) writes the file while its memory stays flat (its peak RSS, read
from /proc, grows by a bounded amount over a ten-row export's), and the file's row count
and amount sums are those of the filtered set."""

import csv
import os
import time
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Count, Sum
from django.urls import reverse

from backoffice.dashboard.exports.models import ExportJob
from core.actors import Actor
from payments.models import Transaction
from payments.services.transactions import PaymentInput, transaction_create
from tests.support.processes import start_celery_worker, stop_process

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 150_000
# What the worker may grow by while writing 150k rows (each row's cells are ~300 bytes of
# Python objects: holding the rows would take well over 100 MB).
RSS_GROWTH_LIMIT_KB = 40 * 1024
EXPORT = reverse("admin:payments_transaction_export_csv")


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc")


def copy_payment(template: Transaction, *, rows: int, currency: str) -> None:
    """`rows` completed payments copied from `template` in one INSERT … SELECT: amounts
    100 + n % 900 minor units, in `currency`."""
    columns = [f.column for f in Transaction._meta.concrete_fields if f.column != "id"]
    varied = {
        "public_id": "%s || g", "amount": "100 + g %% 900", "amount_captured": "100 + g %% 900",
        "currency": "%s", "idempotency_record_id": "NULL", "created_at": "now() - g * interval '1 second'",
    }
    select = ", ".join(varied.get(column, f't."{column}"') for column in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO transactions ({", ".join(chr(34) + c + chr(34) for c in columns)}) '
            f"SELECT {select} FROM transactions t, generate_series(1, %s) g WHERE t.id = %s",
            [f"txn_bulk_{currency.lower()}_", currency, rows, template.pk],
        )


def wait_until_ready(job_id: int, seconds: float = 300) -> ExportJob:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = ExportJob.objects.get(pk=job_id)
        if job.status in ("ready", "failed"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"export {job_id} did not finish: {ExportJob.objects.get(pk=job_id).status}")


def read_csv(path: Path) -> tuple[int, int]:
    count = total = 0
    with open(path, encoding="utf-8", newline="") as rows:
        for row in csv.DictReader(rows):
            count += 1
            total += int(row["amount_minor"])
    return count, total


def test_a_150k_row_export_is_written_by_a_real_worker_in_flat_memory(
    merchant_a, role_client, settings, tmp_path,
):
    # given 150k EUR payments (and a few USD ones the filter leaves out)
    template = transaction_create(merchant=merchant_a.merchant, actor=Actor.system("test"),
                                  payment=PaymentInput(amount=1000, currency="USD", payment_method="pm_card_visa"))
    copy_payment(template, rows=ROWS, currency="EUR")
    copy_payment(template, rows=10, currency="GBP")
    queue = f"test-exports-{os.getpid()}-{time.monotonic_ns()}"
    settings.FLOWPAY_EXPORT_QUEUE = queue
    settings.FLOWPAY_EXPORT_DIR = tmp_path
    settings.FLOWPAY_EXPORT_STREAM_MAX_ROWS = 5  # the small warm-up export goes through the worker too
    client = role_client("finance")
    worker = start_celery_worker(queue, FLOWPAY_EXPORT_DIR=str(tmp_path))
    try:
        # a ten-row export first: the worker's peak with Django loaded and one export done
        assert client.get(f"{EXPORT}?currency__exact=GBP").status_code == 302
        warm = wait_until_ready(ExportJob.objects.get(query_string="currency__exact=GBP").pk)
        assert (warm.status, warm.row_count) == ("ready", 10)
        baseline = peak_rss_kb(worker.pid)

        # when finance exports the 150k EUR payments
        response = client.get(f"{EXPORT}?currency__exact=EUR")
        assert response.status_code == 302 and response["Location"] == reverse("admin:dashboard_exports")
        job = wait_until_ready(ExportJob.objects.get(query_string="currency__exact=EUR").pk)
        peak = peak_rss_kb(worker.pid)
    finally:
        stop_process(worker)

    # then the file holds every row of the filtered set, and the worker's memory stayed flat
    assert job.status == "ready", job.error
    rows, total = read_csv(tmp_path / job.file_name)
    expected_total = sum(100 + n % 900 for n in range(1, ROWS + 1))
    assert (rows, total) == (ROWS, expected_total)
    in_db = Transaction.objects.filter(currency="EUR").aggregate(count=Count("id"), total=Sum("amount"))
    assert (in_db["count"], in_db["total"]) == (rows, total) == (job.row_count, total)
    print(f"150k-row export: worker peak RSS {baseline // 1024} MB before, {peak // 1024} MB after")
    assert peak - baseline < RSS_GROWTH_LIMIT_KB, f"worker peak RSS grew by {(peak - baseline) // 1024} MB"
