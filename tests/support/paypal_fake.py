"""A local stand-in for PayPal's REST API, serving PayPal's documented responses
(tests/support/fixtures/paypal/) over real HTTP on 127.0.0.1.

It behaves like PayPal where the adapter depends on it:
- OAuth2 client credentials: checks the Basic auth, issues bearer tokens, answers 401 to an
  API call with an unknown or revoked token;
- PayPal-Request-Id idempotency: a repeated POST gets the first answer back (200);
- created orders, authorizations, captures and refunds get fresh ids and carry the request's
  amount, reference_id, custom_id and invoice_id; later GETs see their current state.
It records every request (method, path, query, headers, body) and lets a test queue the next
answer of a route: another recorded body, an error (422 decline, 500, 401 once), or a hang.

    with FakePayPal(client_id="id", client_secret="secret") as paypal:
        paypal.queue("POST", "/v2/checkout/orders", status=422, fixture="error_422_instrument_declined")
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).parent / "fixtures" / "paypal"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


_load = fixture


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


@dataclass
class Reply:
    status: int = 200
    body: dict | None = None
    delay: float = 0.0  # seconds to hang before answering (a gateway timeout)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def json(self) -> dict | None:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class _Queued:
    method: str
    pattern: re.Pattern
    reply: Reply
    times: int = 1


def _new_id() -> str:
    return uuid.uuid4().hex[:17].upper()


class FakePayPal:
    def __init__(self, *, client_id: str, client_secret: str):
        self.client_id = client_id
        self.client_secret = client_secret
        self.requests: list[Recorded] = []
        self.tokens_issued: list[str] = []
        self.orders: dict[str, dict] = {}
        self.authorizations: dict[str, dict] = {}
        self.captures: dict[str, dict] = {}
        self._valid_tokens: set[str] = set()
        self._queued: list[_Queued] = []
        self._idempotent: dict[tuple[str, str], Reply] = {}
        self._lock = threading.RLock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        # PayPal's documented example resources exist from the start.
        for name, store in (("authorization_get", self.authorizations), ("capture_get", self.captures)):
            body = fixture(name)
            store[body["id"]] = body

    # --- lifecycle ---------------------------------------------------------------
    def start(self) -> FakePayPal:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10  # idle keep-alive connections end on their own

            def do_GET(self):
                self._serve()

            def do_POST(self):
                self._serve()

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                request = Recorded(
                    method=self.command, path=split.path,
                    query={k: v[0] for k, v in parse_qs(split.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()}, body=body,
                )
                reply = fake._handle(request)
                if reply.delay:
                    fake._release.wait(reply.delay)
                payload = json.dumps(reply.body).encode() if reply.body is not None else b""
                try:
                    self.send_response(reply.status)
                    if payload:
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.send_header("Paypal-Debug-Id", "f1e2d3c4b5a69")
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-paypal", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._release.set()  # wake any hanging handler
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakePayPal:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- test controls -------------------------------------------------------------
    def queue(
        self, method: str, path: str, *, status: int = 200, body: dict | None = None, fixture: str | None = None,
        delay: float = 0.0, times: int = 1,
    ) -> None:
        """The next `times` requests matching METHOD and path get this answer. `path` may use
        `*` for one path segment. A 2xx body for a creating route is used as the template of
        the created resource (fresh ids, the request's amounts), anything else verbatim."""
        if fixture is not None:
            body = _load(fixture)
        pattern = re.compile("^" + re.escape(path).replace(r"\*", "[^/]+") + "$")
        with self._lock:
            self._queued.append(_Queued(method.upper(), pattern, Reply(status=status, body=body, delay=delay), times))

    def revoke_tokens(self) -> None:
        """Expire every token issued so far: the next API call with one gets a 401."""
        with self._lock:
            self._valid_tokens.clear()

    def received(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        pattern = re.compile("^" + re.escape(path).replace(r"\*", "[^/]+") + "$") if path else None
        with self._lock:
            return [
                r for r in self.requests
                if (method is None or r.method == method.upper()) and (pattern is None or pattern.match(r.path))
            ]

    # --- dispatch --------------------------------------------------------------------
    def _handle(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            queued = self._pop_queued(request)
            if queued is not None and not (200 <= queued.status < 300):
                return queued
            if request.path == "/v1/oauth2/token" and request.method == "POST":
                return queued or self._token(request)
            if not self._authorized(request):
                return Reply(401, fixture("error_401_authentication_failure"))
            key = request.header("PayPal-Request-Id")
            if request.method == "POST" and key and (request.path, key) in self._idempotent:
                replay = self._idempotent[(request.path, key)]
                return Reply(200, copy.deepcopy(replay.body))
            template = queued.body if queued is not None else None
            reply = self._route(request, template)
            if queued is not None and queued.delay:
                reply.delay = queued.delay
            if request.method == "POST" and key and 200 <= reply.status < 300:
                self._idempotent[(request.path, key)] = reply
            return reply

    def _pop_queued(self, request: Recorded) -> Reply | None:
        for entry in self._queued:
            if entry.method == request.method and entry.pattern.match(request.path):
                entry.times -= 1
                if entry.times <= 0:
                    self._queued.remove(entry)
                return copy.deepcopy(entry.reply)
        return None

    def _token(self, request: Recorded) -> Reply:
        expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.header("Authorization") != expected or request.form.get("grant_type") != "client_credentials":
            return Reply(401, fixture("oauth2_invalid_client"))
        body = fixture("oauth2_token")
        body["access_token"] = f"A21AA{_new_id()}{len(self.tokens_issued)}"
        self.tokens_issued.append(body["access_token"])
        self._valid_tokens.add(body["access_token"])
        return Reply(200, body)

    def _authorized(self, request: Recorded) -> bool:
        header = request.header("Authorization") or ""
        return header.startswith("Bearer ") and header[7:] in self._valid_tokens

    def _route(self, request: Recorded, template: dict | None) -> Reply:
        method, path = request.method, request.path
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v2/checkout/orders":
            return self._create_order(request, template)
        if path.startswith("/v2/checkout/orders/") and len(parts) == 4 and method == "GET":
            return self._found(self.orders.get(parts[3]))
        if path.startswith("/v2/checkout/orders/") and len(parts) == 5 and method == "POST" and parts[4] in ("authorize", "capture"):
            return self._complete_order(parts[3], parts[4], template)
        if path.startswith("/v2/payments/authorizations/") and len(parts) == 4 and method == "GET":
            return self._found(self.authorizations.get(parts[3]))
        if path.startswith("/v2/payments/authorizations/") and len(parts) == 5 and method == "POST":
            if parts[4] == "capture":
                return self._capture_authorization(parts[3], request, template)
            if parts[4] == "void":
                return self._void(parts[3], request, template)
        if path.startswith("/v2/payments/captures/") and len(parts) == 4 and method == "GET":
            return self._found(self.captures.get(parts[3]))
        if path.startswith("/v2/payments/captures/") and len(parts) == 5 and method == "POST" and parts[4] == "refund":
            return self._refund(parts[3], request, template)
        if method == "GET" and path == "/v1/reporting/transactions":
            return Reply(200, template or fixture("transaction_search"))
        if method == "POST" and path == "/v1/notifications/verify-webhook-signature":
            return Reply(200, template or fixture("verify_webhook_signature_success"))
        return Reply(404, fixture("error_404_resource_not_found"))

    @staticmethod
    def _found(resource: dict | None) -> Reply:
        if resource is None:
            return Reply(404, fixture("error_404_resource_not_found"))
        return Reply(200, copy.deepcopy(resource))

    # --- resources -------------------------------------------------------------------
    def _create_order(self, request: Recorded, template: dict | None) -> Reply:
        body = request.json or {}
        unit = (body.get("purchase_units") or [{}])[0]
        if template is None:
            if not body.get("payment_source"):
                template = fixture("order_created")
            elif body.get("intent") == "CAPTURE":
                template = fixture("order_completed_capture")
            else:
                template = fixture("order_completed_authorize")
        order = _fresh_ids(template)
        if "intent" in order or body.get("intent"):
            order["intent"] = body.get("intent", order.get("intent"))
        order_unit = {**(order.get("purchase_units") or [{}])[0]}
        for name in ("reference_id", "custom_id", "invoice_id", "amount", "description"):
            if name in unit:
                order_unit[name] = unit[name]
        if "purchase_units" in order or unit:
            order["purchase_units"] = [order_unit]
        self._register(order)
        return Reply(201, order)

    def _complete_order(self, order_id: str, step: str, template: dict | None) -> Reply:
        order = self.orders.get(order_id)
        if order is None:
            return Reply(404, fixture("error_404_resource_not_found"))
        result = _fresh_ids(template or fixture("order_capture" if step == "capture" else "order_authorize"))
        result_unit = (result.get("purchase_units") or [{}])[0]
        unit = {**order["purchase_units"][0], "payments": result_unit.get("payments", {})}
        result.update(id=order_id, intent=order.get("intent"), purchase_units=[unit])
        result["links"] = order.get("links", result.get("links"))
        self._register(result)
        return Reply(201, result)

    def _register(self, order: dict) -> None:
        """Keep the order and its payments, with the purchase unit's amount and ids on them."""
        unit = order.get("purchase_units", [{}])[0]
        for kind, store in (("authorizations", self.authorizations), ("captures", self.captures)):
            for record in unit.get("payments", {}).get(kind, []):
                if "amount" in unit:
                    record["amount"] = copy.deepcopy(unit["amount"])
                for name in ("custom_id", "invoice_id"):
                    if name in unit:
                        record[name] = unit[name]
                record.setdefault("supplementary_data", {"related_ids": {}})["related_ids"]["order_id"] = order["id"]
                store[record["id"]] = copy.deepcopy(record)
        self.orders[order["id"]] = copy.deepcopy(order)

    def _capture_authorization(self, authorization_id: str, request: Recorded, template: dict | None) -> Reply:
        authorization = self.authorizations.get(authorization_id)
        if authorization is None:
            return Reply(404, fixture("error_404_resource_not_found"))
        body = request.json or {}
        capture = _fresh_ids(template or fixture("authorization_capture"))
        capture["amount"] = body.get("amount") or authorization["amount"]
        for name in ("custom_id", "invoice_id"):
            if name in authorization:
                capture[name] = authorization[name]
        order_id = authorization.get("supplementary_data", {}).get("related_ids", {}).get("order_id")
        capture["supplementary_data"] = {"related_ids": {"order_id": order_id, "authorization_id": authorization_id}}
        self.captures[capture["id"]] = copy.deepcopy(capture)
        authorization["status"] = "CAPTURED" if body.get("final_capture", False) else "PARTIALLY_CAPTURED"
        order = self.orders.get(order_id or "")
        if order is not None:
            payments = order["purchase_units"][0].setdefault("payments", {})
            for record in payments.get("authorizations", []):
                if record["id"] == authorization_id:
                    record["status"] = authorization["status"]
            payments.setdefault("captures", []).append(copy.deepcopy(capture))
        return Reply(201, capture)

    def _void(self, authorization_id: str, request: Recorded, template: dict | None) -> Reply:
        authorization = self.authorizations.get(authorization_id)
        if authorization is None:
            return Reply(404, fixture("error_404_resource_not_found"))
        authorization["status"] = "VOIDED"
        if "return=representation" not in (request.header("Prefer") or ""):
            return Reply(204, None)
        voided = template or fixture("authorization_void")
        voided.update(id=authorization_id, amount=authorization["amount"], status="VOIDED")
        return Reply(200, voided)

    def _refund(self, capture_id: str, request: Recorded, template: dict | None) -> Reply:
        capture = self.captures.get(capture_id)
        if capture is None:
            return Reply(404, fixture("error_404_resource_not_found"))
        body = request.json or {}
        refund = _fresh_ids(template or fixture("capture_refund"))
        refund["amount"] = body.get("amount") or capture["amount"]
        refund["links"] = [
            {"href": f"https://api.sandbox.paypal.com/v2/payments/refunds/{refund['id']}", "rel": "self", "method": "GET"},
            {"href": f"https://api.sandbox.paypal.com/v2/payments/captures/{capture_id}", "rel": "up", "method": "GET"},
        ]
        full = refund["amount"]["value"] == capture["amount"]["value"]
        capture["status"] = "REFUNDED" if full else "PARTIALLY_REFUNDED"
        return Reply(201, refund)


def _fresh_ids(template: dict) -> dict:
    """The template with its resource ids (the order's and its payments') replaced by new
    ones everywhere they occur, links included."""
    text = json.dumps(template)
    ids = {template.get("id")} if template.get("id") else set()
    for unit in template.get("purchase_units") or []:
        for records in (unit.get("payments") or {}).values():
            ids.update(r["id"] for r in records if isinstance(r, dict) and r.get("id"))
    for old in ids:
        text = text.replace(old, _new_id())
    return json.loads(text)
