"""When a credential was last used: recorded at a one-minute resolution, with one write per
credential per minute and none for the other requests of that minute."""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.authentication import LAST_USED_RESOLUTION
from accounts.models import ApiKey, StaffToken

pytestmark = pytest.mark.django_db

URL = "/payment/transactions"


def credential_writes(client, model) -> int:
    table = model._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        assert client.get(URL).status_code == 200
    return sum(1 for query in queries.captured_queries if query["sql"].startswith(f'UPDATE "{table}"'))


@pytest.mark.parametrize("kind", ["api_key", "staff_token"])
def test_last_use_is_written_once_a_minute_and_not_by_the_requests_in_between(kind, merchant_a, staff_client):
    client, model = (merchant_a.client, ApiKey) if kind == "api_key" else (staff_client("support"), StaffToken)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        # the first use is recorded
        assert credential_writes(client, model) == 1
        assert model.objects.get().last_used_at == start
        # the other requests of that minute write nothing
        assert credential_writes(client, model) == 0
    with time_machine.travel(start + LAST_USED_RESOLUTION - dt.timedelta(seconds=1), tick=False):
        assert credential_writes(client, model) == 0
    # once the recorded time is older than the resolution, the next request records it again
    later = start + LAST_USED_RESOLUTION + dt.timedelta(seconds=1)
    with time_machine.travel(later, tick=False):
        assert credential_writes(client, model) == 1
        assert model.objects.get().last_used_at == later
