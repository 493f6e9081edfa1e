"""Where merchant webhooks may go: every non-global address is refused in every disguise, a
bad port is a 400, and a delivery connects to the address that was checked (a DNS answer
that changes after the check cannot redirect it)."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.db import transaction

from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services.deliveries import webhook_delivery_attempt
from webhooks.services.outbox import outbox_publish, outbox_relay

REFUSED = [
    "https://100.100.100.200/latest/meta-data/",  # CGNAT range: a cloud's metadata service
    "https://100.64.0.1/",
    "https://[2002:a9fe:a9fe::]/",  # 6to4 around 169.254.169.254
    "https://[::ffff:169.254.169.254]/",  # IPv4-mapped
    "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo carrying a private client address
    "https://169.254.169.254/latest/meta-data/",
    "https://10.1.2.3/hook",
    "https://127.0.0.1/hook",
    "https://[::1]/hook",
    "https://0.0.0.0/hook",
]


@pytest.mark.parametrize("url", REFUSED)
def test_every_non_global_address_is_refused(merchant_a, settings, url):
    settings.FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS = False
    response = merchant_a.client.post("/payment/webhook-endpoints", {"url": url}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "url_invalid"
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("url", ["https://example.com:99999/x", "https://example.com:0/x", "https://exa mple.com:abc/"])
def test_an_invalid_port_is_a_400_not_a_500(merchant_a, settings, url):
    settings.FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS = False
    response = merchant_a.client.post("/payment/webhook-endpoints", {"url": url}, format="json")
    assert response.status_code == 400, response.content
    assert not WebhookEndpoint.objects.exists()


class _Recorder(BaseHTTPRequestHandler):
    hosts: list[str] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).hosts.append(self.headers["Host"])
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def local_receiver():
    _Recorder.hosts = []
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def _resolver(monkeypatch, answers: dict[str, list[str]]):
    """getaddrinfo that answers `answers` for our test names and records each look-up of them."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            lookups.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host].pop(0), port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


def _deliver_one_event(merchant) -> WebhookDelivery:
    with transaction.atomic():
        outbox_publish(merchant_id=merchant.pk, event_type="transaction.completed", payload={"id": "txn_test"})
    outbox_relay()
    delivery = WebhookDelivery.objects.get()
    webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery


@pytest.mark.django_db(transaction=True)
def test_a_delivery_connects_to_the_checked_address_without_resolving_again(merchant_a, settings, local_receiver, monkeypatch):
    settings.FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS = True
    port = local_receiver.server_address[1]
    lookups = _resolver(monkeypatch, {"hooks.merchant.test": ["127.0.0.1"]})
    # given an endpoint whose name only our resolver knows
    response = merchant_a.client.post("/payment/webhook-endpoints", {"url": f"http://hooks.merchant.test:{port}/hook"}, format="json")
    assert response.status_code == 201, response.content

    # when an event is delivered
    delivery = _deliver_one_event(merchant_a.merchant)

    # then it arrived with the endpoint's Host after a single look-up, the delivery's check: the
    # HTTP client connected to the checked address instead of resolving the name again
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED, delivery.last_error
    assert _Recorder.hosts == [f"hooks.merchant.test:{port}"]
    assert lookups == ["hooks.merchant.test"]


@pytest.mark.django_db(transaction=True)
def test_a_name_that_rebinds_to_a_private_address_after_the_check_is_refused_at_delivery(
    merchant_a, settings, local_receiver, monkeypatch,
):
    settings.FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS = False
    # given a name that resolved to a public address when the endpoint was created
    _resolver(monkeypatch, {"rebind.merchant.test": ["93.184.216.34", "127.0.0.1"]})
    response = merchant_a.client.post("/payment/webhook-endpoints", {"url": "https://rebind.merchant.test/hook"}, format="json")
    assert response.status_code == 201, response.content

    # when it answers with a loopback address at delivery time
    delivery = _deliver_one_event(merchant_a.merchant)

    # then nothing is sent there
    assert delivery.status != WebhookDelivery.Status.SUCCEEDED
    assert "destination refused" in delivery.last_error
    assert _Recorder.hosts == []
