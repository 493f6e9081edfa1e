"""The back-office admin: every registered model opens, money is read-only, transitions are
actions that go through the services (and the audit log), the audit log cannot be edited."""

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.test import RequestFactory
from django.urls import reverse

from accounts.models import ApiKey, StaffToken
from accounts.services import (
    api_key_create,
    merchant_create,
    staff_token_create,
)
from audit.models import AuditEntry
from core.actors import Actor
from core.idempotency import idempotency_begin, request_fingerprint
from payments.models import Customer, Transaction
from payments.services.customers import customer_create, payment_method_attach
from payments.services.transactions import PaymentInput, transaction_create

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
# Built after django.setup(), so it holds every ModelAdmin that autodiscovery registered.
REGISTERED_MODELS = sorted(admin.site._registry, key=lambda model: model._meta.label)


def admin_url(model_or_obj, view: str, *args) -> str:
    opts = model_or_obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def change_url(obj) -> str:
    return admin_url(obj, "change", quote(obj.pk))


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def merchant():
    return merchant_create(name="Admin Test Shop", actor=SYSTEM)


@pytest.fixture
def make_transaction(merchant):
    def make(*, capture_method: str = "manual") -> Transaction:
        return transaction_create(
            merchant=merchant,
            payment=PaymentInput(amount=1000, currency="USD", payment_method="pm_card_visa", capture_method=capture_method),
            actor=SYSTEM,
        )

    return make


@pytest.fixture
def a_row_for_every_model(admin_user, merchant, make_transaction):
    """At least one row in every table the admin shows (the superuser is the User row; the
    merchant's creation leaves a django-auditlog LogEntry and an AuditEntry)."""
    Group.objects.get_or_create(name="support")
    api_key_create(merchant=merchant, actor=SYSTEM)
    staff_token_create(username="support-admin-test", role="support", actor=SYSTEM)
    from accounts.services.lockout import staff_lockout_open

    staff_lockout_open(username="support-admin-test", failures=10, ip="203.0.113.9")
    customer = customer_create(merchant=merchant, email="c@example.com", name="Customer", actor=SYSTEM)
    payment_method_attach(customer=customer, gateway="simulator", gateway_token="tok_visa", brand="visa", last4="4242", actor=SYSTEM)
    # a plan, a subscription (its first invoice, rebill job and charge) and dunning settings
    from subscriptions.services.plans import plan_create, subscription_settings_update
    from subscriptions.services.subscriptions import subscription_create

    plan = plan_create(merchant=merchant, name="Admin plan", amount=1000, currency="USD", interval="month", actor=SYSTEM)
    subscription_create(merchant=merchant, customer=customer.public_id, plan=plan.public_id, payment_method="pm_card_visa", actor=SYSTEM)
    subscription_settings_update(merchant=merchant, dunning_final_action="unpaid", actor=SYSTEM)
    make_transaction()  # also a PaymentAttempt and a SimulatorCharge
    # a refund (an off-gateway credit: no task to run) and a chargeback with its evidence
    from refunds.services.chargebacks import chargeback_create, chargeback_submit_evidence
    from refunds.services.create import refund_create

    completed = make_transaction(capture_method="automatic")
    refund_create(transaction_id=completed.pk, amount=100, reason="admin test", refund_to_original_method=False, actor=SYSTEM)
    chargeback, _ = chargeback_create(transaction_id=completed.pk, chargeback_reference="CB-ADMIN", amount=100,
                                      reason="admin test", actor=SYSTEM)
    chargeback_submit_evidence(chargeback_id=chargeback.pk, text="receipt", files=["doc_1"], actor=SYSTEM)
    # fraud screening: a merchant rule, a list item, a screened payment held for review (its decision and review)
    from fraud.screening.lists import list_item_add
    from fraud.screening.rules import rule_create
    from payments.services.screening import ScreeningContext

    rule_create(merchant=merchant, livemode=False, source="review if :amount: > 5000", actor=SYSTEM)
    list_item_add(merchant=merchant, livemode=False, list_name="blocked_emails", value="fraud@example.com", actor=SYSTEM)
    transaction_create(merchant=merchant, payment=PaymentInput(amount=6000, currency="USD", payment_method="pm_card_visa",
                                                               screening=ScreeningContext()), actor=SYSTEM)
    # an inbound gateway event in the inbox
    from django.utils import timezone

    from gateway_events.models import InboundEvent

    InboundEvent.objects.create(gateway="stripe", event_id="evt_admin_test", type="customer.created",
                                gateway_created_at=timezone.now())
    # an operator switch, a merchant event, an endpoint and its delivery
    from core import runtime
    from webhooks.models import OutboxEvent, WebhookDelivery, WebhookEndpoint

    runtime.runtime_set(key=runtime.FALLBACK_MODE, value=False, actor=SYSTEM, reason="admin test")
    endpoint = WebhookEndpoint.objects.create(merchant=merchant, url="https://merchant.example/hooks", secret="whsec_admin")
    event = OutboxEvent.objects.filter(merchant=merchant).first()
    WebhookDelivery.objects.create(event=event, endpoint=endpoint, status="dead", next_attempt_at=timezone.now(),
                                   retry_window_started_at=timezone.now())
    # a seal of the hash chain over the audit entries written so far
    from django.test import override_settings

    from audit.sealing import audit_seal_pending

    with override_settings(FLOWPAY_AUDIT_SEAL_MIN_AGE_SECONDS=0):
        audit_seal_pending()
    # the ledger: funds paid out, the merchant's terms, an adjustment, a verification run
    from ledger.models import MerchantLedgerSettings
    from ledger.services.adjustments import ledger_adjustment_request
    from ledger.services.payouts import payout_create
    from ledger.services.verification_runs import ledger_verification_record
    from tests.support.ledger import release_all

    release_all()
    payout_create(merchant_id=merchant.pk, livemode=False, amount=100, currency="USD", actor=SYSTEM)
    MerchantLedgerSettings.objects.create(merchant=merchant)
    ledger_adjustment_request(merchant_id=merchant.pk, livemode=False, currency="USD", amount=50, debit_code="platform_revenue",
                              credit_code="merchant_available", reason="admin test", actor=SYSTEM)
    ledger_verification_record(started_at=timezone.now(), merchant_id=None, imbalance={"USD": 0}, problems=[], run_by="test")
    idempotency_begin(
        scope=f"merchant:{merchant.pk}", key="admin-test-key", method="POST", path="/payment/transactions",
        fingerprint=request_fingerprint(method="POST", path="/payment/transactions", data={}),
    )
    # a reconciliation run of the simulator's day with a discrepancy (an item)
    from gateways.simulator.settlements import ExtraCharge, SettlementDiscrepancies, settlement_discrepancies_set
    from reconciliation.services.runs import reconciliation_run

    now = timezone.now()
    settlement_discrepancies_set(SettlementDiscrepancies(extra_charges=(
        ExtraCharge(reference="sim_ch_admin_stray", amount=500, currency="USD", created=now),)))
    reconciliation_run(gateway="simulator", settlement_date=now.date(), actor=SYSTEM)


@pytest.mark.parametrize("model", REGISTERED_MODELS, ids=lambda model: model._meta.label)
def test_every_registered_model_opens_its_list_and_detail_pages(mfa_admin_client, a_row_for_every_model, model):
    # given a row of this model
    obj = model._default_manager.order_by("pk").first()
    assert obj is not None, f"add a {model._meta.label} row to the a_row_for_every_model fixture"

    # when staff open its list and its detail page, then both render
    assert mfa_admin_client.get(admin_url(model, "changelist")).status_code == 200
    assert mfa_admin_client.get(change_url(obj)).status_code == 200


def test_admin_carries_the_flowpay_branding(mfa_admin_client):
    assert "FlowPay back-office" in mfa_admin_client.get(reverse("admin:index")).content.decode()


def test_transaction_cannot_be_added_changed_or_deleted(mfa_admin_client, admin_user, make_transaction):
    txn = make_transaction()
    request = RequestFactory().get("/")
    request.user = admin_user
    model_admin = admin.site._registry[Transaction]
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, txn)
    assert not model_admin.has_delete_permission(request, txn)

    # the detail page shows the payment but offers no form controls
    page = mfa_admin_client.get(change_url(txn)).content.decode()
    assert txn.public_id in page and "10.00 USD" in page
    assert 'name="_save"' not in page and 'name="amount"' not in page

    # when someone forges a change, an add or a delete, then nothing moves
    response = mfa_admin_client.post(change_url(txn), {"amount": 1, "status": "completed", "currency": "EUR"})
    assert response.status_code == 403
    assert mfa_admin_client.post(admin_url(Transaction, "add"), {"amount": 1}).status_code == 403
    assert mfa_admin_client.post(admin_url(Transaction, "delete", txn.pk), {"post": "yes"}).status_code == 403
    txn.refresh_from_db()
    assert (txn.amount, txn.status, txn.currency) == (1000, "authorized", "USD")
    assert Transaction.objects.count() == 1


def test_capture_and_cancel_actions_go_through_the_services_as_staff(mfa_admin_client, make_transaction):
    # given two authorized payments
    to_capture, to_cancel = make_transaction(), make_transaction()
    changelist = admin_url(Transaction, "changelist")

    # when staff run the capture action on one and the cancel action on the other
    captured = mfa_admin_client.post(changelist, {"action": "capture_selected", "_selected_action": [to_capture.pk]})
    canceled = mfa_admin_client.post(changelist, {"action": "cancel_selected", "_selected_action": [to_cancel.pk]})

    # then both moved through their state machine and were audited as the staff user
    assert captured.status_code == canceled.status_code == 302
    to_capture.refresh_from_db()
    to_cancel.refresh_from_db()
    assert (to_capture.status, to_capture.amount_captured) == ("completed", 1000)
    assert to_cancel.status == "canceled"
    staff_entries = AuditEntry.objects.filter(actor_type="staff", actor_id="admin", result="success")
    assert staff_entries.filter(action="transaction.capture", object_id=to_capture.public_id).exists()
    assert staff_entries.filter(action="transaction.cancel", object_id=to_cancel.public_id).exists()
    assert messages_of(captured) == [f"{to_capture.public_id}: captured."]


def test_transition_action_reports_each_row_and_a_refusal_does_not_stop_the_others(mfa_admin_client, make_transaction):
    # given a payment that is already completed and one that is authorized
    completed, authorized = make_transaction(capture_method="automatic"), make_transaction()

    # when staff capture both at once
    response = mfa_admin_client.post(
        admin_url(Transaction, "changelist"),
        {"action": "capture_selected", "_selected_action": [completed.pk, authorized.pk]},
    )

    # then the authorized one is captured and the completed one is reported, unchanged
    report = messages_of(response)
    assert f"{authorized.public_id}: captured." in report
    assert any(m.startswith(f"{completed.public_id}: Cannot capture a completed transaction") for m in report)
    authorized.refresh_from_db()
    completed.refresh_from_db()
    assert authorized.status == completed.status == "completed"
    assert not AuditEntry.objects.filter(action="transaction.capture", object_id=completed.public_id).exists()


def test_revoke_actions_revoke_keys_and_tokens_through_the_services(mfa_admin_client, merchant):
    key = api_key_create(merchant=merchant, actor=SYSTEM).record
    token = staff_token_create(username="support-revoke-test", role="support", actor=SYSTEM).record

    mfa_admin_client.post(admin_url(ApiKey, "changelist"), {"action": "revoke_selected", "_selected_action": [key.pk]})
    mfa_admin_client.post(admin_url(StaffToken, "changelist"), {"action": "revoke_selected", "_selected_action": [token.pk]})

    key.refresh_from_db()
    token.refresh_from_db()
    assert key.revoked_at is not None and token.revoked_at is not None
    assert AuditEntry.objects.filter(actor_type="staff", action="api_key.revoke").count() == 1
    assert AuditEntry.objects.filter(actor_type="staff", action="staff_token.revoke").count() == 1


def test_api_key_pages_never_show_the_key_digest(mfa_admin_client, merchant):
    key = api_key_create(merchant=merchant, actor=SYSTEM).record
    assert key.key_hash not in mfa_admin_client.get(change_url(key)).content.decode()
    assert key.key_hash not in mfa_admin_client.get(change_url(merchant)).content.decode()


def test_merchant_name_and_active_flag_are_editable(mfa_admin_client, merchant):
    api_key_create(merchant=merchant, actor=SYSTEM)  # shown in a read-only inline
    keys = list(merchant.api_keys.all())
    form = {"name": "Renamed Shop", "api_keys-TOTAL_FORMS": len(keys), "api_keys-INITIAL_FORMS": len(keys),
            "api_keys-MIN_NUM_FORMS": 0, "api_keys-MAX_NUM_FORMS": 1000}
    for index, key in enumerate(keys):
        form[f"api_keys-{index}-id"] = key.pk
        form[f"api_keys-{index}-merchant"] = merchant.pk

    response = mfa_admin_client.post(change_url(merchant), form)  # is_active unticked

    assert response.status_code == 302
    merchant.refresh_from_db()
    assert (merchant.name, merchant.is_active) == ("Renamed Shop", False)


def test_audit_entry_cannot_be_changed_or_deleted_from_the_admin(mfa_admin_client, merchant):
    entry = AuditEntry.objects.filter(action="merchant.create").get()

    page = mfa_admin_client.get(change_url(entry)).content.decode()
    assert 'name="_save"' not in page and 'name="_continue"' not in page
    assert admin_url(AuditEntry, "delete", entry.pk) not in page
    assert 'name="action"' not in mfa_admin_client.get(admin_url(AuditEntry, "changelist")).content.decode()

    assert mfa_admin_client.post(admin_url(AuditEntry, "delete", entry.pk), {"post": "yes"}).status_code == 403
    assert mfa_admin_client.post(change_url(entry), {"action": "tampered"}).status_code == 403
    entry.refresh_from_db()
    assert entry.action == "merchant.create"


def test_customer_name_is_escaped_in_the_admin(mfa_admin_client, merchant):
    customer = customer_create(merchant=merchant, name="<script>alert(1)</script>", actor=SYSTEM)

    for url in (change_url(customer), admin_url(Customer, "changelist")):
        page = mfa_admin_client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;" in page


def test_webhook_endpoint_secret_is_never_shown_and_dead_deliveries_can_be_resent(mfa_admin_client, a_row_for_every_model):
    from webhooks.models import WebhookDelivery, WebhookEndpoint

    endpoint = WebhookEndpoint.objects.get()
    page = mfa_admin_client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/")
    assert page.status_code == 200 and "whsec_admin" not in page.content.decode()

    delivery = WebhookDelivery.objects.get()
    response = mfa_admin_client.post(
        "/admin/webhooks/webhookdelivery/", {"action": "resend", "_selected_action": [delivery.pk]}, follow=True
    )
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert AuditEntry.objects.filter(action="webhook_delivery.resend", actor_type="staff").exists()
