"""`reconcile_payments --file PATH`: a report in the gateway's own CSV format, copied into
PostgreSQL as it is read (never held in memory), its amounts converted with each currency's
exponent; a file that is not the format exits 2, names the line, and writes nothing."""

import csv
import datetime as dt
import io
import tracemalloc

import pytest

from core.actors import Actor
from reconciliation.models import ReconciliationRun
from reconciliation.services.runs import reconciliation_run
from tests.support.reconciliation import (
    by_category,
    discrepancy_counts,
    reconcile,
    reconcile_failing,
    row_counts,
    settled_payment,
)

pytestmark = pytest.mark.django_db

DAY = dt.date(2023, 5, 15)
AT = dt.datetime(2023, 5, 15, 10, 30, tzinfo=dt.UTC)
ITEMIZED = ["balance_transaction_id", "created_utc", "available_on_utc", "currency", "gross", "fee", "net",
            "reporting_category", "source_id", "description", "payment_intent_id", "payment_metadata[flowpay_transaction]"]


def itemized(rows: list[dict], columns: list[str] = ITEMIZED) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({"created_utc": "2023-05-15 10:30:00", "available_on_utc": "2023-05-17 00:00:00",
                         "reporting_category": "charge", **row})
    return out.getvalue()


def write(tmp_path, text: str, name: str = "itemized.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_the_stripe_itemized_report_is_read_in_major_units_with_each_currency_s_exponent(tmp_path, merchant_a):
    usd = settled_payment(merchant_a.merchant, gateway="stripe", reference="pi_usd", amount=1999, settled_at=AT)
    jpy = settled_payment(merchant_a.merchant, gateway="stripe", reference="pi_jpy", amount=1999, currency="JPY", settled_at=AT)
    kwd = settled_payment(merchant_a.merchant, gateway="stripe", reference="pi_kwd", amount=1234, currency="KWD", settled_at=AT)
    path = write(tmp_path, itemized([
        {"balance_transaction_id": "txn_1", "currency": "usd", "gross": "19.99", "fee": "0.88", "source_id": "ch_1",
         "payment_intent_id": "pi_usd", "payment_metadata[flowpay_transaction]": usd.public_id},
        {"balance_transaction_id": "txn_2", "currency": "jpy", "gross": "1999", "fee": "72", "source_id": "ch_2",
         "payment_intent_id": "pi_jpy"},
        {"balance_transaction_id": "txn_3", "currency": "kwd", "gross": "1.234", "fee": "0.040", "source_id": "ch_3",
         "payment_intent_id": "pi_kwd"},
        {"balance_transaction_id": "txn_4", "currency": "usd", "gross": "-5.00", "fee": "0", "source_id": "re_1",
         "payment_intent_id": "pi_usd", "reporting_category": "refund"},
        {"balance_transaction_id": "txn_5", "currency": "usd", "gross": "-1000.00", "fee": "0", "source_id": "po_1",
         "reporting_category": "payout"},
    ]))

    document = reconcile("stripe", DAY, "--file", path, expect=1)

    assert document["counts"]["matched"] == 3 and document["gatewayRows"] == 5
    (refund,) = by_category(document)["status_mismatch"]  # refunded at Stripe, not in FlowPay
    assert (refund["localReference"], refund["gatewayAmount"], refund["gatewayReference"]) == (usd.public_id, -500, "re_1")
    gateway = document["totals"]["gateway"]
    assert gateway["JPY"]["charge"] == {"count": 1, "gross": 1999, "fee": 72}
    assert gateway["KWD"]["charge"] == {"count": 1, "gross": 1234, "fee": 40}
    assert gateway["USD"]["payout"]["gross"] == -100000
    run = ReconciliationRun.objects.get(public_id=document["runId"])
    assert (run.source, run.source_name) == ("file", "itemized.csv")
    assert {jpy.public_id, kwd.public_id}.isdisjoint({i["localReference"] for i in document["items"]})


def test_the_simulator_report_file_is_its_own_format(tmp_path, merchant_a):
    settled_payment(merchant_a.merchant, gateway="simulator", reference="sim_ch_1", amount=500, settled_at=AT)
    path = write(tmp_path, "key,reference,type,amount,fee,currency,created,status,parent_reference,flowpay_reference,"
                           "idempotency_key\nbt_1,sim_ch_1,charge,500,45,USD,2023-05-15T10:30:00+00:00,succeeded,,,\n"
                           "bt_2,sim_ch_2,charge,900,56,USD,2023-05-15T11:00:00+00:00,succeeded,,,\n", name="sim.csv")

    document = reconcile("simulator", DAY, "--file", path, expect=1)

    assert discrepancy_counts(document) == {"missing_locally": 1} and document["counts"]["matched"] == 1


@pytest.mark.parametrize(("rows", "message"), [
    ([{"balance_transaction_id": "txn_1", "currency": "usd", "gross": "19.999", "fee": "0"}],
     "line 2 has an amount in column gross finer than its currency's minor unit"),
    ([{"balance_transaction_id": "txn_1", "currency": "usd", "gross": "1", "fee": "0"},
      {"balance_transaction_id": "txn_2", "currency": "usx", "gross": "1", "fee": "0"}], "line 3 has an unknown currency"),
    ([{"balance_transaction_id": "txn_1", "currency": "usd", "gross": "12,50", "fee": "0"}],
     "line 2 has an unreadable amount in column gross"),
    ([{"balance_transaction_id": "txn_1", "currency": "usd", "gross": "1", "fee": "0", "created_utc": "15/05/2023"}],
     "line 2 has an unreadable time in column created_utc"),
])
def test_a_file_that_is_not_the_format_exits_2_names_the_line_and_writes_nothing(tmp_path, rows, message):
    path = write(tmp_path, itemized(rows))
    before = row_counts()

    error = reconcile_failing("stripe", DAY, "--file", path)

    assert message in str(error)
    assert row_counts() == before


def test_a_row_listed_twice_in_a_file_is_a_duplicate_settlement(tmp_path, merchant_a):
    settled_payment(merchant_a.merchant, gateway="stripe", reference="pi_twice", amount=1500, settled_at=AT)
    row = {"balance_transaction_id": "txn_1", "currency": "usd", "gross": "15.00", "fee": "0", "source_id": "ch_1",
           "payment_intent_id": "pi_twice"}
    path = write(tmp_path, itemized([row, row]))

    document = reconcile("stripe", DAY, "--file", path, expect=1)

    (duplicate,) = by_category(document)["duplicate_at_gateway"]
    assert (duplicate["gatewayReference"], duplicate["gatewayRows"], duplicate["gatewayAmount"]) == ("pi_twice", ["txn_1"], 1500)
    assert document["counts"]["matched"] == 1


def test_a_file_without_the_format_s_columns_or_with_a_broken_row_exits_2(tmp_path):
    missing = write(tmp_path, "id,amount\n1,2\n", name="other.csv")
    broken = write(tmp_path, itemized([{"balance_transaction_id": "txn_1", "currency": "usd", "gross": "1", "fee": "0"}])
                   + "txn_2,2023-05-15 10:00:00,x\n", name="broken.csv")

    assert "its header lacks" in str(reconcile_failing("stripe", DAY, "--file", missing))
    assert "line 3" in str(reconcile_failing("stripe", DAY, "--file", broken))
    assert "No such file" in str(reconcile_failing("stripe", DAY, "--file", str(tmp_path / "absent.csv")))
    assert not ReconciliationRun.objects.exists()


def test_a_large_file_is_streamed_not_held_in_memory(tmp_path):
    path = tmp_path / "large.csv"
    rows = 200_000
    with path.open("w", encoding="utf-8") as out:
        out.write(",".join(ITEMIZED) + "\n")
        for n in range(rows):
            out.write(f"txn_{n:07d},2023-05-15 10:30:00,2023-05-17 00:00:00,usd,-{n % 997}.{n % 100:02d},0,0,payout,"
                      f"po_{n},,,\n")
    size = path.stat().st_size

    tracemalloc.start()
    with path.open("rb") as stream:
        report = reconciliation_run(gateway="stripe", settlement_date=DAY, actor=Actor.system("test"), file=stream,
                                    file_name="large.csv")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert report.gateway_rows == rows and report.discrepancies == 0
    assert size > 15_000_000 and peak < 8_000_000, (size, peak)


def test_a_partial_capture_reversal_in_a_file_is_added_to_its_charge(tmp_path, merchant_a):
    settled_payment(merchant_a.merchant, gateway="stripe", reference="ch_partial", amount=1000, settled_at=AT)
    path = write(tmp_path, itemized([
        {"balance_transaction_id": "txn_1", "currency": "usd", "gross": "15.00", "fee": "0", "source_id": "ch_partial"},
        {"balance_transaction_id": "txn_2", "currency": "usd", "gross": "-5.00", "fee": "0", "source_id": "ch_partial",
         "reporting_category": "partial_capture_reversal"},
    ]))

    document = reconcile("stripe", DAY, "--file", path, expect=0)

    assert document["counts"]["matched"] == 1
    assert discrepancy_counts(document) == {}


def test_a_reference_listed_twice_that_flowpay_does_not_know_is_missing_once_and_duplicated_once(tmp_path, merchant_a):
    row = {"balance_transaction_id": "txn_1", "currency": "usd", "gross": "15.00", "fee": "0", "source_id": "ch_1",
           "payment_intent_id": "pi_unknown"}
    path = write(tmp_path, itemized([row, {**row, "balance_transaction_id": "txn_2"}]))

    document = reconcile("stripe", DAY, "--file", path, expect=1)

    assert discrepancy_counts(document) == {"missing_locally": 1, "duplicate_at_gateway": 1}
    assert by_category(document)["duplicate_at_gateway"][0]["gatewayRows"] == ["txn_2"]
