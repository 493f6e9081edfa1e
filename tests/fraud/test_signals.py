"""The signals screening sees: the card from the gateway's payment method look-up (never its
number), the IP country from an offline table, the reference-currency amount, the
customer's history and the score made of them; and the settings checks that guard them."""

import datetime as dt

import pytest
from django.utils import timezone

from core.actors import Actor
from fraud.checks import check_fraud_settings
from fraud.models import Decision
from fraud.screening.geoip import ip_country, load_table
from fraud.screening.scoring import risk_score
from fraud.screening.signals import amount_in
from gateways.base import ChargeRequest, Outcome
from gateways.simulator.adapter import SimulatorGateway
from payments.models import Customer
from payments.services.customers import customer_create
from tests.support.fraud import pay


def test_the_simulator_describes_its_test_cards_without_card_numbers():
    simulator = SimulatorGateway()
    visa = simulator.describe_payment_method(token="pm_card_visa")
    assert (visa.brand, visa.funding, visa.country) == ("visa", "credit", "US")
    assert visa == simulator.describe_payment_method(token="pm_card_visa")  # the same card, the same fingerprint
    assert simulator.describe_payment_method(token="pm_card_mastercard_debit").funding == "debit"
    assert simulator.describe_payment_method(token="pm_card_gb").country == "GB"
    assert simulator.describe_payment_method(token="pm_card_visa_chargeDeclined").fingerprint != visa.fingerprint
    assert simulator.describe_payment_method(token="pm_unknown") is None
    assert "4242" not in visa.fingerprint


@pytest.mark.django_db
def test_the_stripe_adapter_reads_the_card_of_a_payment_method_and_asks_for_3ds(stripe_gateway):
    details = stripe_gateway.describe_payment_method(token="pm_card_visa")
    assert details.fingerprint and details.brand == "visa" and details.funding == "credit" and details.country == "FR"
    assert stripe_gateway.describe_payment_method(token="pm_card_visa").fingerprint == details.fingerprint
    assert stripe_gateway.describe_payment_method(token="pm_doesNotExist") is None
    assert stripe_gateway.describe_payment_method(token="src_123") is None
    from gateways.stripe.mapping import payment_intent_params

    request = ChargeRequest(amount=100, currency="USD", payment_method="pm_card_visa", capture=True,
                            flowpay_reference="txn_x", three_d_secure=True)
    assert payment_intent_params(request, idempotency_key="k")["payment_method_options"] == {
        "card": {"request_three_d_secure": "any"}}
    # localstripe takes the option (it does not simulate the issuer's challenge)
    assert stripe_gateway.authorize(payment=request, idempotency_key="flowpay:txn_x:authorize:1").outcome in (
        Outcome.SUCCEEDED, Outcome.REQUIRES_ACTION)


def test_ip_countries_come_from_the_offline_table():
    assert ip_country("198.51.100.20") == "GB"
    assert ip_country("192.0.2.200") == "CA"
    assert ip_country("::ffff:203.0.113.130") == "NG"
    assert ip_country("2001:db8:8000::1") == "JP"
    assert ip_country("10.0.0.1") is None and ip_country("not an ip") is None and ip_country(None) is None


def test_a_configured_geoip_file_replaces_the_table(tmp_path, settings):
    table = tmp_path / "geo.csv"
    table.write_text("# start,end,country\n1.0.0.0,1.0.0.255,AU\n8.8.8.0/24,us\n")
    settings.FLOWPAY_FRAUD_GEOIP_FILE = str(table)
    assert ip_country("1.0.0.7") == "AU" and ip_country("8.8.8.8") == "US" and ip_country("198.51.100.20") is None
    bad = tmp_path / "bad.csv"
    bad.write_text("1.0.0.0,1.0.0.255,Australia\n")
    with pytest.raises(ValueError, match="bad.csv:1"):
        load_table(str(bad))
    settings.FLOWPAY_FRAUD_GEOIP_FILE = str(bad)
    assert "fraud.E004" in {error.id for error in check_fraud_settings(None)}


@pytest.mark.parametrize(("amount", "currency", "target", "expected"), [
    (100000, "EUR", "USD", 108000),  # 1,000.00 EUR at 1.08
    (1999, "USD", "USD", 1999),
    (10000, "JPY", "USD", 6700),  # ¥10,000 at 0.0067: 67.00 USD
    (1000, "KWD", "USD", 325),  # 1.000 KWD (three decimals) at 3.25: 3.25 USD
    (108000, "USD", "EUR", 100000),
    (1000, "CHF", "EUR", 1046),  # via the reference: 11.30 USD / 1.08, rounded half up
    (1000, "NOK", "USD", None),  # no rate
])
def test_amounts_convert_to_the_reference_currency_with_the_rate_table(amount, currency, target, expected):
    assert amount_in(amount, currency, target) == expected


def test_bad_fraud_settings_stop_start_up(settings):
    settings.FLOWPAY_FRAUD_FAILURE_POLICY = "fail_sometimes"
    settings.FLOWPAY_FRAUD_REFERENCE_CURRENCY = "usd"
    settings.FLOWPAY_FRAUD_REFERENCE_RATES = ["EUR=abc", "XXX=1"]
    assert {"fraud.E001", "fraud.E002", "fraud.E003"} <= {error.id for error in check_fraud_settings(None)}


def test_the_score_weighs_velocity_history_countries_and_unusual_amounts():
    quiet = {"is_new_customer": False, "amount": 2000}
    assert risk_score(quiet) == (0, [])
    score, reasons = risk_score({
        "is_new_customer": True, "total_charges_per_card_fingerprint_hourly": 12,
        "declined_charges_per_card_fingerprint_daily": 4, "ip_country": "NG", "card_country": "US",
        "billing_address_country": "US", "customer_prior_disputes": 1, "amount": 2000,
    })
    assert score == 95  # velocity capped at 40, +10 new, +20 country, +25 dispute
    assert [r.signal for r in reasons][:2] == ["total_charges_per_card_fingerprint_hourly", "customer_prior_disputes"]
    assert sum(r.points for r in reasons) == 95
    unusual, made_of = risk_score({"is_new_customer": False, "amount": 60000, "customer_average_amount": 5000,
                                   "customer_successful_payments": 3})
    assert unusual == 30 and made_of[0].signal == "customer_average_amount"
    assert risk_score({"customer_prior_disputes": 5, "ip_country": "NG", "card_country": "US",
                       "total_charges_per_card_fingerprint_hourly": 50, "is_new_customer": True})[0] == 100


@pytest.mark.django_db
def test_the_customers_history_is_a_signal(merchant_a):
    customer = customer_create(merchant=merchant_a.merchant, actor=Actor.system("test"), email="Loyal@Example.com",
                               name="Loyal", metadata={})
    Customer.objects.filter(pk=customer.pk).update(created_at=timezone.now() - dt.timedelta(days=30))
    response = pay(merchant_a, customer=customer.public_id)
    decision = Decision.objects.get(transaction__public_id=response.json()["id"])
    assert decision.signals["is_new_customer"] is True and decision.signals["customer_age_days"] == 30
    assert decision.signals["email"] == "loyal@example.com" and decision.signals["email_domain"] == "example.com"
    for _ in range(2):
        pay(merchant_a, customer=customer.public_id, amount=3000)
    latest = pay(merchant_a, customer=customer.public_id, amount=40000)
    signals = Decision.objects.get(transaction__public_id=latest.json()["id"]).signals
    assert signals["customer_successful_payments"] == 3 and signals["is_new_customer"] is False
    assert signals["customer_average_amount"] == (1999 + 3000 + 3000) // 3
    reasons = {r["signal"]: r["points"] for r in latest.json()["risk"]["reasons"]}
    assert reasons["customer_average_amount"] == 30  # 40,000 is 15× the usual 2,666


@pytest.mark.django_db
def test_metrics_export_the_fraud_latency_and_decisions(client, merchant_a):
    from tests.support.fraud import add_rule

    def scraped() -> str:
        return client.get("/metrics").content.decode()

    def value(text: str, series: str) -> float:
        line = next((line for line in text.splitlines() if line.startswith(series + " ")), None)
        return float(line.rsplit(" ", 1)[1]) if line else 0.0

    before = scraped()
    add_rule(merchant_a, "block if :amount: > 500000")
    pay(merchant_a)
    pay(merchant_a, amount=600000)
    after = scraped()
    assert "# TYPE fraud_detection_latency histogram" in after
    assert value(after, "fraud_detection_latency_count") - value(before, "fraud_detection_latency_count") == 2
    assert value(after, 'fraud_detection_latency_bucket{le="1.0"}') >= value(after, 'fraud_detection_latency_bucket{le="0.1"}')
    for decision in ("allow", "block"):
        series = f'fraud_decisions_total{{decision="{decision}"}}'
        assert value(after, series) - value(before, series) == 1
