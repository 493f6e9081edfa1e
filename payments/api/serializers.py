"""Input serializers of the merchant payments API (snake_case here; the camelCase parser
translates at the edge). Outputs live in payments.representations."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.serializers import (
    CreatedRangeMixin,
    CurrencyField,
    EmailAddressField,
    InputSerializer,
    LivemodeFilterMixin,
    MetadataField,
    RawField,
    StatusListMixin,
    StrictIntegerField,
    TokenField,
    validate_amount,
)
from core.money import MAX_AMOUNT
from gateways.registry import GATEWAY_CLASSES  # names only: no gateway module is imported
from payments.models import CaptureMethod, TransactionStatus


@extend_schema_field({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}],
                      "description": "The IPv4 or IPv6 address the customer pays from."})
class IpAddressField(serializers.IPAddressField):
    """An IPv4 or IPv6 address (as the schema says: formats ipv4 or ipv6)."""

    def __init__(self, **kwargs):
        super().__init__(protocol="both", **kwargs)


class TransactionCreateInput(InputSerializer):
    amount = RawField()
    currency = CurrencyField()
    payment_method = TokenField()
    capture_method = serializers.ChoiceField(choices=CaptureMethod.values, default=CaptureMethod.AUTOMATIC)
    customer = serializers.RegexField(r"^cus_[A-Za-z0-9]+$", max_length=40, required=False,
                                      error_messages={"invalid": "Must be a customer id (cus_…)."})
    description = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    metadata = MetadataField(required=False, default=dict)
    # The paying customer, for fraud screening: their email (else the customer's), the IP
    # address they pay from (else the request's client behind the trusted proxies) and the
    # billing address's country.
    email = EmailAddressField(max_length=254, required=False)
    client_ip = IpAddressField(required=False)
    billing_country = serializers.RegexField(r"^[A-Za-z]{2}$", required=False,
                                             error_messages={"invalid": "Must be a two-letter country code (ISO 3166-1)."})

    def validate(self, attrs):
        attrs["amount"] = validate_amount(attrs.get("amount"), currency=attrs.get("currency"))
        return attrs


class TransactionCaptureInput(InputSerializer):
    amount = StrictIntegerField(min_value=1, max_value=MAX_AMOUNT, required=False)


class TransactionListFilters(LivemodeFilterMixin, StatusListMixin, CreatedRangeMixin, InputSerializer):
    status = serializers.ListField(child=serializers.ChoiceField(choices=TransactionStatus.values), required=False)
    gateway = serializers.ChoiceField(choices=list(GATEWAY_CLASSES), required=False)
    customer = serializers.CharField(max_length=40, required=False)
    merchant = serializers.CharField(max_length=40, required=False)  # staff only


class CustomerCreateInput(InputSerializer):
    email = EmailAddressField(max_length=254, required=False, allow_blank=True, default="")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    metadata = MetadataField(required=False, default=dict)


class CustomerListFilters(LivemodeFilterMixin, CreatedRangeMixin, InputSerializer):
    email = EmailAddressField(required=False)


class PaymentMethodAttachInput(InputSerializer):
    token = TokenField()
    gateway = serializers.ChoiceField(choices=list(GATEWAY_CLASSES), required=False)
    brand = serializers.RegexField(r"^[a-z_]{1,20}$", required=False, allow_blank=True, default="")
    last4 = serializers.RegexField(r"^[0-9]{4}$", required=False, allow_blank=True, default="",
                                   error_messages={"invalid": "last4 must be exactly 4 digits."})
