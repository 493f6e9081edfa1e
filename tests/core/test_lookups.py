"""Look-ups with their SQL built once (core.lookups) give the instances the ORM gives: every
field's value as the ORM converts it, the related object cached, None when absent."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.authentication import API_KEY_BY_DIGEST
from accounts.models import ApiKey
from core.idempotency import RECORD_BY_KEY
from core.lookups import UniqueLookup
from core.models import IdempotencyRecord

pytestmark = pytest.mark.django_db


def field_values(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def test_a_credential_and_its_merchant_are_the_orms_in_one_query(merchant_a):
    expected = ApiKey.objects.select_related("merchant").get(merchant=merchant_a.merchant)
    with CaptureQueriesContext(connection) as queries:
        found = API_KEY_BY_DIGEST.get(expected.key_hash)
        merchant = found.merchant  # cached: no second query
    assert len(queries.captured_queries) == 1
    assert field_values(found) == field_values(expected) and found.pk == expected.pk
    assert field_values(merchant) == field_values(expected.merchant)
    assert found._state.adding is False and found._state.db == "default"
    assert API_KEY_BY_DIGEST.get("0" * 64) is None


def test_a_record_with_a_json_body_reads_back_as_the_orm_reads_it():
    record = IdempotencyRecord.objects.create(
        scope="merchant:1", key="k-1", fingerprint="f", method="POST", path="/payment/transactions",
        locked_at=timezone.now(), status=IdempotencyRecord.Status.COMPLETED, response_status=201,
        response_body={"id": "txn_1", "amount": 100, "metadata": {"nested": [1, "two", None]}, "captured": True},
    )
    found = RECORD_BY_KEY.get("merchant:1", "k-1")
    assert field_values(found) == field_values(IdempotencyRecord.objects.get(pk=record.pk))
    assert found.response_body["metadata"] == {"nested": [1, "two", None]}
    assert RECORD_BY_KEY.get("merchant:1", "other") is None and RECORD_BY_KEY.get("merchant:2", "k-1") is None


def test_a_lookup_takes_one_value_per_key_field_and_only_non_null_relations():
    with pytest.raises(TypeError):
        RECORD_BY_KEY.get("merchant:1")
    with pytest.raises(ValueError):
        UniqueLookup(ApiKey, by=("key_hash",), related="label").get("x")
