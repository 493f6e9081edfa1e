"""The API's error codes: one ErrorCode member per code, listed by the OpenAPI schema, and
every place that produces a code names its member."""

import ast
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from drf_spectacular.generators import SchemaGenerator
from rest_framework import serializers

import flowpay.urls  # noqa: F401  (imports every view, serializer and service)
from core.api.serializers import InputSerializer
from core.errors import ErrorCode, FlowPayError, error_code_for

ROOT = Path(django_settings.BASE_DIR)  # the repository, wherever this module sits under tests/
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


@pytest.fixture(scope="module")
def spec():
    return SchemaGenerator().get_schema(request=None, public=True)


def resolve(spec, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def test_the_schema_s_error_component_lists_every_error_code(spec):
    error = spec["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"type", "code", "message", "param"}
    code = resolve(spec, error["properties"]["code"])
    assert code["type"] == "string"
    assert code["enum"] == [member.value for member in ErrorCode]
    for member in ErrorCode:
        assert f"* `{member.value}` - {member.description}" in code["description"]


def test_every_operation_documents_the_error_body(spec):
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            body = operation["responses"]["default"]["content"]["application/json"]["schema"]
            assert resolve(spec, body)["properties"]["error"] == {"$ref": "#/components/schemas/Error"}, (method, path)


@pytest.mark.parametrize("member", list(ErrorCode), ids=str)
def test_every_code_is_snake_case_named_by_its_member_and_described(member):
    assert SNAKE_CASE.match(member.value)
    assert member.name == member.value.upper()
    assert member == member.value and str(member) == member.value  # returned as today's string
    assert member.description.endswith(".")


def test_error_code_for_maps_known_codes_and_relays_the_others_unchanged():
    assert error_code_for("resource_missing") is ErrorCode.RESOURCE_MISSING
    relayed = error_code_for("parameter_invalid_integer")  # a Stripe code FlowPay does not define
    assert relayed == "parameter_invalid_integer" and not isinstance(relayed, ErrorCode)


def test_every_domain_exception_s_code_is_a_member():
    for cls in [FlowPayError, *subclasses(FlowPayError)]:
        assert isinstance(cls.code, ErrorCode), cls


def _field_codes(field) -> set[str]:
    codes = set(getattr(field, "error_messages", {}))
    codes |= {validator.code for validator in getattr(field, "validators", []) if isinstance(getattr(validator, "code", None), str)}
    if getattr(field, "child", None) is not None:
        codes |= _field_codes(field.child)
    if isinstance(field, serializers.Serializer):
        for child in field.fields.values():
            codes |= _field_codes(child)
    return codes


def test_every_code_a_request_field_can_fail_with_is_a_member():
    # A field's own code (required, max_length, ...) becomes the error's code (core.api.errors).
    inputs = [cls for cls in subclasses(InputSerializer) if not cls.__module__.startswith("tests")]
    assert len(inputs) > 20
    unknown = {(cls.__name__, code) for cls in inputs for code in _field_codes(cls()) if code not in set(ErrorCode)}
    assert not unknown, f"add these codes to ErrorCode: {sorted(unknown)}"


CODE_SETTERS = {"error_body", "_error", "ValidationError", "ErrorDetail"} | {cls.__name__ for cls in subclasses(FlowPayError)}


def test_no_production_code_spells_an_error_code_out():
    offenders = []
    for path in sorted(ROOT.glob("*/**/*.py")):
        parts = path.relative_to(ROOT).parts
        if parts[0] in ("tests", "docker", "scripts") or parts[0].startswith(".") or "migrations" in parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if name in CODE_SETTERS:
                    offenders += [
                        f"{path.relative_to(ROOT)}:{node.lineno}" for kw in node.keywords
                        if kw.arg == "code" and isinstance(kw.value, (ast.Constant, ast.JoinedStr))
                    ]
    assert not offenders, f"pass an ErrorCode member: {offenders}"
