"""The dead letters: each kind lists its rows with their last error and attempts; a bulk
replay calls the same service as the runbook's endpoint or command, writes the same audit
entry, and replaying the same rows twice has one effect."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from core.actors import Actor
from gateway_events.models import InboundEvent
from gateways.base import GatewayRequestError
from refunds.services.create import refund_create
from tests.support.refunds import fail_gateway_refunds, run_queued
from webhooks.models import OutboxEvent, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

PAGE = reverse("admin:dashboard_dead_letters")


def replay(client, kind: str, rows) -> None:
    token = re.search(r'name="form_token" value="([^"]+)"', client.get(PAGE).content.decode()).group(1)
    response = client.post(PAGE, {"kind": kind, "ids": [row.pk for row in rows], "form_token": token})
    assert response.status_code == 302


def entry_shape(entry: AuditEntry) -> tuple:
    return entry.action, entry.actor_type, entry.result, sorted(entry.details)


@pytest.fixture
def dead_deliveries(merchant_a, monkeypatch):
    sent: list[list[int]] = []
    monkeypatch.setattr("webhooks.services.deliveries.webhook_deliveries_queue", sent.append)
    endpoint = WebhookEndpoint.objects.create(merchant=merchant_a.merchant, url="https://merchant.example/hooks",
                                              secret="whsec_dead")
    now = timezone.now()
    deliveries = []
    for number in range(3):
        event = OutboxEvent.objects.create(merchant=merchant_a.merchant, type="transaction.completed",
                                           payload={"id": f"txn_dead_{number}"})
        deliveries.append(WebhookDelivery.objects.create(
            event=event, endpoint=endpoint, status="dead", attempts=12, last_status_code=500,
            last_error="HTTP 500 from the endpoint", next_attempt_at=now, retry_window_started_at=now,
        ))
    return deliveries


def test_dead_deliveries_show_their_error_and_replay_once_however_often_replayed(
    dead_deliveries, role_client, staff_api, django_capture_on_commit_callbacks,
):
    on_page, api_one = dead_deliveries[:2], dead_deliveries[2]
    operator = role_client("operator")
    html = operator.get(PAGE).content.decode()
    assert "HTTP 500 from the endpoint" in html and on_page[0].public_id in html

    with django_capture_on_commit_callbacks(execute=True):
        replay(operator, "webhook_deliveries", on_page)
        replay(operator, "webhook_deliveries", on_page)  # the same rows again
    for delivery in on_page:
        delivery.refresh_from_db()
        assert delivery.status == "pending"
        assert AuditEntry.objects.filter(action="webhook_delivery.resend", object_id=delivery.public_id).count() == 1

    # the API's re-send of the third writes the same entry
    assert staff_api("operator").post(f"/payment/webhook-deliveries/{api_one.public_id}/resend", {},
                                      format="json").status_code == 200
    page_entry = AuditEntry.objects.filter(action="webhook_delivery.resend", object_id=on_page[0].public_id).get()
    api_entry = AuditEntry.objects.get(action="webhook_delivery.resend", object_id=api_one.public_id)
    assert entry_shape(page_entry) == entry_shape(api_entry)


def test_a_delivered_webhook_is_not_resent_by_a_dead_letter_replay(dead_deliveries, role_client):
    delivery = dead_deliveries[0]
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="succeeded")  # delivered meanwhile
    replay(role_client("support"), "webhook_deliveries", [delivery])
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert not AuditEntry.objects.filter(action="webhook_delivery.resend").exists()


def test_failed_gateway_events_replay_once_as_the_inbox_admin_does(role_client, monkeypatch, mfa_admin_client):
    monkeypatch.setattr("gateway_events.services._queue_on_commit", lambda pk: None)
    now = timezone.now()
    events = [InboundEvent.objects.create(gateway="stripe", event_id=f"evt_dead_{n}", type="charge.refunded",
                                          gateway_created_at=now, status="failed", error="KeyError: 'charge'",
                                          attempts=5) for n in range(2)]
    operator = role_client("operator")
    assert "KeyError: &#x27;charge&#x27;" in operator.get(PAGE).content.decode()
    replay(operator, "inbound_events", events[:1])
    replay(operator, "inbound_events", events[:1])
    events[0].refresh_from_db()
    assert events[0].status == "received"
    assert AuditEntry.objects.filter(action="inbound_event.replay", object_id=str(events[0].pk)).count() == 1

    # the inbox's own replay action (runbook: replay_webhook_events) writes the same entry
    mfa_admin_client.post(reverse("admin:gateway_events_inboundevent_changelist"),
                          {"action": "replay_selected", "_selected_action": [events[1].pk]})
    assert entry_shape(AuditEntry.objects.get(action="inbound_event.replay", object_id=str(events[1].pk))) == \
        entry_shape(AuditEntry.objects.get(action="inbound_event.replay", object_id=str(events[0].pk)))


def test_failed_refunds_are_retried_once_and_audited_as_the_api_retry(
    merchant_a, make_payment, queued_refunds, monkeypatch, role_client, staff_api, django_capture_on_commit_callbacks,
):
    fail_gateway_refunds(monkeypatch, lambda: GatewayRequestError("card expired"), times=2)
    refunds = []
    for _ in range(2):
        txn = make_payment(merchant_a, amount=4000)
        with django_capture_on_commit_callbacks(execute=True):
            refunds.append(refund_create(transaction_id=txn.pk, amount=1000, reason="Customer service request",
                                         actor=Actor.system("test")))
    run_queued(queued_refunds)
    for refund in refunds:
        refund.refresh_from_db()
        assert refund.status == "failed", refund.status
    finance = role_client("finance")
    assert "card expired" in finance.get(PAGE).content.decode()

    replay(finance, "refunds", refunds[:1])
    replay(finance, "refunds", refunds[:1])
    assert staff_api("finance").post(f"/payment/refunds/{refunds[1].public_id}/retry", {}, format="json").status_code == 200
    refunds[0].refresh_from_db()
    assert refunds[0].status == "processing"
    page_entries = AuditEntry.objects.filter(action="refund.retry", object_id=refunds[0].public_id)
    assert page_entries.count() == 1
    api_entry = AuditEntry.objects.get(action="refund.retry", object_id=refunds[1].public_id)
    assert entry_shape(page_entries.get()) == entry_shape(api_entry)


def test_dead_rebill_jobs_are_requeued_once_and_dispatched(merchant_a, role_client, monkeypatch,
                                                           django_capture_on_commit_callbacks):
    from payments.services.customers import customer_create
    from subscriptions.models import RebillJob
    from subscriptions.services.plans import plan_create
    from subscriptions.services.subscriptions import subscription_create

    dispatched = []
    monkeypatch.setattr("backoffice.dashboard.dead_letters.rebill_dispatch", lambda: dispatched.append(1))
    system = Actor.system("test")
    customer = customer_create(merchant=merchant_a.merchant, email="rebill@example.com", actor=system)
    plan = plan_create(merchant=merchant_a.merchant, name="Monthly", amount=1500, currency="USD", interval="month",
                       actor=system)
    subscription_create(merchant=merchant_a.merchant, customer=customer.public_id, plan=plan.public_id,
                        payment_method="pm_card_visa", actor=system)
    job = RebillJob.objects.get()
    RebillJob.objects.filter(pk=job.pk).update(status="dead", error_count=5, last_error="OperationalError: timeout",
                                               dead_at=timezone.now(), lease_owner="", lease_expires_at=None)
    operator = role_client("operator")
    assert "OperationalError: timeout" in operator.get(PAGE).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        replay(operator, "rebill_jobs", [job])
        replay(operator, "rebill_jobs", [job])
    job.refresh_from_db()
    assert job.status == "queued"
    assert AuditEntry.objects.filter(action="rebill_job.requeue", object_id=job.public_id, actor_id="operator-dash").count() == 1
    assert dispatched == [1]
