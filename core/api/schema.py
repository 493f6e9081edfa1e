"""drf-spectacular extensions: how our authentication and custom fields look in OpenAPI."""

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes


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
