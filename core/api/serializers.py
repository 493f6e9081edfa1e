"""Input-validation building blocks shared by every API: strict fields, unknown-field
rejection (no mass assignment), money and metadata rules."""

from django.core.validators import RegexValidator
from rest_framework import serializers

from core.errors import ErrorCode
from core.money import CURRENCY_EXPONENTS, MAX_AMOUNT, format_minor_units

METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500

# A regular expression (the same in Python and ECMA-262, OpenAPI's dialect) that text holds
# when it is not blank once DRF has trimmed it: a character str.strip() keeps. ECMA's \s
# lacks \x1c-\x1f and \x85, which Python strips, and has \ufeff, which Python keeps.
# An email address: what Django's EmailValidator accepts, or a little less (a dot-atom local
# part; a domain of labels, the last of 2 to 63 letters). EmailAddressField requires both,
# and the OpenAPI schema states this pattern, so that both say the same.
EMAIL_PATTERN = (
    r"^[-!#$%&'*+/=?^_`{}|~0-9A-Za-z]+(\.[-!#$%&'*+/=?^_`{}|~0-9A-Za-z]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z-]{0,61}[A-Za-z]$"
)
NOT_BLANK_PATTERN = "[^\\s\\x1c-\\x1f\\x85]|\\ufeff"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class InputSerializer(serializers.Serializer):
    """Rejects parameters it does not declare: `status` or `amountRefunded` in a create
    request is an error, never silently ignored or assigned."""

    # What validate() requires beyond each field's own rules, as JSON Schema keywords over the
    # camelCase body: merged into the request body's schema (core.api.schema), so that the
    # OpenAPI schema states every rule a body must satisfy.
    schema_constraints: dict = {}

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = [key for key in data if key not in self.fields or self.fields[key].read_only]
            if unknown:
                field = unknown[0]
                raise serializers.ValidationError(
                    {field: [serializers.ErrorDetail(f"Received unknown parameter: {_camel(str(field))}", code=ErrorCode.PARAMETER_UNKNOWN)]}
                )
            if self.context.get("query"):
                _require_query_flags(self.fields, data)
            else:
                _require_json_types(self.fields, data)
        return super().to_internal_value(data)


def _require_query_flags(fields, data: dict) -> None:
    """A flag in the query string is `true` or `false`, as documented; DRF would also read
    "yes", "1", "on" or an empty value (as null)."""
    for name, field in fields.items():
        if name in data and isinstance(field, serializers.BooleanField) and data[name] not in ("true", "false"):
            raise serializers.ValidationError({name: [serializers.ErrorDetail("Must be true or false.", code=ErrorCode.INVALID)]})


def _require_json_types(fields, data: dict) -> None:
    """In a JSON body, text parameters take strings and flags take true or false, nothing
    else: DRF's CharField would turn 42 into "42" and BooleanField "yes" or 1 into True,
    which the schema (type: string, type: boolean) does not allow. (Query parameters are
    text: validated_query marks its serializers, which read "true" as a flag.)"""
    for name, field in fields.items():
        value = data.get(name)
        if value is None:
            continue
        if isinstance(field, serializers.BooleanField) and not isinstance(value, bool):
            raise serializers.ValidationError({name: [serializers.ErrorDetail("Must be true or false.", code=ErrorCode.INVALID)]})
        texts = isinstance(field, serializers.ListField) and isinstance(field.child, serializers.CharField)
        if texts and isinstance(value, list):
            value = next((item for item in value if not isinstance(item, str)), "")  # the first item that is not text
        elif not isinstance(field, serializers.CharField):
            continue
        if not isinstance(value, str):
            raise serializers.ValidationError({name: [serializers.ErrorDetail("Must be a string.", code=ErrorCode.INVALID)]})


class StrictIntegerField(serializers.Field):
    """A JSON integer and nothing else: no floats, numeric strings or booleans."""

    default_error_messages = {
        "invalid": "Must be an integer.",
        "min_value": "Must be at least {min_value}.",
        "max_value": "Must be at most {max_value}.",
    }

    def __init__(self, *, min_value: int | None = None, max_value: int | None = None, **kwargs):
        self.min_value, self.max_value = min_value, max_value
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        if self.min_value is not None and data < self.min_value:
            self.fail("min_value", min_value=self.min_value)
        if self.max_value is not None and data > self.max_value:
            self.fail("max_value", max_value=self.max_value)
        return data

    def to_representation(self, value):
        return value


class CurrencyField(serializers.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 3)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Currency must be a three-letter ISO 4217 code such as 'usd'.", code=ErrorCode.INVALID)
        code = super().to_internal_value(data).upper()
        if code not in CURRENCY_EXPONENTS:
            raise serializers.ValidationError(
                f"Unknown currency '{data[:8]}': use a three-letter ISO 4217 code such as 'usd' or 'eur'.",
                code=ErrorCode.INVALID_CURRENCY,
            )
        return code


def validate_amount(value, *, currency: str | None, field: str = "amount", min_value: int = 1) -> int:
    """Amounts are integers in the currency's minor unit; say so precisely when they are not."""
    if currency in CURRENCY_EXPONENTS:
        unit_hint = (
            f"{currency} has {CURRENCY_EXPONENTS[currency]} decimals, so send 1999 for {format_minor_units(1999, currency)}"
        )
    else:
        unit_hint = "send 1999 for 19.99 USD"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise serializers.ValidationError({field: serializers.ErrorDetail(
            f"Amount must be an integer number of minor units; {unit_hint}", code=ErrorCode.INVALID_AMOUNT)})
    if isinstance(value, float):
        raise serializers.ValidationError({field: serializers.ErrorDetail(
            f"Amount must be an integer number of minor units, not a decimal ({value}); {unit_hint}", code=ErrorCode.INVALID_AMOUNT)})
    if value < min_value:
        raise serializers.ValidationError({field: serializers.ErrorDetail(
            f"Amount must be at least {min_value}.", code=ErrorCode.AMOUNT_TOO_SMALL)})
    if value > MAX_AMOUNT:
        raise serializers.ValidationError({field: serializers.ErrorDetail(
            f"Amount must be at most {MAX_AMOUNT}.", code=ErrorCode.AMOUNT_TOO_LARGE)})
    return value


class RawField(serializers.Field):
    """Passes the JSON value through; validated by the serializer's validate()."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


class MetadataField(serializers.Field):
    """Merchant metadata: up to 50 keys of at most 40 characters, scalar values, strings up
    to 500 characters, no NUL characters (PostgreSQL refuses them), numbers within ±2**53."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError("Metadata must be an object of key/value pairs.", code=ErrorCode.INVALID_METADATA)
        if len(data) > METADATA_MAX_KEYS:
            raise serializers.ValidationError(f"Metadata can have at most {METADATA_MAX_KEYS} keys.", code=ErrorCode.INVALID_METADATA)
        for key, value in data.items():
            if not key or len(key) > METADATA_MAX_KEY_LENGTH or "\x00" in key:
                raise serializers.ValidationError(
                    f"Metadata keys must be 1 to {METADATA_MAX_KEY_LENGTH} characters.", code=ErrorCode.INVALID_METADATA
                )
            if value is not None and not isinstance(value, (str, int, float, bool)):
                raise serializers.ValidationError(f"Metadata value of '{key}' must be a string, number, boolean or null.", code=ErrorCode.INVALID_METADATA)
            if isinstance(value, str) and (len(value) > METADATA_MAX_VALUE_LENGTH or "\x00" in value):
                raise serializers.ValidationError(
                    f"Metadata value of '{key}' must be at most {METADATA_MAX_VALUE_LENGTH} characters without NUL.", code=ErrorCode.INVALID_METADATA
                )
            if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
                raise serializers.ValidationError(f"Metadata value of '{key}' is not a finite number.", code=ErrorCode.INVALID_METADATA)
            # Beyond 2**53 a number is not exact in JavaScript (nor in many JSON decoders).
            if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > 2**53:
                raise serializers.ValidationError(f"Metadata value of '{key}' is too large a number; send it as a string.", code=ErrorCode.INVALID_METADATA)
        return data

    def to_representation(self, value):
        return value


class EmailAddressField(serializers.EmailField):
    """An email address (EMAIL_PATTERN and Django's validator)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators.append(RegexValidator(EMAIL_PATTERN, message=self.error_messages["invalid"], code=ErrorCode.INVALID))


class TokenField(serializers.RegexField):
    """A gateway token or a FlowPay public id: letters, digits and underscores."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 255)
        super().__init__(r"^[A-Za-z0-9_]+$", **kwargs)
        self.error_messages["invalid"] = "Must be a payment method token such as 'pm_card_visa' or a saved method id (pm_…)."


class StatusListMixin:
    """`status` may be repeated (?status=a&status=b) or comma-separated (?status=a,b)."""

    def to_internal_value(self, data):
        if "status" in data:
            raw = data["status"]
            items = raw if isinstance(raw, list) else str(raw).split(",")
            data = {**data, "status": [item.strip() for item in items if item.strip()]}
        return super().to_internal_value(data)


class LivemodeFilterMixin(serializers.Serializer):
    """?livemode=true|false narrows a staff list to one mode; an API key's lists are always
    of its own mode (the filter is ignored)."""

    livemode = serializers.BooleanField(required=False, allow_null=True, default=None)


class CreatedRangeMixin(serializers.Serializer):
    created_gte = serializers.DateTimeField(required=False)
    created_lte = serializers.DateTimeField(required=False)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        gte, lte = attrs.get("created_gte"), attrs.get("created_lte")
        if gte and lte and gte > lte:
            raise serializers.ValidationError({"created_gte": "createdGte must not be after createdLte."})
        return attrs


class EmptyInput(InputSerializer):
    """The body of an action that takes no parameters: anything sent is an unknown field."""
