"""Failed and lost inbound events: recorded failed with the error, replayed by
replay_webhook_events and the admin, queued again by beat when their processing was lost.

Stripe events are signed with Stripe's scheme and are about real PaymentIntents made at a
real localstripe (tests/support/inbound_webhooks.py: `deliver`, `stripe_webhooks`)."""

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEntry
from gateway_events.models import InboundEvent
from tests.support.inbound_webhooks import event_id_of, intent_object, stripe_event, stuck_stripe_payment

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)  # tasks run when the replay commits, so --wait sees their outcome
def test_a_failing_application_is_recorded_failed_then_replay_webhook_events_processes_it(
    stripe_webhooks, localstripe_url, lost_stripe_answers, merchant_a, deliver, monkeypatch,
):
    from payments.services import stuck

    txn = stuck_stripe_payment(merchant_a)
    (charged,) = lost_stripe_answers.made
    payload = stripe_event("payment_intent.succeeded", intent_object(localstripe_url, charged.reference))

    def broken(**kwargs):
        raise RuntimeError("database hiccup")

    # given the application fails (every automatic retry too)
    with monkeypatch.context() as patch:
        patch.setattr(stuck, "transaction_apply_gateway_status", broken)
        response = deliver.stripe(payload)

        # then the event is still acknowledged, and recorded failed with the error
        assert response.status_code == 200
        row = InboundEvent.objects.get()
        assert (row.status, row.error, row.attempts) == ("failed", "RuntimeError: database hiccup", 5)
        txn.refresh_from_db()
        assert txn.status == "processing"

        # and replaying while it still fails reports it (exit 1 with --wait)
        out = StringIO()
        with pytest.raises(SystemExit) as exited, deliver.capture(execute=True):
            call_command("replay_webhook_events", "--failed", "--wait", "1", "--format", "json", stdout=out)
        assert exited.value.code == 1
        document = json.loads(out.getvalue())
        assert document["ok"] is False and document["stillFailed"] == 1

    # when the cause is gone and the operator replays the failed events
    out = StringIO()
    with deliver.capture(execute=True):
        call_command("replay_webhook_events", "--failed", "--format", "json", stdout=out)

    # then it is processed, once
    document = json.loads(out.getvalue())
    assert document["ok"] is True and document["selected"] == 1 and document["queued"] == 1
    assert document["events"][0]["eventId"] == event_id_of(payload) and document["events"][0]["previousStatus"] == "failed"
    row.refresh_from_db()
    assert (row.status, row.error) == ("processed", "")
    txn.refresh_from_db()
    assert txn.status == "completed"
    assert AuditEntry.objects.filter(action="inbound_event.replay", actor_type="system").count() == 2
    # nothing left to replay
    out = StringIO()
    call_command("replay_webhook_events", "--failed", stdout=out)
    assert "OK: no events to replay." in out.getvalue()


def test_replay_webhook_events_usage_errors(stripe_webhooks, deliver):
    from django.core.management.base import CommandError

    deliver.stripe(stripe_event("customer.created", {"id": "cus_1", "object": "customer"}))
    with pytest.raises(CommandError, match="--failed, --stalled or --id"):
        call_command("replay_webhook_events", stdout=StringIO())
    with pytest.raises(CommandError, match="no such inbound event: evt_nope"):
        call_command("replay_webhook_events", "--id", "evt_nope", stdout=StringIO())
    # an ignored event can be replayed by id (e.g. after the object it names was created)
    row = InboundEvent.objects.get()
    out = StringIO()
    with deliver.capture(execute=True):
        call_command("replay_webhook_events", "--id", row.event_id, stdout=out)
    assert "OK: 1 event(s) queued again." in out.getvalue()


def test_the_admin_lists_inbound_events_and_replays_them(stripe_webhooks, mfa_admin_client, deliver):
    deliver.stripe(stripe_event("customer.created", {"id": "cus_1", "object": "customer"}))
    row = InboundEvent.objects.get()

    assert mfa_admin_client.get("/admin/gateway_events/inboundevent/").status_code == 200
    assert mfa_admin_client.get(f"/admin/gateway_events/inboundevent/{row.pk}/change/").status_code == 200
    with deliver.capture(execute=True):
        response = mfa_admin_client.post("/admin/gateway_events/inboundevent/", {"action": "replay_selected", "_selected_action": [row.pk]})
    assert response.status_code == 302
    assert AuditEntry.objects.filter(action="inbound_event.replay", actor_type="staff").count() == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("ignored", 2)


def test_events_whose_processing_was_lost_are_queued_again_by_beat(stripe_webhooks, deliver, settings):
    from gateway_events.tasks import requeue_stalled_inbound_events_task

    settings.FLOWPAY_INBOUND_EVENT_LEASE_SECONDS = 600
    long_ago = timezone.now() - dt.timedelta(minutes=20)

    def inbox_row(event_id: str, **fields) -> InboundEvent:
        return InboundEvent.objects.create(gateway="stripe", event_id=event_id, type="customer.created",
                                           payload={"id": "cus_1", "object": "customer"}, gateway_created_at=long_ago, **fields)

    lost_task = inbox_row("evt_lost_task", received_at=long_ago)  # its task never reached a worker
    dead_worker = inbox_row("evt_dead_worker", received_at=long_ago, status="processing", attempts=1, last_attempt_at=long_ago)
    busy = inbox_row("evt_busy", received_at=long_ago, status="processing", attempts=1, last_attempt_at=timezone.now())
    fresh = inbox_row("evt_fresh")  # just received: its task is on its way

    out = StringIO()
    call_command("replay_webhook_events", "--stalled", "--dry-run", "--format", "json", stdout=out)
    assert sorted(e["eventId"] for e in json.loads(out.getvalue())["events"]) == ["evt_dead_worker", "evt_lost_task"]

    with deliver.capture(execute=True):
        assert requeue_stalled_inbound_events_task() == 2

    for row, status, attempts in ((lost_task, "ignored", 1), (dead_worker, "ignored", 2), (busy, "processing", 1),
                                  (fresh, "received", 0)):
        row.refresh_from_db()
        assert (row.event_id, row.status, row.attempts) == (row.event_id, status, attempts)
