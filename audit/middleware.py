"""The card-data guard: requests that carry something that looks like a card number are
refused before any view runs, and each refusal is recorded in the audit log (for the PCI
report: who tried, where, which field; never the number)."""

import json
import logging
from urllib.parse import parse_qsl

from django.db import transaction
from django.http import JsonResponse

from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import Actor, ActorType
from core.api.errors import error_body
from core.carddata import contains_card_number, find_card_number_path
from core.errors import ErrorCode
from core.network import client_ip

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


class CardDataGuardMiddleware:
    """Refuses any request whose body or query string carries something that looks like a
    card number (13-19 digits passing Luhn, with or without spaces or dashes), before any
    view, log line or database write sees it. The number itself is never echoed or logged.
    Signature-verified gateway webhooks are exempt (see VERIFIED_WEBHOOK_PATHS)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path in VERIFIED_WEBHOOK_PATHS:
            return self.get_response(request)
        param = self._card_data_param(request)
        if param is not None:
            logger.warning("request rejected: card data in %s", "body" if param != "query" else "query string",
                           extra={"path": request.path, "method": request.method})
            _audit_card_data_rejection(request, param)
            return JsonResponse(
                error_body(type="invalid_request_error", code=ErrorCode.CARD_DATA_NOT_ALLOWED, message=CARD_DATA_MESSAGE, param=param or None),
                status=400,
            )
        return self.get_response(request)

    @staticmethod
    def _card_data_param(request) -> str | None:
        query = request.META.get("QUERY_STRING", "")
        if query and any(contains_card_number(k) or contains_card_number(v) for k, v in parse_qsl(query, keep_blank_values=True)):
            return "query"
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        try:
            body = request.body
        except Exception:  # body too large or already consumed: let Django answer
            return None
        if not body:
            return None
        text = body.decode("utf-8", errors="replace")
        if not contains_card_number(text) and not contains_card_number(_unescape_json(text)):
            return None
        try:
            found = find_card_number_path(json.loads(text))
        except ValueError:
            found = None
        return found if found is not None else ""


def _audit_card_data_rejection(request, param: str) -> None:
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
                details={"method": request.method, "path": request.path[:200], "field": param or "body"},
            )
    except Exception:  # the refusal stands even if the audit write fails
        logger.exception("could not audit a card-data rejection")


def _unescape_json(text: str) -> str:
    # "\u0034\u0032..." spells digits too: compare on the decoded form when escapes appear.
    if "\\u" not in text:
        return ""
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return ""
