"""Request middleware of the kernel: correlation ids, following the runtime switches, the
model-change log's actor and client address, and the WSGI middleware that refuses unreadable
charsets before Django reads the request. The card-data guard, which records each refusal in
the audit log, is audit.middleware."""

import json
import logging
import re
import uuid

from auditlog.middleware import AuditlogMiddleware
from django.utils.http import parse_header_parameters

from core.api.errors import error_body
from core.api.parsers import declared_charset
from core.carddata import contains_card_number
from core.errors import UnsupportedMediaType
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
class UnreadableCharsetWSGIMiddleware:
    """WSGI middleware (flowpay.wsgi): a request declared in a charset FlowPay does not read is
    answered 415 before Django builds the request. Django decodes the query string in the
    declared charset while it builds it, before any middleware runs, and fails on a codec that
    is not a text encoding (charset=base64, zlib, rot13...): without this, a 500 from the WSGI
    server. The card-data guard refuses the same charsets (with the same body) for requests
    Django can build, including those of the test client and the development server."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        _, params = parse_header_parameters(environ.get("CONTENT_TYPE", ""))
        try:
            declared_charset(params)
        except UnsupportedMediaType as exc:
            body = json.dumps(error_body(type=exc.error_type, code=exc.code, message=exc.message)).encode()
            start_response("415 Unsupported Media Type", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return self.application(environ, start_response)
