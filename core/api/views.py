"""Base classes for thin API views: who is calling (request.actor, request.merchant,
request.livemode, and request.scope: what the caller may see), input validation helpers
and the Idempotency-Key wrapper. Permission classes are in core.api.permissions."""

import functools
from collections.abc import Callable

from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from core.actors import Actor
from core.api.authentication import MerchantPrincipal
from core.api.pagination import LimitCursorPagination
from core.api.schema import ErrorResponseAutoSchema
from core.api.serializers import InputSerializer
from core.errors import ErrorCode
from core.idempotency import (
    MAX_KEY_LENGTH,
    IdempotencyClaim,
    IdempotencyKeyTaken,
    Replay,
    idempotency_begin,
    idempotency_finish,
    idempotency_key_validate,
    idempotency_lookup,
    request_fingerprint,
)
from core.network import client_ip
from core.observability.tracing import span_annotate
from core.selectors import UNSCOPED, Scope
from core.storable import NUL_OR_SURROGATE

PAGINATION_PARAMS = ("limit", "cursor")


def _camel_to_snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


class ApiView(APIView):
    """Every API view: authenticated by Bearer token, errors in the one shape."""

    schema = ErrorResponseAutoSchema()
    # Read by the schema only (APIView does not paginate by itself): the lists of `paginate`.
    pagination_class = LimitCursorPagination

    def perform_authentication(self, request):
        super().perform_authentication(request)
        user, ip = request.user, client_ip(request)
        request.merchant = None
        request.actor = None
        # An API key sees its own merchant in its own mode; staff (None) see both modes.
        request.livemode = None
        request.scope = UNSCOPED
        if isinstance(user, MerchantPrincipal):
            request.merchant = user.merchant
            request.livemode = user.livemode
            request.scope = Scope(merchant=user.merchant, livemode=user.livemode)
            request.actor = Actor.api_key(api_key=user.api_key, ip=ip)
        elif user is not None and getattr(user, "is_authenticated", False):
            request.actor = Actor.staff(user=user, ip=ip)  # with the user's roles

    @property
    def idempotency_claim(self) -> "IdempotencyClaim | None":
        """The Idempotency-Key this request's service claims and answers itself (set by
        `idempotent(answered_by_service=…)`), or None without a key."""
        return getattr(self.request, "idempotency_claim", None)

    @property
    def idempotency_record_id(self) -> int | None:
        """The Idempotency-Key record this request runs under (set by `idempotent`), or None.
        Creating services link what they create to it and, when a request taken over after a
        crash finds the object already made under it, return that object instead."""
        record = getattr(self.request, "idempotency_record", None)
        return record.pk if record is not None else None
    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # An id in the path ("%00" decodes to NUL) is looked up in PostgreSQL, which cannot
        # compare text holding a NUL: refused here, naming the path parameter.
        for name, value in kwargs.items():
            if isinstance(value, str) and NUL_OR_SURROGATE.search(value):
                raise ValidationError({name: [ErrorDetail(
                    "The path contains a NUL character or a lone surrogate.", code=ErrorCode.NULL_CHARACTERS_NOT_ALLOWED,
                )]})
        # The request's span (tracing on) names the merchant and the objects in the path.
        merchant = getattr(request, "merchant", None)
        span_annotate(merchant.public_id if merchant is not None else None,
                      *(value for value in kwargs.values() if isinstance(value, str)))

    def validated(self, serializer_class: type[InputSerializer], data=None) -> dict:
        serializer = serializer_class(data=self.request.data if data is None else data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def validated_query(self, serializer_class: type[InputSerializer]) -> dict:
        """Query parameters are camelCase like the JSON; unknown ones are rejected."""
        params = {}
        for key, values in self.request.query_params.lists():
            if key in PAGINATION_PARAMS:
                continue
            params[_camel_to_snake(key)] = values if len(values) > 1 else values[0]
        serializer = serializer_class(data=params, context={"query": True})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def paginate(self, queryset, output_serializer) -> Response:
        paginator = LimitCursorPagination()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator.get_paginated_response(output_serializer(page, many=True).data)


# The header every idempotent POST documents in the OpenAPI schema.
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    # 1 to 255 printable characters without surrounding spaces (idempotency_key_validate).
    {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": "^[!-~](?:[ -~]*[!-~])?$"},
    OpenApiParameter.HEADER, required=False,
    description="Makes the request safe to retry: the first result is replayed for 24 hours. "
                "1 to 255 printable characters without surrounding spaces (a UUID is a good key).",
)


def idempotency_scope(request) -> str:
    """Whose Idempotency-Keys these are. Test keys keep the original `merchant:<id>` form;
    live keys get their own space, so a test request can never replay a live response."""
    if request.merchant is None:
        return f"staff:{request.user.pk}"
    return f"merchant:{request.merchant.pk}:live" if request.livemode else f"merchant:{request.merchant.pk}"


def idempotent(handler=None, *, answered_by_service: Callable[..., Response] | None = None):
    """Wraps a POST handler with Idempotency-Key semantics (core.idempotency).
    Keys are scoped per merchant and mode (a live key's keys are apart from its test keys'),
    or per staff user for staff tokens.

    By default the key is claimed before the handler runs and its result stored after.
    With `answered_by_service`, the endpoint's rendering of its service's outcome, the
    handler's service gets the claim (`self.idempotency_claim`) and makes both inside its
    own database transactions; the key is claimed only if the service got that far, and a
    result the service did not store (an error after the claim, an object found on a
    take-over) is stored or released here as by default."""
    if handler is None:
        return functools.partial(idempotent, answered_by_service=answered_by_service)

    @functools.wraps(handler)
    def wrapper(self: ApiView, request, *args, **kwargs):
        raw_key = request.headers.get("Idempotency-Key")
        if raw_key is None:
            return handler(self, request, *args, **kwargs)
        key = idempotency_key_validate(raw_key)
        scope = idempotency_scope(request)
        fingerprint = request_fingerprint(method=request.method, path=request.path, data=request.data)
        if answered_by_service is None:  # claimed here (or answered from the existing record)
            record = idempotency_begin(scope=scope, key=key, method=request.method, path=request.path, fingerprint=fingerprint)
        else:  # None: the key is free, for the service to claim
            record = idempotency_lookup(scope=scope, key=key, fingerprint=fingerprint)
        if isinstance(record, Replay):
            return Response(record.body, status=record.status, headers={"Idempotent-Replayed": "true"})
        claim = None
        if answered_by_service is not None:
            claim = request.idempotency_claim = IdempotencyClaim(
                scope=scope, key=key, method=request.method, path=request.path, fingerprint=fingerprint,
                answer=answered_by_service, record=record,
            )
        request.idempotency_record = record
        try:
            response = handler(self, request, *args, **kwargs)
        except IdempotencyKeyTaken:
            # A concurrent request claimed the key first; this one's transaction rolled back
            # before it did anything. Answer as that request's record says (409, replay, 422).
            request.idempotency_record = request.idempotency_claim = None
            return wrapper(self, request, *args, **kwargs)
        except Exception as exc:
            # An unexpected error or a database fault (503) leaves the claim in flight: the
            # request may have charged before it failed, so a retry answers 409 until the lock
            # times out and is then taken over by services that find what this one created.
            # Nothing is written here: the database may be what failed.
            response = self.handle_exception(exc)
        if claim is not None:
            if claim.answered:
                return response  # stored with the outcome, in the service's transaction
            record = claim.record  # None: never claimed, nothing was made under the key
        if record is not None and response.status_code < 500:
            idempotency_finish(record=record, status=response.status_code, body=response.data)
        return response

    return wrapper
