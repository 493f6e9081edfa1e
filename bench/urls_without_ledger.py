"""Row 7's baseline: the bench URLs, served by a gunicorn whose create-payment path skips
the ledger posting. Loading this URL configuration (each worker does, before its first
request) replaces the capture posting the payment services call with a no-op, so that the
row measures exactly what posting costs on the create-payment path."""

from bench.urls import handler400, handler403, handler404, handler500, urlpatterns  # noqa: F401
from payments.services import settlement, transactions


def _posting_skipped(txn, *, gateway_fee) -> None:
    """The baseline posts nothing."""


transactions.transaction_post_capture = _posting_skipped
settlement.transaction_post_capture = _posting_skipped
