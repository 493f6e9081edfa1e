"""/metrics and the detailed /payment/health are served to monitoring only (a monitoring
network or the scrape token); /healthz, /readyz and the API docs stay open to anyone."""

import pytest

from core.checks import check_setting_values

MONITORING = ("/metrics", "/payment/health")
OPEN = ("/healthz", "/readyz", "/payment/schema", "/payment/docs")
PUBLIC = "198.51.100.20"


@pytest.fixture
def token(settings):
    settings.FLOWPAY_METRICS_TOKEN = "scrape-secret-1"
    return "scrape-secret-1"


@pytest.mark.django_db
@pytest.mark.parametrize("path", MONITORING)
def test_monitoring_endpoints_refuse_the_public_and_serve_monitoring_networks(client, path):
    refused = client.get(path, REMOTE_ADDR=PUBLIC)
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "permission_error"
    assert "gateway" not in refused.content.decode()
    for monitoring in ("127.0.0.1", "10.1.2.3", "172.20.0.4", "192.168.1.9", "::1"):
        assert client.get(path, REMOTE_ADDR=monitoring).status_code in (200, 503), monitoring


@pytest.mark.django_db
@pytest.mark.parametrize("path", MONITORING)
def test_the_scrape_token_opens_them_from_anywhere(client, token, path):
    assert client.get(path, REMOTE_ADDR=PUBLIC, HTTP_AUTHORIZATION=f"Bearer {token}").status_code in (200, 503)
    assert client.get(path, REMOTE_ADDR=PUBLIC, HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get(path, REMOTE_ADDR=PUBLIC, HTTP_AUTHORIZATION=token).status_code == 403  # not a Bearer header


@pytest.mark.django_db
def test_no_token_is_accepted_until_one_is_set_and_networks_can_be_emptied(client, settings):
    settings.FLOWPAY_METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR=PUBLIC, HTTP_AUTHORIZATION="Bearer ").status_code == 403
    settings.FLOWPAY_METRICS_ALLOWED_NETWORKS = []
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


@pytest.mark.django_db
def test_a_request_through_an_untrusted_proxy_is_not_trusted_by_address(client, settings, token):
    # given a load balancer on a private address that FlowPay was not told to trust
    settings.FLOWPAY_TRUSTED_PROXIES = []
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=PUBLIC).status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=PUBLIC,
                      HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    # once trusted, the client behind it is what counts
    settings.FLOWPAY_TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=PUBLIC).status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="10.9.9.9").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("path", OPEN)
def test_probes_and_the_api_docs_stay_open(client, path):
    assert client.get(path, REMOTE_ADDR=PUBLIC).status_code in (200, 503)


def test_a_bad_cidr_is_a_start_up_error(settings):
    settings.FLOWPAY_METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "not-a-network"]
    settings.FLOWPAY_TRUSTED_PROXIES = ["10.0.0.0/33"]
    ids = [error.id for error in check_setting_values(None) if error.id == "flowpay.E107"]
    assert ids == ["flowpay.E107", "flowpay.E107"]
