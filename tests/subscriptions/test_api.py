"""The subscriptions API: plans, subscriptions, invoices, settings — validation, merchant
isolation, idempotency and the synchronous first charge."""

import pytest

from audit.models import AuditEntry
from gateways.models import SimulatorCharge
from subscriptions.models import Invoice, Subscription

PLAN = {"name": "Pro", "amount": 1999, "currency": "usd", "interval": "month"}


def post(account, path, body=None, **headers):
    return account.client.post(path, body or {}, format="json", **headers)


def create_plan(account, **overrides):
    response = post(account, "/payment/plans", {**PLAN, **overrides})
    assert response.status_code == 201, response.json()
    return response.json()


def create_customer(account, token=None):
    customer = post(account, "/payment/customers", {"email": "ada@example.com"}).json()
    method = None
    if token:
        method = post(account, f"/payment/customers/{customer['id']}/payment-methods", {"token": token}).json()
    return customer, method


def create_subscription(account, plan, customer, payment_method="pm_card_visa", key=None, **extra):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return post(account, "/payment/subscriptions",
                {"customer": customer["id"], "plan": plan["id"], "paymentMethod": payment_method, **extra}, **headers)


@pytest.mark.django_db
def test_plans_are_created_listed_retrieved_and_deactivated(merchant_a):
    plan = create_plan(merchant_a, intervalCount=3, trialDays=7, metadata={"tier": "gold"})
    assert plan["id"].startswith("plan_") and plan["object"] == "plan"
    assert (plan["amount"], plan["currency"], plan["interval"], plan["intervalCount"], plan["trialDays"], plan["active"]) == (
        1999, "USD", "month", 3, 7, True)
    assert merchant_a.client.get(f"/payment/plans/{plan['id']}").json()["metadata"] == {"tier": "gold"}
    listed = merchant_a.client.get("/payment/plans").json()
    assert listed["object"] == "list" and [p["id"] for p in listed["data"]] == [plan["id"]]
    deactivated = post(merchant_a, f"/payment/plans/{plan['id']}/deactivate")
    assert deactivated.status_code == 200 and deactivated.json()["active"] is False
    assert post(merchant_a, f"/payment/plans/{plan['id']}/deactivate").status_code == 409
    assert merchant_a.client.get("/payment/plans?active=true").json()["data"] == []
    customer, _ = create_customer(merchant_a)
    refused = create_subscription(merchant_a, plan, customer)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "plan_inactive"


@pytest.mark.parametrize("body, param", [
    ({**PLAN, "amount": 19.99}, "amount"),
    ({**PLAN, "amount": 0}, "amount"),
    ({**PLAN, "amount": "1999"}, "amount"),
    ({**PLAN, "currency": "usdx"}, "currency"),
    ({**PLAN, "interval": "fortnight"}, "interval"),
    ({**PLAN, "intervalCount": 0}, "intervalCount"),
    ({**PLAN, "interval": "month", "intervalCount": 37}, "intervalCount"),
    ({**PLAN, "intervalCount": "2"}, "intervalCount"),
    ({**PLAN, "trialDays": -1}, "trialDays"),
    ({**PLAN, "active": False}, "active"),
    ({k: v for k, v in PLAN.items() if k != "name"}, "name"),
])
@pytest.mark.django_db
def test_invalid_plans_are_400_with_the_parameter_named(merchant_a, body, param):
    response = post(merchant_a, "/payment/plans", body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


@pytest.mark.django_db
def test_a_subscription_without_trial_is_charged_at_once_and_active_once_paid(merchant_a):
    plan = create_plan(merchant_a)
    customer, method = create_customer(merchant_a, token="pm_card_visa")
    response = create_subscription(merchant_a, plan, customer, payment_method=method["id"])
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"].startswith("sub_") and body["status"] == "active"
    assert body["latestInvoice"]["status"] == "paid" and body["latestInvoice"]["transaction"].startswith("txn_")
    assert body["currentPeriodStart"] == body["billingAnchor"] and body["nextBillingAt"] == body["currentPeriodEnd"]
    assert body["plan"]["id"] == plan["id"] and body["cancelAtPeriodEnd"] is False
    invoices = merchant_a.client.get(f"/payment/invoices?subscription={body['id']}").json()["data"]
    assert len(invoices) == 1 and invoices[0]["amount"] == 1999 and invoices[0]["attemptCount"] == 1
    detail = merchant_a.client.get(f"/payment/invoices/{invoices[0]['id']}").json()
    assert detail["status"] == "paid" and detail["subscription"] == body["id"]
    assert AuditEntry.objects.filter(action="subscription.active", object_id=body["id"], actor_type="api").exists()


@pytest.mark.django_db
def test_trials_and_declined_first_invoices(merchant_a):
    plan = create_plan(merchant_a, trialDays=14)
    customer, _ = create_customer(merchant_a)
    trial = create_subscription(merchant_a, plan, customer).json()
    assert trial["status"] == "trialing" and trial["latestInvoice"] is None and trial["nextBillingAt"] == trial["trialEnd"]
    no_trial = create_subscription(merchant_a, plan, customer, trialDays=0).json()
    assert no_trial["status"] == "active"
    declined = create_subscription(merchant_a, plan, customer, payment_method="pm_card_chargeDeclinedInsufficientFunds",
                                   trialDays=0)
    assert declined.status_code == 201
    body = declined.json()
    assert body["status"] == "incomplete"
    assert body["latestInvoice"]["status"] == "open" and body["latestInvoice"]["lastFailureCode"] == "insufficient_funds"
    assert body["latestInvoice"]["nextAttemptAt"] is not None


@pytest.mark.parametrize("body, param, code", [
    ({"customer": "cus_missing", "plan": "PLAN", "paymentMethod": "pm_card_visa"}, "customer", "resource_missing"),
    ({"customer": "CUS", "plan": "plan_missing", "paymentMethod": "pm_card_visa"}, "plan", "resource_missing"),
    ({"customer": "CUS", "plan": "PLAN", "paymentMethod": "pm_nonexistent"}, "paymentMethod", "resource_missing"),
    ({"customer": "CUS", "plan": "PLAN", "paymentMethod": "pm_card_visa", "status": "active"}, "status", "parameter_unknown"),
    ({"customer": "CUS", "plan": "PLAN", "paymentMethod": "pm_card_visa", "trialDays": 1.5}, "trialDays", None),
    ({"customer": "CUS", "plan": "PLAN"}, "paymentMethod", None),
    ({"customer": "nope", "plan": "PLAN", "paymentMethod": "pm_card_visa"}, "customer", None),
])
@pytest.mark.django_db
def test_invalid_subscriptions_are_400(merchant_a, body, param, code):
    plan = create_plan(merchant_a)
    customer, _ = create_customer(merchant_a)
    body = {k: (customer["id"] if v == "CUS" else plan["id"] if v == "PLAN" else v) for k, v in body.items()}
    response = post(merchant_a, "/payment/subscriptions", body)
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["param"] == param
    if code:
        assert response.json()["error"]["code"] == code
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_merchants_see_only_their_own_plans_subscriptions_and_invoices(merchant_a, merchant_b, staff_client):
    plan = create_plan(merchant_a)
    customer, _ = create_customer(merchant_a)
    sub = create_subscription(merchant_a, plan, customer).json()
    invoice_id = sub["latestInvoice"]["id"]
    for path in (f"/payment/plans/{plan['id']}", f"/payment/subscriptions/{sub['id']}", f"/payment/invoices/{invoice_id}"):
        response = merchant_b.client.get(path)
        assert response.status_code == 404 and response.json()["error"]["code"] == "resource_missing"
    for action in ("cancel", "pause", "resume"):
        assert post(merchant_b, f"/payment/subscriptions/{sub['id']}/{action}").status_code == 404
    assert post(merchant_b, f"/payment/plans/{plan['id']}/deactivate").status_code == 404
    assert merchant_b.client.get("/payment/subscriptions").json()["data"] == []
    assert merchant_b.client.get(f"/payment/invoices?subscription={sub['id']}").json()["data"] == []
    # another merchant's plan or customer in a body is a missing one
    b_customer, _ = create_customer(merchant_b)
    assert create_subscription(merchant_b, plan, b_customer).json()["error"]["param"] == "plan"
    # staff read across merchants, but never write
    support = staff_client("support")
    assert support.get(f"/payment/subscriptions/{sub['id']}").status_code == 200
    assert support.post(f"/payment/subscriptions/{sub['id']}/cancel", {}, format="json").status_code == 403
    assert support.post("/payment/plans", PLAN, format="json").status_code == 403


@pytest.mark.django_db
def test_subscription_create_is_idempotent_and_charges_once(merchant_a):
    plan = create_plan(merchant_a)
    customer, _ = create_customer(merchant_a)
    first = create_subscription(merchant_a, plan, customer, key="signup-1")
    again = create_subscription(merchant_a, plan, customer, key="signup-1")
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    assert Subscription.objects.count() == 1 and Invoice.objects.count() == 1
    assert SimulatorCharge.objects.count() == 1
    other = create_subscription(merchant_a, plan, customer, payment_method="pm_card_mastercard", key="signup-1")
    assert other.status_code == 422 and other.json()["error"]["type"] == "idempotency_error"


@pytest.mark.django_db
def test_cancel_pause_resume_and_update(merchant_a):
    plan = create_plan(merchant_a)
    customer, _ = create_customer(merchant_a)
    sub = create_subscription(merchant_a, plan, customer).json()
    base = f"/payment/subscriptions/{sub['id']}"
    at_end = post(merchant_a, f"{base}/cancel", {"atPeriodEnd": True}).json()
    assert at_end["status"] == "active" and at_end["cancelAtPeriodEnd"] is True and at_end["canceledAt"]
    undone = post(merchant_a, base, {"cancelAtPeriodEnd": False}).json()
    assert undone["cancelAtPeriodEnd"] is False and undone["canceledAt"] is None
    assert post(merchant_a, base, {}).status_code == 400
    assert post(merchant_a, base, {"paymentMethod": "pm_card_mastercard"}).json()["paymentMethod"] == "pm_card_mastercard"
    assert post(merchant_a, f"{base}/pause").json()["status"] == "paused"
    assert post(merchant_a, f"{base}/pause").status_code == 409
    assert post(merchant_a, f"{base}/cancel", {"atPeriodEnd": True}).status_code == 409
    assert post(merchant_a, f"{base}/resume").json()["status"] == "active"
    canceled = post(merchant_a, f"{base}/cancel").json()
    assert canceled["status"] == "canceled" and canceled["endedAt"] and canceled["nextBillingAt"] is None
    assert post(merchant_a, f"{base}/cancel").status_code == 409
    assert post(merchant_a, f"{base}/resume").json()["error"]["code"] == "invalid_state"
    listed = merchant_a.client.get("/payment/subscriptions?status=canceled,active").json()["data"]
    assert [s["id"] for s in listed] == [sub["id"]]
    assert merchant_a.client.get("/payment/subscriptions?status=bogus").status_code == 400
    assert merchant_a.client.get("/payment/invoices?subscription=bogus").status_code == 400
    assert merchant_a.client.get("/payment/invoices?unknown=1").status_code == 400


@pytest.mark.django_db
def test_subscription_settings_choose_the_dunning_final_action(merchant_a):
    assert merchant_a.client.get("/payment/subscription-settings").json()["dunningFinalAction"] == "unpaid"
    assert post(merchant_a, "/payment/subscription-settings", {"dunningFinalAction": "canceled"}).json()["dunningFinalAction"] == "canceled"
    assert merchant_a.client.get("/payment/subscription-settings").json()["dunningFinalAction"] == "canceled"
    assert post(merchant_a, "/payment/subscription-settings", {"dunningFinalAction": "deleted"}).status_code == 400
