"""Where merchant webhooks may go: every non-global address is refused in every disguise, a
bad port is a 400, and a delivery connects to the address that was checked (a DNS answer
that changes after the check cannot redirect it); connections to a checked address are kept
alive and reused, within a bound."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

import pytest
from django.db import transaction

from webhooks import destinations
from webhooks.destinations import Destination, destination_pool, destination_pools_close
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


class _KeepAliveRecorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    peers: list[tuple[str, int]] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).peers.append(self.client_address)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def keep_alive_receiver():
    _KeepAliveRecorder.peers = []
    destination_pools_close()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAliveRecorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    destination_pools_close()
    server.shutdown()


@pytest.mark.django_db(transaction=True)
def test_deliveries_to_one_endpoint_reuse_one_connection(merchant_a, settings, keep_alive_receiver):
    settings.FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS = True
    port = keep_alive_receiver.server_address[1]
    merchant_a.client.post("/payment/webhook-endpoints", {"url": f"http://127.0.0.1:{port}/hook"}, format="json")
    # when three events are delivered one after another
    for number in range(3):
        with transaction.atomic():
            outbox_publish(merchant_id=merchant_a.merchant.pk, event_type="transaction.completed", payload={"id": f"txn_{number}"})
        outbox_relay()
        delivery = WebhookDelivery.objects.get(event__payload__id=f"txn_{number}")
        webhook_delivery_attempt(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert delivery.status == "succeeded", delivery.last_error
    # then all three arrived over one TCP connection (one client port)
    assert len(_KeepAliveRecorder.peers) == 3
    assert len(set(_KeepAliveRecorder.peers)) == 1


def test_the_kept_pools_are_bounded_and_the_oldest_is_closed_first(monkeypatch):
    destination_pools_close()
    monkeypatch.setattr(destinations, "POOLS_KEPT", 2)
    made = [Destination(scheme="http", host=f"h{n}.test", port=80, target="/", address="192.0.2.1") for n in range(3)]
    # when three destinations are used with room for two pools
    first, second, third = (destination_pool(d) for d in made)
    # then the least recently used (the first) was closed and dropped, the others are reused
    assert set(destinations._pools.values()) == {second, third}
    assert destination_pool(made[1]) is second
    assert first.pool is None  # urllib3 empties a closed pool's queue
    assert destination_pool(made[0]) is not first
    destination_pools_close()
    assert not destinations._pools
