"""drf-spectacular extensions: how our authentication, custom fields, pagination and the one
error shape look in OpenAPI.

Rule: the schema is true. Every operation documents the statuses it can answer (the error
statuses with the one error body), lists are documented as the paginated object they are, and
fields document the constraints the API enforces; tests/core/test_openapi_contract.py runs
schemathesis against a live server to keep it so."""

import inspect

from django.core.validators import RegexValidator
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent, build_basic_type, force_instance
from drf_spectacular.types import OpenApiTypes
from rest_framework import serializers

from core.api.serializers import (
    EMAIL_PATTERN,
    METADATA_MAX_KEY_LENGTH,
    METADATA_MAX_KEYS,
    METADATA_MAX_VALUE_LENGTH,
    NOT_BLANK_PATTERN,
    InputSerializer,
)
from core.errors import ErrorCode
from core.money import CURRENCY_EXPONENTS, MAX_AMOUNT

ERROR_TYPES = (
    "invalid_request_error", "authentication_error", "permission_error", "rate_limit_error", "idempotency_error",
    "card_error", "api_error",
)


def _schema_component(name: str, schema: dict) -> ResolvedComponent:
    return ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema)


def error_components() -> list[ResolvedComponent]:
    """ErrorCode (every ErrorCode value, each described), Error and ErrorResponse: the body of
    every error, {"error": {"type", "code", "message", "param"}} (core.api.errors)."""
    code = _schema_component("ErrorCode", {
        "type": "string",
        "enum": [member.value for member in ErrorCode],
        "description": "What went wrong, for programs to act on. A code relayed from a payment gateway "
                       "that FlowPay does not define (e.g. on a refused capture) is passed on as the gateway spelled it.\n\n"
                       + "\n".join(f"* `{member.value}` - {member.description}" for member in ErrorCode),
    })
    error = _schema_component("Error", {
        "type": "object",
        "properties": {
            "type": {"type": "string", "description": "The kind of error: " + ", ".join(ERROR_TYPES) + "."},
            "code": code.ref,
            "message": {"type": "string", "description": "A human-readable explanation, for developers."},
            "param": {"type": "string", "nullable": True, "description": "The parameter (camelCase) the error is about."},
            "declineCode": {"type": "string", "nullable": True, "description": "card_error only: why the card was declined."},
            "transaction": {"type": "object", "description": "card_error only: the failed payment, as retrieved."},
            "column": {"type": "integer", "minimum": 1,
                       "description": "rule_invalid only: the column (from 1) of the rule text where the error is."},
        },
        "required": ["type", "code", "message", "param"],
    })
    response = _schema_component("ErrorResponse", {
        "type": "object", "properties": {"error": error.ref}, "required": ["error"],
    })
    return [code, error, response]


RETRY_AFTER_HEADER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}}

# Why each error status is answered (`error.code` says precisely which error it is).
ERROR_STATUSES = {
    "400": "The request is not valid: a parameter is missing, unknown, malformed or out of range (`error.param` names it), "
           "the body is not valid JSON, or the request carries a card number.",
    "401": "No credentials, or the API key or staff token is not valid.",
    "402": "The card was declined, or fraud screening blocked the payment (`fraud_blocked`): `error.declineCode` says why "
           "and `error.transaction` is the failed payment.",
    "403": "The credentials do not allow this operation.",
    "404": "No such object, or it is not the caller's.",
    "409": "The object's state does not allow the operation, or a request with this Idempotency-Key is still in progress.",
    "415": "The request declares a charset or Content-Encoding the API does not read.",
    "422": "The Idempotency-Key was already used with other parameters.",
    "429": "Too many requests: retry after Retry-After seconds.",
    "503": "The database or the payment gateway is briefly unavailable and nothing was done: retry (with the same "
           "Idempotency-Key) after Retry-After seconds.",
}
# Every operation can answer these: validation, authentication, permissions, the charset
# guard, the rate limit and a database fault apply to all.
COMMON_ERROR_STATUSES = ("400", "401", "403", "415", "429", "503")


def error_statuses(*, method: str, parameters: list[dict]) -> list[str]:
    """The error statuses an operation documents, from what it takes: an object in the path
    can be missing (404) or in the wrong state (409 for a change), an Idempotency-Key can be
    in use (409) or reused with other parameters (422). Others (402) are declared by the view."""
    located = {parameter["in"] for parameter in parameters}
    idempotent = any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in parameters)
    statuses = list(COMMON_ERROR_STATUSES)
    if "path" in located:
        statuses.append("404")
    if idempotent or ("path" in located and method != "GET"):
        statuses.append("409")
    if idempotent:
        statuses.append("422")
    return sorted(statuses)


def _merge(schema: dict, constraints: dict) -> None:
    """Adds `constraints` (camelCase) to a serializer's `schema` (still snake_case: camelized
    later by the postprocessing hook): keywords are set, properties' keywords merged."""
    for keyword, value in constraints.items():
        if keyword == "properties":
            names = {_camel(name): name for name in schema.get("properties", {})}
            for name, more in value.items():
                _merge(schema.setdefault("properties", {}).setdefault(names.get(name, name), {}), more)
        elif isinstance(value, dict) and isinstance(schema.get(keyword), dict):
            _merge(schema[keyword], value)
        else:
            schema[keyword] = value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _needs_a_body(serializer: InputSerializer) -> bool:
    """Whether a request without a body is refused: a field is required, or validate() asks
    for at least one (schema_constraints)."""
    constraints = serializer.schema_constraints
    return any(field.required for field in serializer.fields.values()) or "minProperties" in constraints or "anyOf" in constraints


class ErrorResponseAutoSchema(AutoSchema):
    """The API's operations as they are: the error body for every error status an operation
    can answer (and as its `default` response), camelCase query parameters (as the docs spell
    them; snake_case is read too), request bodies that take no property they do not declare,
    and descriptions from the view's own docstrings (not ApiView's)."""

    def get_description(self) -> str:
        method = getattr(self.view, getattr(self.view, "action", self.method.lower()), None)
        own = self.view.__class__.__dict__.get("__doc__")
        return inspect.getdoc(method) or (inspect.cleandoc(own) if own else "")

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if direction == "request" and isinstance(serializer, InputSerializer) and schema.get("type") == "object":
            schema["additionalProperties"] = False  # InputSerializer refuses unknown parameters
            _merge(schema, serializer.schema_constraints)
        if "__doc__" not in type(serializer).__dict__ or not type(serializer).__doc__:
            schema.pop("description", None)  # not InputSerializer's docstring on every body
        return schema

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction != "request" or schema.get("type") != "string" or not isinstance(field, serializers.CharField):
            return schema
        patterned = isinstance(field, serializers.EmailField) or any(isinstance(v, RegexValidator) for v in field.validators)
        if not patterned and not field.allow_blank and field.trim_whitespace:
            schema["pattern"] = NOT_BLANK_PATTERN  # "  " is blank once trimmed: refused like ""
        return schema

    def _insert_field_validators(self, field, schema):
        super()._insert_field_validators(field, schema)
        if isinstance(field, serializers.EmailField):
            # The pattern is the rule (EmailAddressField); `format: email` is another reading.
            address = schema["oneOf"][0] if "oneOf" in schema else schema  # oneOf: blank allowed
            address.pop("format", None)
            address["pattern"] = EMAIL_PATTERN

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query":
                parameter["name"] = _camel(parameter["name"])
                parameter.get("schema", {}).pop("nullable", None)  # absent, or a value: never null
        body = force_instance(self.get_request_serializer()) if "requestBody" in operation else None
        if isinstance(body, InputSerializer) and _needs_a_body(body):
            operation["requestBody"]["required"] = True
        components = error_components()
        for component in components:
            registry.register_on_missing(component)
        error_content = {"application/json": {"schema": components[-1].ref}}
        responses = operation.setdefault("responses", {})
        for status in error_statuses(method=method, parameters=operation.get("parameters", [])):
            responses.setdefault(status, {"description": ERROR_STATUSES[status]})
        for status, response in responses.items():
            if status.isdigit() and int(status) >= 400:  # declared by the view (402) or above: the one error body
                response["content"] = error_content
                response.setdefault("description", ERROR_STATUSES.get(status, ""))
                if status in ("429", "503"):
                    response["headers"] = RETRY_AFTER_HEADER
        responses.setdefault("default", {
            "description": "An error; `error.code` says which (ErrorCode).",
            "content": error_content,
        })
        operation["responses"] = dict(sorted(responses.items()))
        return operation


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A merchant API key (fp_test_…/fp_live_…) or a personal staff token (fp_staff_…).",
        }


class StrictIntegerFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "core.api.serializers.StrictIntegerField"

    def map_serializer_field(self, auto_schema, direction):
        schema = build_basic_type(OpenApiTypes.INT64)
        if self.target.min_value is not None:
            schema["minimum"] = self.target.min_value
        if self.target.max_value is not None:
            schema["maximum"] = self.target.max_value
        return schema


class AmountFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "core.api.serializers.RawField"

    def map_serializer_field(self, auto_schema, direction):
        return {
            **build_basic_type(OpenApiTypes.INT64), "minimum": 1, "maximum": MAX_AMOUNT,
            "description": "Integer amount in minor units of the currency (1999 is 19.99 USD, 500 is 500 JPY).",
        }


class MetadataFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "core.api.serializers.MetadataField"

    def map_serializer_field(self, auto_schema, direction):
        value = {
            "nullable": True,
            "anyOf": [
                {"type": "string", "maxLength": METADATA_MAX_VALUE_LENGTH},
                # Numbers beyond 2**53 lose precision in JavaScript: send them as strings.
                {"type": "number", "minimum": -(2**53), "maximum": 2**53},
                {"type": "boolean"},
            ],
        }
        if direction == "response":
            return {"type": "object", "additionalProperties": value, "description": "The metadata as sent."}
        # The length of keys cannot be stated in OpenAPI 3.0 (no propertyNames): said in words.
        return {
            "type": "object", "maxProperties": METADATA_MAX_KEYS, "additionalProperties": value,
            "description": f"Up to {METADATA_MAX_KEYS} keys of 1 to {METADATA_MAX_KEY_LENGTH} characters; values are strings "
                           f"(up to {METADATA_MAX_VALUE_LENGTH} characters), numbers, booleans or null. No NUL characters.",
        }


class CurrencyFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "core.api.serializers.CurrencyField"

    def map_serializer_field(self, auto_schema, direction):
        return {
            "type": "string", "enum": sorted(CURRENCY_EXPONENTS),
            "description": "A three-letter ISO 4217 currency code; read in any case ('usd' is 'USD').",
        }
