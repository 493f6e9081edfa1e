"""Every dashboard list (payments, refunds, chargebacks, subscriptions, invoices, payouts)
opens with its filters, exports its rows and opens each row's timeline."""

import csv
import io

import pytest
from django.urls import reverse

from backoffice.dashboard.lists import DASHBOARD_LISTS
from tests.backoffice.test_admin import a_row_for_every_model, make_transaction, merchant  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", list(DASHBOARD_LISTS), ids=lambda model: model._meta.label)
def test_the_list_exports_its_rows_and_each_row_opens_its_timeline(mfa_admin_client, a_row_for_every_model, model):  # noqa: F811
    opts = model._meta
    listing = mfa_admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert listing.status_code == 200 and 'id="export-csv"' in listing.content.decode()

    response = mfa_admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_export_csv"))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {row["id"] for row in rows} == set(model.objects.values_list("public_id", flat=True))

    obj = model.objects.order_by("id").first()
    timeline = mfa_admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_timeline", args=[obj.pk]))
    assert timeline.status_code == 200
    assert f"Timeline of {obj.public_id}" in timeline.content.decode() and 'data-kind="created"' in timeline.content.decode()
