"""Who reaches the dashboard's pages and actions: every role, signed in with its second
factor, gets exactly what core.permissions gives it (200 for a page, a redirect for an
action it may take, 403 otherwise); a merchant API key reaches none of it."""

import pytest
from django.test import Client
from django.urls import reverse

from core.permissions import Capability, roles_can

pytestmark = pytest.mark.django_db


def any_of(*capabilities):
    return lambda role: any(roles_can([role], capability) for capability in capabilities)


# (page, who may open it), each rule read from the one permissions module.
PAGES = [
    (reverse("admin:dashboard_audit_log"), any_of(Capability.AUDIT_READ)),
    (reverse("admin:dashboard_review_queues"),
     any_of(Capability.RECONCILIATION_READ, Capability.BACKOFFICE_REFUNDS, Capability.FRAUD_READ)),
    (reverse("admin:dashboard_dead_letters"),
     any_of(Capability.BACKOFFICE_REFUNDS, Capability.SUBSCRIPTION_READ, Capability.WEBHOOK_READ, Capability.INBOX_READ)),
    (reverse("admin:dashboard_exports"), lambda role: True),
    (reverse("admin:payments_transaction_changelist"), any_of(Capability.TRANSACTION_READ, Capability.REFUND_CREATE)),
    (reverse("admin:payments_transaction_export_csv"), any_of(Capability.TRANSACTION_READ, Capability.REFUND_CREATE)),
    (reverse("admin:refunds_refund_changelist"), any_of(Capability.BACKOFFICE_REFUNDS)),
    (reverse("admin:refunds_refund_export_csv"), any_of(Capability.BACKOFFICE_REFUNDS)),
    (reverse("admin:refunds_chargeback_export_csv"), any_of(Capability.BACKOFFICE_REFUNDS)),
    (reverse("admin:subscriptions_subscription_changelist"), any_of(Capability.SUBSCRIPTION_READ)),
    (reverse("admin:subscriptions_invoice_export_csv"), any_of(Capability.SUBSCRIPTION_READ)),
    (reverse("admin:ledger_payout_changelist"), any_of(Capability.LEDGER_READ)),
    (reverse("admin:ledger_payout_export_csv"), any_of(Capability.LEDGER_READ)),
    (reverse("admin:audit_auditentry_export_csv"), any_of(Capability.AUDIT_READ)),
]

# (action URL, form, who may take it): a missing row makes an allowed action a no-op redirect.
ACTIONS = [
    (reverse("admin:dashboard_audit_log_verify"), {}, any_of(Capability.AUDIT_VERIFY)),
    (reverse("admin:dashboard_review_queues"), {"queue": "refunds", "operation": "approve", "id": "0"},
     any_of(Capability.REFUND_APPROVE)),
    (reverse("admin:dashboard_review_queues"), {"queue": "reconciliation", "operation": "ignore", "id": "0", "reason": "x"},
     any_of(Capability.RECONCILIATION_RESOLVE)),
    (reverse("admin:dashboard_review_queues"), {"queue": "fraud", "operation": "approve", "id": "0"},
     any_of(Capability.FRAUD_REVIEW)),
    (reverse("admin:dashboard_dead_letters"), {"kind": "refunds", "ids": ["0"]}, any_of(Capability.REFUND_RETRY)),
    (reverse("admin:dashboard_dead_letters"), {"kind": "rebill_jobs", "ids": ["0"]}, any_of(Capability.REBILL_REQUEUE)),
    (reverse("admin:dashboard_dead_letters"), {"kind": "webhook_deliveries", "ids": ["0"]}, any_of(Capability.WEBHOOK_RESEND)),
    (reverse("admin:dashboard_dead_letters"), {"kind": "inbound_events", "ids": ["0"]}, any_of(Capability.INBOX_REPLAY)),
]


def test_each_role_opens_exactly_the_pages_its_capabilities_give(role_client, each_role):
    client = role_client(each_role)
    answers = {url: client.get(url).status_code for url, _ in PAGES}
    expected = {url: 200 if may(each_role) else 403 for url, may in PAGES}
    assert answers == expected


def test_each_role_takes_exactly_the_actions_its_capabilities_give(role_client, each_role):
    client = role_client(each_role)
    answers = {(url, form.get("queue") or form.get("kind") or "verify"): client.post(url, form).status_code
               for url, form, _ in ACTIONS}
    expected = {(url, form.get("queue") or form.get("kind") or "verify"): 302 if may(each_role) else 403
                for url, form, may in ACTIONS}
    assert answers == expected


def test_a_merchant_api_key_reaches_none_of_the_dashboard(merchant_a):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {merchant_a.api_key}")
    for url, _ in PAGES:
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url
    for url, form, _ in ACTIONS:
        response = client.post(url, form)
        assert response.status_code in (302, 403) and "/admin/login/" in response.get("Location", "/admin/login/"), url
