"""Live and test are two worlds: an API key sees and changes only objects of its own mode.

The matrix runs every merchant route (list, detail, action) against live objects, first with
a test key of the same merchant (404, or absent from the list, and nothing changes), then
with a live key (it works). A route added without a row here fails the coverage test."""

import pytest
from django.urls import get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import api_key_create
from core.actors import Actor
from fraud.models import Review
from ledger.models import LedgerTransaction
from payments.models import Customer, PaymentMethod, Transaction
from refunds.models import Chargeback, Refund
from subscriptions.models import Invoice, Plan, Subscription
from tests.support.ledger import release_all
from webhooks.models import OutboxEvent, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
CARD = {"currency": "usd", "paymentMethod": "pm_card_visa"}


def _client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def _created(response) -> dict:
    assert response.status_code in (200, 201), response.json()
    return response.json()


@pytest.fixture
def worlds(merchant_a, settings):
    """Merchant A's live objects, made with its live key; `test` is its fixture's test key."""
    settings.FLOWPAY_WEBHOOKS_ALLOW_PRIVATE_URLS = True
    live = _client(api_key_create(merchant=merchant_a.merchant, environment="live", actor=SYSTEM).secret)
    post = lambda url, body=None: _created(live.post(url, body or {}, format="json"))  # noqa: E731
    ids = {
        "authorized": post("/payment/transactions", {**CARD, "amount": 5000, "captureMethod": "manual"})["id"],
        "to_cancel": post("/payment/transactions", {**CARD, "amount": 5000, "captureMethod": "manual"})["id"],
        "completed": post("/payment/transactions", {**CARD, "amount": 5000})["id"],
        "disputed": post("/payment/transactions", {**CARD, "amount": 5000})["id"],
        "customer": post("/payment/customers", {"name": "Live Ann"})["id"],
        "plan": post("/payment/plans", {"name": "Live", "amount": 1000, "currency": "usd", "interval": "month"})["id"],
        "plan_to_deactivate": post("/payment/plans", {"name": "Old", "amount": 900, "currency": "usd", "interval": "month"})["id"],
        "endpoint": post("/payment/webhook-endpoints", {"url": "https://merchant.example/live"})["id"],
        "endpoint_to_delete": post("/payment/webhook-endpoints", {"url": "https://merchant.example/old"})["id"],
    }
    ids["rule"] = post("/payment/fraud/rules", {"rule": "review if :amount: > 90000"})["id"]
    ids["rule_to_disable"] = post("/payment/fraud/rules", {"rule": "block if :amount: > 99000000"})["id"]
    ids["list_item"] = post("/payment/fraud/lists/blocked_emails", {"value": "one@example.com"})["id"]
    ids["list_item_to_remove"] = post("/payment/fraud/lists/blocked_emails", {"value": "two@example.com"})["id"]
    for name in ("review", "review_to_reject"):  # payments held for review by the live rule
        held = post("/payment/transactions", {**CARD, "amount": 95000})["id"]
        ids[name] = Review.objects.get(transaction__public_id=held).public_id
    ids["payment_method"] = post(f"/payment/customers/{ids['customer']}/payment-methods", {"token": "pm_card_visa"})["id"]
    ids["subscription"] = post("/payment/subscriptions", {"customer": ids["customer"], "plan": ids["plan"],
                                                          "paymentMethod": "pm_card_visa"})["id"]
    ids["invoice"] = Invoice.objects.get(subscription__public_id=ids["subscription"]).public_id
    ids["refund"] = post(f"/payment/transactions/{ids['completed']}/refund", {"amount": 100})["id"]
    ids["failed_refund"] = post(f"/payment/transactions/{ids['completed']}/refund", {"amount": 100})["id"]
    Refund.objects.filter(public_id=ids["failed_refund"]).update(status="failed", failed_at=timezone.now())
    ids["chargeback"] = post(f"/payment/transactions/{ids['disputed']}/chargeback", {"chargebackReference": "CB-1", "amount": 50})["id"]
    ids["chargeback_to_accept"] = post(f"/payment/transactions/{ids['disputed']}/chargeback",
                                       {"chargebackReference": "CB-2", "amount": 50})["id"]
    ids["balance_transaction"] = LedgerTransaction.objects.get(source_id=ids["completed"]).public_id
    release_all()
    ids["payout"] = post("/payment/payouts", {"amount": 100, "currency": "usd"})["id"]
    event = OutboxEvent.objects.filter(merchant=merchant_a.merchant, livemode=True).first()
    ids["event"] = event.public_id
    endpoint = WebhookEndpoint.objects.get(public_id=ids["endpoint"])
    now = timezone.now()
    ids["delivery"] = WebhookDelivery.objects.create(
        event=event, endpoint=endpoint, status="dead", next_attempt_at=now, retry_window_started_at=now
    ).public_id
    return live, merchant_a.client, ids


# (url name, method, path template, body) for every route that names an object. The live
# key's run goes down the list in order: subscription actions leave it in a state the next
# one accepts (update, pause, resume, cancel).
OBJECT_ROUTES = [
    ("transaction-detail", "get", "/payment/transactions/{completed}", None),
    ("transaction-capture", "post", "/payment/transactions/{authorized}/capture", {}),
    ("transaction-cancel", "post", "/payment/transactions/{to_cancel}/cancel", {}),
    ("transaction-refund", "post", "/payment/transactions/{completed}/refund", {"amount": 100}),
    ("transaction-refunds", "get", "/payment/transactions/{completed}/refunds", None),
    ("transaction-chargeback", "post", "/payment/transactions/{disputed}/chargeback", {"chargebackReference": "CB-3", "amount": 50}),
    ("transaction-chargebacks", "get", "/payment/transactions/{disputed}/chargebacks", None),
    ("customer-detail", "get", "/payment/customers/{customer}", None),
    ("customer-payment-methods", "get", "/payment/customers/{customer}/payment-methods", None),
    ("customer-payment-methods", "post", "/payment/customers/{customer}/payment-methods", {"token": "pm_card_mastercard"}),
    ("refund-detail", "get", "/payment/refunds/{refund}", None),
    ("refund-retry", "post", "/payment/refunds/{failed_refund}/retry", {}),
    ("chargeback-detail", "get", "/payment/chargebacks/{chargeback}", None),
    ("chargeback-evidence", "post", "/payment/chargebacks/{chargeback}/evidence", {"text": "Delivered, signed for."}),
    ("chargeback-accept", "post", "/payment/chargebacks/{chargeback_to_accept}/accept", {}),
    ("plan-detail", "get", "/payment/plans/{plan}", None),
    ("plan-deactivate", "post", "/payment/plans/{plan_to_deactivate}/deactivate", {}),
    ("subscription-detail", "get", "/payment/subscriptions/{subscription}", None),
    ("subscription-detail", "post", "/payment/subscriptions/{subscription}", {"cancelAtPeriodEnd": True}),
    ("subscription-pause", "post", "/payment/subscriptions/{subscription}/pause", {}),
    ("subscription-resume", "post", "/payment/subscriptions/{subscription}/resume", {}),
    ("subscription-cancel", "post", "/payment/subscriptions/{subscription}/cancel", {}),
    ("invoice-detail", "get", "/payment/invoices/{invoice}", None),
    ("webhook-endpoint-detail", "get", "/payment/webhook-endpoints/{endpoint}", None),
    ("webhook-endpoint-detail", "delete", "/payment/webhook-endpoints/{endpoint_to_delete}", None),
    ("webhook-delivery-resend", "post", "/payment/webhook-deliveries/{delivery}/resend", {}),
    ("event-detail", "get", "/payment/events/{event}", None),
    ("balance-transaction-detail", "get", "/payment/balance-transactions/{balance_transaction}", None),
    ("payout-detail", "get", "/payment/payouts/{payout}", None),
    ("fraud-rule-detail", "get", "/payment/fraud/rules/{rule}", None),
    ("fraud-rule-detail", "patch", "/payment/fraud/rules/{rule}", {"description": "live only"}),
    ("fraud-rule-detail", "delete", "/payment/fraud/rules/{rule_to_disable}", None),
    ("fraud-list-item-detail", "delete", "/payment/fraud/lists/blocked_emails/{list_item_to_remove}", None),
    ("fraud-review-detail", "get", "/payment/fraud/reviews/{review}", None),
    ("fraud-review-approve", "post", "/payment/fraud/reviews/{review}/approve", {}),
    ("fraud-review-reject", "post", "/payment/fraud/reviews/{review_to_reject}/reject", {}),
]

# (url name, path, the ids of live objects it lists).
LIST_ROUTES = [
    ("transactions", "/payment/transactions", ["authorized", "to_cancel", "completed", "disputed"]),
    ("customers", "/payment/customers", ["customer"]),
    ("refunds", "/payment/refunds", ["refund", "failed_refund"]),
    ("chargebacks", "/payment/chargebacks", ["chargeback", "chargeback_to_accept"]),
    ("plans", "/payment/plans", ["plan", "plan_to_deactivate"]),
    ("subscriptions", "/payment/subscriptions", ["subscription"]),
    ("invoices", "/payment/invoices", ["invoice"]),
    ("webhook-endpoints", "/payment/webhook-endpoints", ["endpoint", "endpoint_to_delete"]),
    ("webhook-deliveries", "/payment/webhook-deliveries", ["delivery"]),
    ("events", "/payment/events", ["event"]),
    ("balance-transactions", "/payment/balance-transactions", ["balance_transaction"]),
    ("payouts", "/payment/payouts", ["payout"]),
    ("fraud-rules", "/payment/fraud/rules", ["rule", "rule_to_disable"]),
    ("fraud-list-items", "/payment/fraud/lists/blocked_emails", ["list_item", "list_item_to_remove"]),
    ("fraud-reviews", "/payment/fraud/reviews", ["review", "review_to_reject"]),
]

# Routes that name no object of a mode: staff-only decisions (merchant keys get 403 whatever
# the mode), the merchant's own settings, shared by both modes, and the fraud lists' counts
# and a rule's test against history, aggregates of the key's own mode (tests/fraud checks them).
MODELESS_ROUTES = {"refund-approve", "refund-reject", "chargeback-outcome", "subscription-settings", "fraud-lists",
                   "fraud-rule-test"}
# Routes that sum up one mode's objects (checked below: a test key's balance holds no live money).
MODE_SUMMARY_ROUTES = {"balance"}
# Staff-only routes of objects that belong to no merchant or mode (a gateway account's
# settlement day): a merchant key gets 403 whatever its mode (tests/reconciliation).
MODELESS_ROUTES |= {"reconciliation-runs", "reconciliation-run-detail", "reconciliation-items", "reconciliation-item-detail",
                    "reconciliation-item-investigate", "reconciliation-item-resolve", "reconciliation-item-approve",
                    "reconciliation-item-reject"}


def _call(client, method, path, body):
    return getattr(client, method)(path, body, format="json") if body is not None else getattr(client, method)(path)


def _listed(client, path, **params) -> set[str]:
    response = client.get(path, {"limit": 100, **params})
    assert response.status_code == 200, response.json()
    return {row["id"] for row in response.json()["data"]}


def test_every_merchant_route_is_in_the_matrix():
    names = {
        route.name
        for include in get_resolver().url_patterns if str(include.pattern) == "payment/" and hasattr(include, "url_patterns")
        for route in include.url_patterns
    }
    covered = {row[0] for row in OBJECT_ROUTES} | {row[0] for row in LIST_ROUTES} | MODELESS_ROUTES | MODE_SUMMARY_ROUTES
    assert "transaction-refund" in names and names - covered == set(), "add the new route to the live/test matrix"


def test_a_test_key_neither_sees_nor_changes_live_objects_and_a_live_key_does(worlds):
    live, test, ids = worlds
    before = {
        "transactions": dict(Transaction.objects.values_list("public_id", "status")),
        "refunds": Refund.objects.count(), "chargebacks": Chargeback.objects.count(),
        "payment_methods": PaymentMethod.objects.count(),
        "subscription": Subscription.objects.get(public_id=ids["subscription"]).status,
        "plans": Plan.objects.filter(active=True).count(),
        "endpoints": WebhookEndpoint.objects.filter(deleted_at__isnull=True).count(),
        "deliveries": dict(WebhookDelivery.objects.values_list("public_id", "status")),
    }

    for name, method, template, body in OBJECT_ROUTES:
        response = _call(test, method, template.format(**ids), body)
        assert response.status_code == 404, (name, method, response.status_code, response.json())
        assert response.json()["error"]["code"] == "resource_missing"
    for name, path, listed in LIST_ROUTES:
        assert not _listed(test, path) & {ids[key] for key in listed}, name
    assert test.get("/payment/balance").json()["available"] == []
    assert live.get("/payment/balance").json()["available"][0]["amount"] > 0

    assert dict(Transaction.objects.values_list("public_id", "status")) == before["transactions"]
    assert Refund.objects.count() == before["refunds"] and Chargeback.objects.count() == before["chargebacks"]
    assert PaymentMethod.objects.count() == before["payment_methods"]
    assert Subscription.objects.get(public_id=ids["subscription"]).status == before["subscription"]
    assert Plan.objects.filter(active=True).count() == before["plans"]
    assert WebhookEndpoint.objects.filter(deleted_at__isnull=True).count() == before["endpoints"]
    assert dict(WebhookDelivery.objects.values_list("public_id", "status")) == before["deliveries"]

    for name, path, listed in LIST_ROUTES:
        assert _listed(live, path) >= {ids[key] for key in listed}, name
    for name, method, template, body in OBJECT_ROUTES:
        response = _call(live, method, template.format(**ids), body)
        assert response.status_code in (200, 201), (name, method, response.status_code, response.json())


def test_objects_take_the_mode_of_the_key_that_made_them_and_live_keys_do_not_see_test_ones(worlds):
    live, test, ids = worlds
    customer = _created(test.post("/payment/customers", {"name": "Test Tom"}, format="json"))
    plan = _created(test.post("/payment/plans", {"name": "T", "amount": 500, "currency": "usd", "interval": "month"}, format="json"))
    payment = _created(test.post("/payment/transactions", {**CARD, "amount": 700}, format="json"))
    refund = _created(test.post(f"/payment/transactions/{payment['id']}/refund", {"amount": 100}, format="json"))
    endpoint = _created(test.post("/payment/webhook-endpoints", {"url": "https://merchant.example/test"}, format="json"))

    assert (customer["livemode"], plan["livemode"], payment["livemode"], refund["livemode"], endpoint["livemode"]) == (False,) * 5
    assert live.get(f"/payment/customers/{ids['customer']}").json()["livemode"] is True
    assert Customer.objects.get(public_id=ids["customer"]).livemode and Plan.objects.get(public_id=ids["plan"]).livemode
    assert PaymentMethod.objects.get(public_id=ids["payment_method"]).livemode
    assert Refund.objects.get(public_id=ids["refund"]).livemode and Chargeback.objects.get(public_id=ids["chargeback"]).livemode
    assert Invoice.objects.get(public_id=ids["invoice"]).livemode
    for path in (f"/payment/customers/{customer['id']}", f"/payment/plans/{plan['id']}", f"/payment/transactions/{payment['id']}",
                 f"/payment/refunds/{refund['id']}", f"/payment/webhook-endpoints/{endpoint['id']}"):
        assert live.get(path).status_code == 404, path
    assert payment["id"] not in _listed(live, "/payment/transactions")
    test_events = set(OutboxEvent.objects.filter(livemode=False).values_list("public_id", flat=True))
    assert test_events and not test_events & _listed(live, "/payment/events")
    assert _listed(test, "/payment/events") >= test_events


def test_a_test_key_cannot_charge_or_subscribe_with_live_customers_plans_or_saved_methods(worlds):
    live, test, ids = worlds
    charged = test.post("/payment/transactions", {**CARD, "amount": 100, "customer": ids["customer"]}, format="json")
    assert charged.status_code == 400 and charged.json()["error"]["param"] == "customer"
    saved = test.post("/payment/transactions", {**CARD, "amount": 100, "paymentMethod": ids["payment_method"]}, format="json")
    assert saved.status_code == 400 and saved.json()["error"]["param"] == "paymentMethod"
    test_customer = _created(test.post("/payment/customers", {}, format="json"))["id"]
    subscribed = test.post("/payment/subscriptions", {"customer": test_customer, "plan": ids["plan"], "paymentMethod": "pm_card_visa"},
                           format="json")
    assert subscribed.status_code == 400 and subscribed.json()["error"]["param"] == "plan"
    assert not Transaction.objects.filter(livemode=False).exists()
    assert live.post("/payment/transactions", {**CARD, "amount": 100, "paymentMethod": ids["payment_method"]},
                     format="json").status_code == 201


def test_staff_see_both_modes_and_may_narrow_to_one(worlds, staff_client):
    live, test, ids = worlds
    test_payment = _created(test.post("/payment/transactions", {**CARD, "amount": 700}, format="json"))["id"]
    auditor = staff_client("auditor")
    both = _listed(auditor, "/payment/transactions")
    assert {test_payment, ids["completed"]} <= both
    assert test_payment not in _listed(auditor, "/payment/transactions", livemode="true")
    assert ids["completed"] in _listed(auditor, "/payment/transactions", livemode="true")
    assert _listed(auditor, "/payment/transactions", livemode="false") == {test_payment}
    assert auditor.get(f"/payment/refunds/{ids['refund']}").status_code == 200
    assert ids["event"] in _listed(auditor, "/payment/events", livemode="true")
    # a key's own mode wins over the filter
    assert _listed(test, "/payment/transactions", livemode="true") == {test_payment}


def test_a_live_event_goes_only_to_live_endpoints(worlds, merchant_a):
    from webhooks.services.outbox import outbox_relay

    live, test, ids = worlds
    test_endpoint = _created(test.post("/payment/webhook-endpoints", {"url": "https://merchant.example/t"}, format="json"))["id"]
    _created(test.post("/payment/transactions", {**CARD, "amount": 700}, format="json"))
    WebhookDelivery.objects.all().delete()
    OutboxEvent.objects.update(relayed_at=None)
    outbox_relay()
    pairs = set(WebhookDelivery.objects.values_list("event__livemode", "endpoint__livemode"))
    assert pairs == {(True, True), (False, False)}
    assert WebhookDelivery.objects.filter(endpoint__public_id=test_endpoint).exists()
    body = live.get(f"/payment/events/{ids['event']}").json()
    assert body["livemode"] is True and body["data"]["object"]["livemode"] is True


def test_idempotency_keys_of_live_and_test_keys_are_apart(worlds):
    live, test, ids = worlds
    first = live.post("/payment/transactions", {**CARD, "amount": 300}, format="json", HTTP_IDEMPOTENCY_KEY="same")
    second = test.post("/payment/transactions", {**CARD, "amount": 300}, format="json", HTTP_IDEMPOTENCY_KEY="same")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"] and "Idempotent-Replayed" not in second
    assert (first.json()["livemode"], second.json()["livemode"]) == (True, False)
