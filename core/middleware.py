"""Request middleware of the kernel: correlation ids, following the runtime switches, and the
model-change log's actor and client address. The card-data guard, which records each refusal
in the audit log, is audit.middleware."""

import logging
import re
import uuid

from auditlog.middleware import AuditlogMiddleware

from core.carddata import contains_card_number
from core.network import client_ip
from core.observability.context import correlation_id
from core.runtime import follow_db_connection_refresh

logger = logging.getLogger("flowpay.request")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,200}$")


class CorrelationIdMiddleware:
    """Takes X-Request-ID from the caller (or makes one), binds it to every log line and
    task queued during the request, and returns it in the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        value = incoming if _REQUEST_ID.match(incoming) and not contains_card_number(incoming) else uuid.uuid4().hex
        request.correlation_id = value
        token = correlation_id.set(value)
        try:
            response = self.get_response(request)
        finally:
            correlation_id.reset(token)
        response["X-Request-ID"] = value
        return response


class RuntimeSwitchesMiddleware:
    """At the start of each request, follows operator requests made through any process
    (refresh-db-connections): a safe point, before this request touches the database."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        follow_db_connection_refresh()
        return self.get_response(request)


class ModelChangeLogMiddleware(AuditlogMiddleware):
    """django-auditlog's middleware (who changed a model in the admin), recording the client
    address as the audit log does (core.network.client_ip): auditlog's own reading takes the
    left-most X-Forwarded-For entry, which any client can write."""

    @staticmethod
    def _get_remote_addr(request):
        return client_ip(request)
