"""A transaction's JSON is built directly (payments.representations.transaction_representation)
for speed; it must stay exactly what TransactionOutput's declared fields, which are the
OpenAPI schema's, would render."""

import pytest
from rest_framework import serializers

from payments.models import Transaction
from payments.representations import TransactionOutput, transaction_representation

pytestmark = pytest.mark.django_db

NULL_WHEN_EMPTY = ("failure_code", "failure_message", "gateway_reference")


def declared_rendering(txn: Transaction) -> dict:
    """What DRF renders from TransactionOutput's declared fields (with the API's rule that an
    empty failure or reference is null)."""
    data = dict(serializers.Serializer.to_representation(TransactionOutput(), txn))
    return {**data, **{name: data[name] or None for name in NULL_WHEN_EMPTY}}


@pytest.mark.parametrize("payment_method, capture_method", [
    ("pm_card_visa", "automatic"),
    ("pm_card_visa", "manual"),
    ("pm_card_chargeDeclinedInsufficientFunds", "automatic"),
    ("pm_card_threeDSecure2Required", "automatic"),
])
def test_the_direct_rendering_is_the_declared_fields_rendering(merchant_a, make_payment, payment_method, capture_method):
    txn = make_payment(merchant_a, payment_method=payment_method, capture_method=capture_method)
    for instance in (txn, Transaction.objects.get(pk=txn.pk)):  # as the service leaves it, and as read back
        rendered = transaction_representation(instance)
        assert rendered == declared_rendering(instance)
        assert list(rendered) == list(TransactionOutput().fields)
        assert TransactionOutput(instance).data == rendered


def test_a_payment_with_a_customer_renders_its_customer(merchant_a):
    customer = merchant_a.client.post("/payment/customers", {"email": "ada@example.com"}, format="json").json()
    body = merchant_a.client.post(
        "/payment/transactions", {"amount": 500, "currency": "usd", "paymentMethod": "pm_card_visa", "customer": customer["id"],
                                  "metadata": {"order_id": "A-1"}}, format="json",
    ).json()
    txn = Transaction.objects.get(public_id=body["id"])
    assert body["customer"] == customer["id"] and body["metadata"] == {"order_id": "A-1"}
    assert transaction_representation(txn) == declared_rendering(txn)
