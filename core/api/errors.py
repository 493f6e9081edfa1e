"""The one error shape: {"error": {"type", "code", "message", "param"}}.

Every exception a request can raise is rendered here: domain errors (core.errors),
DRF's validation, parse, authentication and permission errors, and Django's 404.
"""

import logging
import re

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response

from core.errors import ErrorCode, FlowPayError, ForeignCode, error_code_for

_CAMEL = re.compile(r"_([a-z0-9])")
logger = logging.getLogger(__name__)

# A lost or refused database connection, a serialization failure or a deadlock: the request
# may be retried (with its Idempotency-Key), so it is a 503 with Retry-After, not a 500.
DATABASE_FAULTS = (OperationalError, InterfaceError)
DATABASE_RETRY_AFTER_SECONDS = 2


def camel_param(param: str | None) -> str | None:
    """amount_refunded -> amountRefunded; metadata.order_id keeps the merchant's key."""
    if not param:
        return param
    head, dot, rest = param.partition(".")
    return _CAMEL.sub(lambda m: m.group(1).upper(), head) + dot + rest


def error_body(*, type: str, code: ErrorCode | ForeignCode, message: str, param: str | None = None, **extra) -> dict:
    return {"error": {"type": type, "code": code, "message": message, "param": camel_param(param), **extra}}


def _first_validation_error(detail, path: str = "") -> tuple[str, str, ErrorCode | ForeignCode]:
    """(param, message, code) of the first error in a DRF ValidationError detail. The code is
    the field's own (ErrorCode lists those of every field the API's serializers use)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key in ("non_field_errors", "__all__"):
                param, message, code = _first_validation_error(value, path)
            elif isinstance(key, int):  # an item of a list parameter: name the parameter
                param, message, code = _first_validation_error(value, path)
            else:
                param, message, code = _first_validation_error(value, f"{path}.{key}" if path else str(key))
            return param, message, code
    if isinstance(detail, list) and detail:
        for index, item in enumerate(detail):
            if isinstance(item, (dict, list)):
                return _first_validation_error(item, f"{path}[{index}]")
            return _first_validation_error(item, path)
    return path, str(detail), error_code_for(getattr(detail, "code", None) or ErrorCode.INVALID)


_DRF_ERRORS = {
    exceptions.NotAuthenticated: ("authentication_error", ErrorCode.AUTHENTICATION_REQUIRED),
    exceptions.AuthenticationFailed: ("authentication_error", ErrorCode.INVALID_CREDENTIALS),
    exceptions.PermissionDenied: ("permission_error", ErrorCode.PERMISSION_DENIED),
    exceptions.NotFound: ("invalid_request_error", ErrorCode.RESOURCE_MISSING),
    exceptions.MethodNotAllowed: ("invalid_request_error", ErrorCode.METHOD_NOT_ALLOWED),
    exceptions.NotAcceptable: ("invalid_request_error", ErrorCode.NOT_ACCEPTABLE),
    exceptions.Throttled: ("rate_limit_error", ErrorCode.RATE_LIMITED),
}


def exception_handler(exc, context):
    if isinstance(exc, FlowPayError):
        return Response(
            error_body(type=exc.error_type, code=exc.code, message=exc.message, param=exc.param, **exc.extra()),
            status=exc.http_status,
        )
    if isinstance(exc, DATABASE_FAULTS):
        logger.warning("database fault answered 503", exc_info=exc)
        return Response(
            error_body(
                type="api_error", code=ErrorCode.DATABASE_UNAVAILABLE,
                message="The database is briefly unavailable; nothing was lost. Retry the request with the same Idempotency-Key.",
            ),
            status=503, headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("No such resource.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    headers = {}
    if isinstance(exc, exceptions.APIException):
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))

    if isinstance(exc, exceptions.ValidationError):
        param, message, code = _first_validation_error(exc.detail)
        return Response(error_body(type="invalid_request_error", code=code, message=message, param=param or None), status=400)
    if isinstance(exc, exceptions.ParseError):
        return Response(
            error_body(type="invalid_request_error", code=ErrorCode.INVALID_JSON, message=f"The request body could not be parsed: {exc.detail}"),
            status=400,
        )
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return Response(
            error_body(
                type="invalid_request_error", code=ErrorCode.UNSUPPORTED_CONTENT_TYPE,
                message=f"{exc.detail} Send 'Content-Type: application/json'.",
            ),
            status=400,
        )
    for klass, (error_type, code) in _DRF_ERRORS.items():
        if isinstance(exc, klass):
            precise = error_code_for(getattr(exc.detail, "code", None) or "")
            if isinstance(exc, exceptions.AuthenticationFailed) and isinstance(precise, ErrorCode):
                code = precise  # a more precise reason (an expired or revoked staff token)
            return Response(error_body(type=error_type, code=code, message=str(exc.detail)), status=exc.status_code, headers=headers)
    if isinstance(exc, exceptions.APIException):
        return Response(error_body(type="api_error", code=error_code_for(exc.default_code), message=str(exc.detail)), status=exc.status_code)
    return None  # unexpected: Django's 500 handler (below) answers in the same shape


def json_not_found(request, exception=None):
    return JsonResponse(error_body(type="invalid_request_error", code=ErrorCode.RESOURCE_MISSING, message=f"Unrecognized request URL ({request.method}: {request.path})."), status=404)


def json_server_error(request):
    return JsonResponse(error_body(type="api_error", code=ErrorCode.INTERNAL_ERROR, message="An internal error occurred; it has been logged."), status=500)


def json_bad_request(request, exception=None):
    return JsonResponse(error_body(type="invalid_request_error", code=ErrorCode.BAD_REQUEST, message="Bad request."), status=400)


def json_permission_denied(request, exception=None):
    return JsonResponse(error_body(type="permission_error", code=ErrorCode.PERMISSION_DENIED, message="Permission denied."), status=403)
