"""Signed merchant webhooks from the transactional outbox: delivered once, retried with
backoff, dead-lettered and re-sendable, paused in simplified flow, and nothing lost when
the relay dies between the commit and the HTTP call."""

import json
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import transaction

from core import runtime
from core.actors import Actor
from tests.support.processes import sibling_env
from webhooks.models import OutboxEvent, WebhookDelivery
from webhooks.services.outbox import outbox_publish
from webhooks.signing import verify_signature
from webhooks.tasks import webhooks_sweep_task

BODY = {"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa"}


class MerchantEndpoint:
    """A merchant's webhook receiver on a local port: records every request; answers from
    a script of status codes (then 200)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: list[int] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                endpoint.requests.append({"headers": dict(self.headers), "body": body})
                code = endpoint.script.pop(0) if endpoint.script else 200
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received_ok(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    endpoint = MerchantEndpoint()
    yield endpoint
    endpoint.close()


@pytest.fixture
def fast_retries(settings):
    settings.FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS = True
    settings.FLOWPAY_WEBHOOK_BACKOFF_BASE_SECONDS = 0.01
    settings.FLOWPAY_WEBHOOK_BACKOFF_CAP_SECONDS = 0.05


def register(account, url: str, events=None) -> dict:
    response = account.client.post("/payment/webhook-endpoints", {"url": url, "enabledEvents": events or []}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def sweep_until(predicate, rounds: int = 50):
    for _ in range(rounds):
        if predicate():
            return
        time.sleep(0.06)
        webhooks_sweep_task()
    assert predicate()


@pytest.mark.django_db
def test_endpoint_secret_is_shown_once_and_input_is_validated(merchant_a, merchant_b, settings):
    settings.FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS = True
    created = register(merchant_a, "https://merchant.example/hooks", ["transaction.completed"])
    assert created["secret"].startswith("whsec_") and created["enabledEvents"] == ["transaction.completed"]
    listed = merchant_a.client.get("/payment/webhook-endpoints").json()["data"]
    assert [e["id"] for e in listed] == [created["id"]] and "secret" not in listed[0]
    assert "secret" not in merchant_a.client.get(f"/payment/webhook-endpoints/{created['id']}").json()
    assert merchant_b.client.get(f"/payment/webhook-endpoints/{created['id']}").status_code == 404
    assert merchant_b.client.delete(f"/payment/webhook-endpoints/{created['id']}").status_code == 404
    for bad, code in [
        ({"url": "ftp://x.example/"}, "url_invalid"),
        ({"url": "not a url"}, "invalid"),
        ({"url": "https://m.example/", "enabledEvents": ["transaction.teleported"]}, "invalid_event_type"),
        ({"url": "https://m.example/", "secret": "mine"}, "parameter_unknown"),
    ]:
        response = merchant_a.client.post("/payment/webhook-endpoints", bad, format="json")
        assert response.status_code == 400 and response.json()["error"]["code"] == code, (bad, response.json())
    deleted = merchant_a.client.delete(f"/payment/webhook-endpoints/{created['id']}")
    assert deleted.status_code == 200 and deleted.json()["status"] == "disabled"
    assert merchant_a.client.get("/payment/webhook-endpoints").json()["data"] == []


@pytest.mark.django_db
def test_private_and_plain_http_destinations_are_refused_in_production(merchant_a, settings):
    settings.FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS = False
    for url in ("http://merchant.example/hooks", "https://127.0.0.1/hooks", "https://169.254.169.254/latest", "https://[::1]/x"):
        response = merchant_a.client.post("/payment/webhook-endpoints", {"url": url}, format="json")
        assert response.status_code == 400 and response.json()["error"]["code"] == "url_invalid", url


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_receives_each_event_once_with_a_valid_signature(merchant_a, merchant_b, receiver, fast_retries, celery_eager):
    endpoint = register(merchant_a, receiver.url)
    register(merchant_b, receiver.url, ["transaction.failed"])  # another merchant's endpoint, filtered

    payment = merchant_a.client.post("/payment/transactions", BODY, format="json").json()
    declined = merchant_a.client.post("/payment/transactions", {**BODY, "paymentMethod": "pm_card_chargeCustomerFail"}, format="json")

    bodies = receiver.received_ok()
    assert [b["type"] for b in bodies] == ["transaction.completed", "transaction.failed"]
    assert bodies[0]["data"]["object"]["id"] == payment["id"] and bodies[0]["data"]["object"]["amountCaptured"] == 1999
    assert bodies[1]["data"]["object"]["id"] == declined.json()["error"]["transaction"]["id"]
    for request, body in zip(receiver.requests, bodies, strict=True):
        header = request["headers"]["FlowPay-Signature"]
        assert verify_signature(secret=endpoint["secret"], body=request["body"], header=header, now=int(time.time()))
        assert not verify_signature(secret=endpoint["secret"], body=request["body"] + b" ", header=header, now=int(time.time()))
        assert request["headers"]["FlowPay-Event-Id"] == body["id"] and body["id"].startswith("evt_")
        assert isinstance(body["created"], int)
    assert len({b["id"] for b in bodies}) == 2
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}
    # the merchant can catch up from the events API: the same payloads
    events = merchant_a.client.get("/payment/events").json()["data"]
    assert [e["id"] for e in events] == [b["id"] for b in reversed(bodies)]
    assert events[-1] == bodies[0]
    assert merchant_b.client.get("/payment/events").json()["data"] == []
    assert merchant_a.client.get("/payment/events", {"type": "transaction.failed"}).json()["data"][0]["id"] == bodies[1]["id"]


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_failing_three_times_then_recovering_gets_the_event_once(merchant_a, receiver, fast_retries, celery_eager):
    register(merchant_a, receiver.url)
    receiver.script = [500, 503, 502]

    merchant_a.client.post("/payment/transactions", BODY, format="json")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "retrying" and delivery.attempts == 1

    sweep_until(lambda: WebhookDelivery.objects.get().status == "succeeded")

    delivery = WebhookDelivery.objects.get()
    assert delivery.attempts == 4 and delivery.last_status_code == 200
    assert len(receiver.requests) == 4
    assert len({json.loads(r["body"])["id"] for r in receiver.requests}) == 1  # the same event, once accepted
    sweep_until(lambda: True)
    assert len(receiver.requests) == 4


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_down_for_good_is_dead_lettered_then_resent(merchant_a, receiver, fast_retries, celery_eager, settings):
    settings.FLOWPAY_WEBHOOK_RETRY_WINDOW_SECONDS = 0.3
    register(merchant_a, receiver.url)
    receiver.script = [500] * 1000

    merchant_a.client.post("/payment/transactions", BODY, format="json")
    sweep_until(lambda: WebhookDelivery.objects.get().status == "dead")
    attempts = WebhookDelivery.objects.get().attempts
    assert attempts >= 2
    sweep_until(lambda: True, rounds=3)
    assert WebhookDelivery.objects.get().attempts == attempts  # dead: no more tries

    out = StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("webhook_deliveries", "--format", "json", stdout=out)
    assert exited.value.code == 1 and json.loads(out.getvalue())["deliveries"][0]["status"] == "dead"

    receiver.script = []  # the merchant fixed their endpoint
    delivery = WebhookDelivery.objects.get()
    listed = merchant_a.client.get("/payment/webhook-deliveries", {"status": "dead"}).json()["data"]
    assert [d["id"] for d in listed] == [delivery.public_id]
    resent = merchant_a.client.post(f"/payment/webhook-deliveries/{delivery.public_id}/resend", {}, format="json")
    assert resent.status_code == 200
    sweep_until(lambda: WebhookDelivery.objects.get().status == "succeeded")
    assert receiver.requests[-1]["headers"]["FlowPay-Event-Id"] == delivery.event.public_id
    again = merchant_a.client.post(f"/payment/webhook-deliveries/{delivery.public_id}/resend", {}, format="json")
    assert again.status_code == 200  # a delivered one may be sent again on request


@pytest.mark.django_db(transaction=True)
def test_simplified_flow_pauses_the_fan_out_and_it_catches_up_afterwards(merchant_a, receiver, fast_retries, celery_eager):
    register(merchant_a, receiver.url)
    runtime.runtime_set(key=runtime.SIMPLIFIED_FLOW, value=True, actor=Actor.system("test"), reason="DR drill")

    for _ in range(3):
        merchant_a.client.post("/payment/transactions", BODY, format="json")
    webhooks_sweep_task()
    assert receiver.requests == [] and OutboxEvent.objects.filter(relayed_at__isnull=True).count() == 3

    runtime.runtime_set(key=runtime.SIMPLIFIED_FLOW, value=False, actor=Actor.system("test"), reason="recovered")
    sweep_until(lambda: len(receiver.requests) == 3)
    assert [json.loads(r["body"])["type"] for r in receiver.requests] == ["transaction.completed"] * 3
    assert not OutboxEvent.objects.filter(relayed_at__isnull=True).exists()


RELAY_THEN_DIE = """
import os, signal
from django.db import transaction
from webhooks.services.outbox import outbox_relay
with transaction.atomic():
    # Runs first at commit, before the relay's own on-commit queuing of the deliveries.
    transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))
    outbox_relay()
"""


@pytest.mark.django_db(transaction=True)
def test_a_relay_killed_between_the_commit_and_the_http_call_loses_nothing(
    merchant_a, receiver, fast_retries, celery_eager, monkeypatch
):
    register(merchant_a, receiver.url)
    monkeypatch.setattr("webhooks.services.outbox._kick_relay", lambda: None)  # the relay runs in the process we kill
    with transaction.atomic():
        event = outbox_publish(merchant_id=merchant_a.merchant.pk, event_type="transaction.completed", payload={"id": "txn_x"})

    env = sibling_env(FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS="1")
    died = subprocess.run([sys.executable, "manage.py", "shell", "--no-imports", "-c", RELAY_THEN_DIE],
                          cwd=django_settings.BASE_DIR, env=env, capture_output=True, timeout=60)
    assert died.returncode == -signal.SIGKILL, died.stderr[-2000:]

    # the relay's work was committed, nothing was sent
    event.refresh_from_db()
    assert event.relayed_at is not None and receiver.requests == []
    assert WebhookDelivery.objects.get().status == "pending"

    # after the restart, the beat sweep delivers it, once
    sweep_until(lambda: len(receiver.requests) == 1)
    sweep_until(lambda: True, rounds=3)
    assert len(receiver.requests) == 1
    assert json.loads(receiver.requests[0]["body"])["id"] == event.public_id


@pytest.mark.django_db
def test_refunds_and_chargebacks_write_their_merchant_events(merchant_a, make_payment, staff_client):
    txn = make_payment(merchant_a, amount=5000)
    merchant_a.client.post(f"/payment/transactions/{txn.public_id}/refund",
                           {"amount": 1000, "reason": "goodwill", "refundToOriginalMethod": False}, format="json")
    created = merchant_a.client.post(f"/payment/transactions/{txn.public_id}/chargeback",
                                     {"chargebackReference": "CB-EVT", "amount": 2000, "reason": "Unauthorized"}, format="json")
    assert created.status_code == 201, created.json()
    staff_client("finance").post(f"/payment/chargebacks/{created.json()['id']}/outcome", {"outcome": "lost"}, format="json")

    types = list(OutboxEvent.objects.filter(merchant=merchant_a.merchant).order_by("id").values_list("type", flat=True))
    assert types == ["transaction.completed", "refund.succeeded", "chargeback.created", "chargeback.closed"]
    closed = OutboxEvent.objects.get(type="chargeback.closed").payload
    assert closed["status"] == "lost" and closed["id"] == created.json()["id"]
    refund_event = OutboxEvent.objects.get(type="refund.succeeded").payload
    assert refund_event["amount"] == 1000 and refund_event["transaction"] == txn.public_id
