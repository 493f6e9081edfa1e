"""The subscriptions admin: every page opens; money is read-only; transitions are actions
that go through the services (audited as the staff user)."""

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from audit.models import AuditEntry
from core.actors import Actor
from payments.services.customers import customer_create
from subscriptions.models import Invoice, Plan, RebillJob, Subscription, SubscriptionSettings
from subscriptions.services.plans import plan_create, subscription_settings_update
from subscriptions.services.subscriptions import subscription_create

TEST = Actor.system("test")


@pytest.fixture
def subscription(merchant_a):
    customer = customer_create(merchant=merchant_a.merchant, email="c@example.com", actor=TEST)
    plan = plan_create(merchant=merchant_a.merchant, name="Pro", amount=1000, currency="USD", interval="month", actor=TEST)
    subscription_settings_update(merchant=merchant_a.merchant, dunning_final_action="canceled", actor=TEST)
    return subscription_create(merchant=merchant_a.merchant, customer=customer.public_id, plan=plan.public_id,
                               payment_method="pm_card_visa", actor=TEST)


@pytest.mark.django_db
@pytest.mark.parametrize("model", [Plan, Subscription, Invoice, RebillJob, SubscriptionSettings], ids=lambda m: m.__name__)
def test_subscription_admin_pages_open_and_money_is_read_only(mfa_admin_client, subscription, model):
    obj = model.objects.first()
    opts = model._meta
    assert mfa_admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")).status_code == 200
    assert mfa_admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])).status_code == 200
    if model is not SubscriptionSettings:
        assert mfa_admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code == 403


@pytest.mark.django_db
def test_admin_actions_go_through_the_services(mfa_admin_client, subscription):
    url = reverse("admin:subscriptions_subscription_changelist")
    mfa_admin_client.post(url, {"action": "pause", "_selected_action": [subscription.pk]})
    subscription.refresh_from_db()
    assert subscription.status == "paused"
    mfa_admin_client.post(url, {"action": "cancel_now", "_selected_action": [subscription.pk]})
    subscription.refresh_from_db()
    assert subscription.status == "canceled"
    assert AuditEntry.objects.filter(action="subscription.canceled", object_id=subscription.public_id, actor_type="staff").exists()
