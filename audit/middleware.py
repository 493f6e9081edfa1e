"""The card-data guard: requests that carry something that looks like a card number are
refused before any view runs, and each refusal is recorded in the audit log (for the PCI
report: who tried, where, which field; never the number)."""

import logging
from decimal import Decimal
from urllib.parse import parse_qsl

from django.db import transaction
from django.http import JsonResponse

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, ActorType
from core.api.errors import error_body
from core.api.parsers import declared_charset, strict_json_loads
from core.carddata import contains_card_number, find_card_number_path, mask_card_numbers
from core.errors import ErrorCode, UnsupportedMediaType
from core.network import client_ip
from core.storable import storable_text

logger = logging.getLogger("flowpay.request")

CARD_DATA_MESSAGE = (
    "The request was rejected because it appears to contain a card number. FlowPay never accepts raw card "
    "data: send a payment method token (for example 'pm_card_visa') or a saved payment method id instead."
)

# Inbound gateway webhooks (gateway_events) are exempt from the card-data guard, and only
# they. Their bodies are written by the gateway, not by a merchant, and legitimately carry
# long digit runs that can pass the Luhn check by chance: E.164 phone numbers of billing
# details ("+4915112345678"), card networks' transaction ids (Stripe's
# payment_method_details.card.network_transaction_id, PayPal's network_transaction_reference,
# 15-16 digits). Refusing those would make the gateway retry, then give up: events lost.
# The exemption does not let card data in: the view accepts a body only after the gateway's
# signature over it is verified (anything else is answered 400 and stored nowhere), gateways
# never send PANs, and neither the view nor the inbox logs a webhook body.
VERIFIED_WEBHOOK_PATHS = frozenset({"/webhooks/stripe", "/webhooks/paypal"})

# Request headers FlowPay stores (Idempotency-Key: the idempotency table). X-Request-ID is
# replaced by a fresh id when it looks like a card number (core.middleware).
STORED_HEADERS = ("Idempotency-Key",)

# Where a card number was found: (the audit's `field`, the error's `param`).
Location = tuple[str, str | None]
IN_PATH: Location = ("path", None)
IN_QUERY: Location = ("query", "query")
IN_BODY: Location = ("body", None)


class CardDataGuardMiddleware:
    """Refuses any request that carries something that looks like a card number (see
    core.carddata for what does) in its URL path (written to access logs), query string,
    stored headers or body, before any view, log line or database write sees it. The number
    itself is never echoed or logged.

    The guard reads a request exactly as the view will: the body in its declared charset,
    JSON with the API's strict parser. A request it cannot read that way, declared in a
    charset or Content-Encoding the API does not read, is refused with 415. Signature-verified
    gateway webhooks are exempt (see VERIFIED_WEBHOOK_PATHS)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path in VERIFIED_WEBHOOK_PATHS:
            return self.get_response(request)
        # The path is checked first: it is in every log line about the response.
        if contains_card_number(request.path):
            return self._refuse_card_data(request, IN_PATH)
        try:
            charset = declared_charset(request.content_params, request.META.get("HTTP_CONTENT_ENCODING", ""))
        except UnsupportedMediaType as exc:
            response = JsonResponse(
                error_body(type=exc.error_type, code=exc.code, message=exc.message), status=exc.http_status
            )
            return _logged(response, request, "request refused: unreadable charset or content encoding")
        location = self._card_data_location(request, charset or "utf-8")
        if location is not None:
            return self._refuse_card_data(request, location)
        return self.get_response(request)

    @staticmethod
    def _refuse_card_data(request, location: Location):
        field, param = location
        _audit_card_data_rejection(request, field)
        response = JsonResponse(
            error_body(type="invalid_request_error", code=ErrorCode.CARD_DATA_NOT_ALLOWED, message=CARD_DATA_MESSAGE,
                       param=storable_text(param) if param else None),
            status=400,
        )
        where = {IN_QUERY: "query string", IN_PATH: "path"}.get(location, field if field in STORED_HEADERS else "body")
        return _logged(response, request, f"request rejected: card data in {where}")

    @staticmethod
    def _card_data_location(request, charset: str) -> Location | None:
        """Where the request carries a card number, None when it carries none."""
        for key, values in request.GET.lists():
            if contains_card_number(key) or any(contains_card_number(value) for value in values):
                return IN_QUERY
        for name in STORED_HEADERS:
            if contains_card_number(request.headers.get(name, "")):
                return name, name
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        try:
            body = request.body
        except Exception:  # body too large or already consumed: let Django answer
            return None
        if not body:
            return None
        return _body_card_data_location(body.decode(charset, errors="replace"), request.content_type)


def _body_card_data_location(text: str, content_type: str) -> Location | None:
    try:
        data = strict_json_loads(text, parse_float=Decimal)  # Decimal: a number's digits as sent
    except ValueError:
        pass  # not JSON the API would accept: searched as text below
    else:
        path = find_card_number_path(data)
        return None if path is None else (path, path) if path else IN_BODY
    if content_type == "application/x-www-form-urlencoded":
        fields = parse_qsl(text, keep_blank_values=True)
        if any(contains_card_number(key) or contains_card_number(value) for key, value in fields):
            return IN_BODY
    return IN_BODY if contains_card_number(text) else None


def _logged(response, request, message: str):
    """The guard's own log line about a refusal, with the path masked. Django's request
    logger is told the response is logged, so no line carries the path as sent."""
    logger.warning(message, extra={"path": mask_card_numbers(request.path), "method": request.method})
    response._has_been_logged = True
    return response


def _audit_card_data_rejection(request, field: str) -> None:
    """For the PCI report: who tried, where, which field; never the number."""

    auth = request.headers.get("Authorization", "")
    token = auth.split()[-1] if auth.lower().startswith("bearer ") and len(auth.split()) == 2 else ""
    # Only a FlowPay credential's clear prefix is recorded (never an arbitrary header value).
    credential = token[:14] if token.startswith(("fp_test_", "fp_live_", "fp_staff_")) else "anonymous"
    try:
        with transaction.atomic():  # a savepoint: a failed write never poisons an outer transaction
            audit_record(
                actor=Actor(type=ActorType.API, id=f"unverified:{credential}", ip=client_ip(request)),
                action=AuditAction.SECURITY_CARD_DATA_REJECTED, result="denied",
                details={"method": request.method, "path": storable_text(mask_card_numbers(request.path))[:200],
                         "field": storable_text(field)},
            )
    except Exception:  # the refusal stands even if the audit write fails
        logger.exception("could not audit a card-data rejection")
