"""drf-spectacular extensions: how our authentication, custom fields and the one error shape
look in OpenAPI."""

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent, build_basic_type
from drf_spectacular.types import OpenApiTypes

from core.errors import ErrorCode

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
        },
        "required": ["type", "code", "message", "param"],
    })
    response = _schema_component("ErrorResponse", {
        "type": "object", "properties": {"error": error.ref}, "required": ["error"],
    })
    return [code, error, response]


class ErrorResponseAutoSchema(AutoSchema):
    """Documents the error body as the `default` response of every operation."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        components = error_components()
        for component in components:
            registry.register_on_missing(component)
        operation.setdefault("responses", {}).setdefault("default", {
            "description": "An error; `error.code` says which (ErrorCode).",
            "content": {"application/json": {"schema": components[-1].ref}},
        })
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
        return {**build_basic_type(OpenApiTypes.INT64), "minimum": 1, "description": "Integer amount in minor units (1999 is 19.99 USD)."}


class MetadataFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "core.api.serializers.MetadataField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "object", "additionalProperties": True, "description": "Up to 50 keys; scalar values."}
