"""Subscription billing: calendar-correct periods over a year (time travel), dunning, the
dead letter and list_dead_rebills, state machines, metrics, audit and outbox events."""

import datetime as dt
import json
from collections import Counter

import pytest
import time_machine
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django_fsm import TransitionNotAllowed

from audit.models import AuditEntry
from core.actors import Actor
from gateways.models import SimulatorCharge
from payments.models import PaymentMethod, Transaction
from payments.services.customers import customer_create, payment_method_attach
from subscriptions.models import (
    ChargeOutcome,
    Invoice,
    InvoiceStatus,
    Plan,
    RebillCharge,
    RebillJob,
    RebillJobStatus,
    Subscription,
    SubscriptionStatus,
)
from subscriptions.services.leasing import rebill_drain, rebill_lease_batch
from subscriptions.services.plans import plan_create, subscription_settings_update
from subscriptions.services.scheduling import rebill_reap_stale, rebill_schedule_due
from subscriptions.services.subscriptions import (
    subscription_cancel,
    subscription_create,
    subscription_pause,
    subscription_resume,
    subscription_update,
)
from subscriptions.tasks import rebill_reap_task, rebill_schedule_task
from webhooks.models import OutboxEvent

UTC = dt.UTC
TEST = Actor.system("test")


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.fixture
def customer(merchant_a):
    return customer_create(merchant=merchant_a.merchant, email="ada@example.com", actor=TEST)


def make_plan(account, *, interval="month", count=1, amount=1000, trial_days=0, name="Plan") -> Plan:
    return plan_create(merchant=account.merchant, name=name, amount=amount, currency="USD", interval=interval,
                       interval_count=count, trial_days=trial_days, actor=TEST)


def subscribe(account, customer, plan, *, payment_method="pm_card_visa", trial_days=None) -> Subscription:
    return subscription_create(merchant=account.merchant, customer=customer.public_id, plan=plan.public_id,
                               payment_method=payment_method, trial_days=trial_days, actor=TEST)


def tick():
    """One beat: invoice due periods, queue due retries, dispatch (drains run eagerly)."""
    rebill_reap_task()
    rebill_schedule_task()


def periods(subscription) -> list[dt.datetime]:
    return list(Invoice.objects.filter(subscription=subscription).order_by("period_start").values_list("period_start", flat=True))


def charges_per_invoice() -> Counter:
    """How many charges the gateway saw per invoice (SimulatorCharge is the gateway's record)."""
    txn_to_invoice = dict(Transaction.objects.filter(metadata__has_key="invoice").values_list("public_id", "metadata__invoice"))
    return Counter(txn_to_invoice[c.flowpay_reference] for c in SimulatorCharge.objects.all())


# --- time travel: a year of billing ---------------------------------------------------------
@pytest.mark.django_db
def test_a_year_of_monthly_weekly_yearly_and_trial_plans_bills_every_period_exactly_once(merchant_a, customer, celery_eager):
    with time_machine.travel(utc(2024, 1, 31, 9, 30), tick=False) as traveller:
        monthly = subscribe(merchant_a, customer, make_plan(merchant_a, interval="month", name="Monthly"))
        weekly = subscribe(merchant_a, customer, make_plan(merchant_a, interval="week", amount=250, name="Weekly"))
        quarterly = subscribe(merchant_a, customer, make_plan(merchant_a, interval="month", count=3, name="Quarterly"))
        trial = subscribe(merchant_a, customer, make_plan(merchant_a, interval="month", trial_days=14, name="Trial"))
        daily = subscribe(merchant_a, customer, make_plan(merchant_a, interval="day", count=10, amount=50, name="Every 10 days"))
        traveller.move_to(utc(2024, 2, 29, 12, 0))  # a leap day anchor for the yearly plan
        yearly = subscribe(merchant_a, customer, make_plan(merchant_a, interval="year", amount=9900, name="Yearly"))
        assert {s.status for s in (monthly, weekly, quarterly, daily, yearly)} == {SubscriptionStatus.ACTIVE}
        assert trial.status == SubscriptionStatus.TRIALING and not periods(trial)

        now = utc(2024, 2, 29, 12, 0)
        while now < utc(2025, 3, 2):
            now += dt.timedelta(hours=7)  # beats that do not line up with the periods
            traveller.move_to(now)
            tick()
            if now.hour < 7:
                tick()  # a second beat in the same instant creates nothing

    # month ends stay month ends: Jan 31 → Feb 29 → Mar 31 → Apr 30 …, never drifting to the 29th
    assert periods(monthly) == [
        utc(2024, 1, 31, 9, 30), utc(2024, 2, 29, 9, 30), utc(2024, 3, 31, 9, 30), utc(2024, 4, 30, 9, 30),
        utc(2024, 5, 31, 9, 30), utc(2024, 6, 30, 9, 30), utc(2024, 7, 31, 9, 30), utc(2024, 8, 31, 9, 30),
        utc(2024, 9, 30, 9, 30), utc(2024, 10, 31, 9, 30), utc(2024, 11, 30, 9, 30), utc(2024, 12, 31, 9, 30),
        utc(2025, 1, 31, 9, 30), utc(2025, 2, 28, 9, 30),
    ]
    assert periods(quarterly) == [utc(2024, 1, 31, 9, 30), utc(2024, 4, 30, 9, 30), utc(2024, 7, 31, 9, 30),
                                  utc(2024, 10, 31, 9, 30), utc(2025, 1, 31, 9, 30)]
    assert periods(yearly) == [utc(2024, 2, 29, 12), utc(2025, 2, 28, 12)]  # leap-day anchor
    weeks = periods(weekly)
    assert weeks[0] == utc(2024, 1, 31, 9, 30) and all(b - a == dt.timedelta(weeks=1) for a, b in zip(weeks, weeks[1:], strict=False))
    assert len(weeks) == 57  # Jan 31 2024 + 56 weeks ≤ Mar 1 2025
    tens = periods(daily)
    assert len(tens) == 40 and all(b - a == dt.timedelta(days=10) for a, b in zip(tens, tens[1:], strict=False))
    # the trial: 14 days free, then billed monthly from the trial's end (Feb 14, then the 14th)
    trial_periods = periods(trial)
    assert trial_periods[0] == utc(2024, 2, 14, 9, 30) and trial_periods[-1] == utc(2025, 2, 14, 9, 30)
    assert [p.day for p in trial_periods] == [14] * 13
    trial.refresh_from_db()
    assert trial.status == SubscriptionStatus.ACTIVE

    # every invoice paid, once; the gateway saw exactly one charge per invoice
    invoices = Invoice.objects.all()
    assert invoices.count() == 14 + 57 + 5 + 2 + 13 + 40
    assert set(invoices.values_list("status", flat=True)) == {InvoiceStatus.PAID}
    assert set(invoices.values_list("attempt_count", flat=True)) == {1}
    per_invoice = charges_per_invoice()
    assert len(per_invoice) == invoices.count() and set(per_invoice.values()) == {1}
    assert all(c.call_count == 1 for c in SimulatorCharge.objects.all())
    assert set(RebillJob.objects.values_list("status", flat=True)) == {RebillJobStatus.SUCCEEDED}
    # the subscription's current period is the last invoiced one
    monthly.refresh_from_db()
    assert (monthly.current_period_start, monthly.current_period_end) == (utc(2025, 2, 28, 9, 30), utc(2025, 3, 31, 9, 30))
    # worker transitions are audited as the worker
    assert AuditEntry.objects.filter(action="invoice.paid", actor_type="worker", actor_id="rebill").count() == invoices.count() - 5  # 5 first invoices: the API
    assert AuditEntry.objects.filter(action="subscription.active", object_id=trial.public_id, actor_type="worker").exists()
    assert OutboxEvent.objects.filter(type="invoice.paid").count() == invoices.count()


@pytest.mark.django_db
def test_a_scheduler_that_was_down_invoices_each_missed_period_once(merchant_a, customer, celery_eager):
    with time_machine.travel(utc(2023, 12, 31, 23, 0), tick=False) as traveller:
        sub = subscribe(merchant_a, customer, make_plan(merchant_a, interval="week"))
        traveller.move_to(utc(2024, 2, 1))  # no beat for a month
        tick()
        tick()
    assert periods(sub) == [utc(2023, 12, 31, 23) + dt.timedelta(weeks=n) for n in range(5)]
    assert set(Invoice.objects.values_list("status", flat=True)) == {InvoiceStatus.PAID}


@pytest.mark.django_db
def test_cancel_at_period_end_bills_nothing_more_and_pause_skips_billing(merchant_a, customer, celery_eager):
    with time_machine.travel(utc(2024, 3, 1, 8), tick=False) as traveller:
        plan = make_plan(merchant_a)
        leaving = subscribe(merchant_a, customer, plan)
        pausing = subscribe(merchant_a, customer, plan)
        subscription_cancel(subscription_id=leaving.pk, at_period_end=True, actor=TEST)
        subscription_pause(subscription_id=pausing.pk, actor=TEST)
        traveller.move_to(utc(2024, 5, 15))
        tick()
        leaving.refresh_from_db()
        assert leaving.status == SubscriptionStatus.CANCELED and leaving.ended_at == utc(2024, 4, 1, 8)
        assert len(periods(leaving)) == 1 and len(periods(pausing)) == 1
        assert OutboxEvent.objects.filter(type="subscription.canceled", payload__id=leaving.public_id).exists()
        # resumed after its paid period ended: a new cycle starts now and is billed at once
        subscription_resume(subscription_id=pausing.pk, actor=TEST)
        tick()
    pausing.refresh_from_db()
    assert pausing.status == SubscriptionStatus.ACTIVE
    assert periods(pausing) == [utc(2024, 3, 1, 8), utc(2024, 5, 15)]
    assert pausing.next_billing_at == utc(2024, 6, 15)


# --- dunning --------------------------------------------------------------------------------
@pytest.fixture
def saved_card(customer):
    """A saved card whose issuer answer the test controls (the customer's bank balance)."""
    return payment_method_attach(customer=customer, gateway="simulator", gateway_token="pm_card_visa", actor=TEST)


def set_card(card: PaymentMethod, token: str) -> None:
    PaymentMethod.objects.filter(pk=card.pk).update(gateway_token=token)


def _renewal_invoice(sub) -> Invoice:
    return Invoice.objects.filter(subscription=sub).order_by("-period_start").first()


@pytest.mark.django_db
def test_dunning_insufficient_funds_then_success_on_the_second_retry_makes_it_active(merchant_a, customer, saved_card, celery_eager):
    with time_machine.travel(utc(2024, 1, 10, 12), tick=False) as traveller:
        sub = subscribe(merchant_a, customer, make_plan(merchant_a), payment_method=saved_card.public_id)
        set_card(saved_card, "pm_card_chargeDeclinedInsufficientFunds")
        traveller.move_to(utc(2024, 2, 10, 12, 5))
        tick()
        sub.refresh_from_db()
        invoice = _renewal_invoice(sub)
        assert sub.status == SubscriptionStatus.PAST_DUE
        assert (invoice.status, invoice.payment_failures, invoice.last_failure_code) == ("open", 1, "insufficient_funds")
        assert invoice.next_attempt_at == utc(2024, 2, 11, 12, 5)  # day 1 of the schedule
        assert RebillJob.objects.get(invoice=invoice).status == RebillJobStatus.FAILED

        traveller.move_to(utc(2024, 2, 11, 6))
        tick()  # not due yet: nothing happens
        assert Invoice.objects.get(pk=invoice.pk).attempt_count == 1
        traveller.move_to(utc(2024, 2, 11, 12, 6))
        tick()  # first retry: still no funds
        invoice.refresh_from_db()
        assert (invoice.attempt_count, invoice.payment_failures, invoice.next_attempt_at) == (2, 2, utc(2024, 2, 13, 12, 5))

        set_card(saved_card, "pm_card_visa")  # the money arrived
        traveller.move_to(utc(2024, 2, 13, 12, 6))
        tick()  # second retry succeeds
    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and invoice.attempt_count == 3
    assert sub.status == SubscriptionStatus.ACTIVE
    assert RebillJob.objects.get(invoice=invoice).status == RebillJobStatus.SUCCEEDED
    # three charges for the renewal, each under its own key (subscription, period, attempt)
    keys = list(RebillCharge.objects.filter(invoice=invoice).order_by("number").values_list("idempotency_key", flat=True))
    assert keys == [f"{sub.public_id}:20240210T120000:{n}" for n in (1, 2, 3)]
    assert SimulatorCharge.objects.filter(idempotency_key__contains="authorize").count() == 4
    events = list(OutboxEvent.objects.order_by("id").values_list("type", flat=True))
    assert events.count("invoice.payment_failed") == 2 and events.count("subscription.past_due") == 1
    assert events[-1] == "invoice.paid"
    past_due = AuditEntry.objects.get(action="subscription.past_due", object_id=sub.public_id)
    assert (past_due.actor_type, past_due.actor_id) == ("worker", "rebill")
    assert AuditEntry.objects.filter(action="subscription.active", object_id=sub.public_id, actor_type="worker").exists()


@pytest.mark.parametrize("final_action", ["unpaid", "canceled"])
@pytest.mark.django_db
def test_dunning_four_failed_retries_make_the_invoice_uncollectible_and_the_subscription_unpaid_or_canceled(
    merchant_a, customer, saved_card, celery_eager, final_action
):
    subscription_settings_update(merchant=merchant_a.merchant, dunning_final_action=final_action, actor=TEST)
    with time_machine.travel(utc(2024, 1, 10, 12), tick=False) as traveller:
        sub = subscribe(merchant_a, customer, make_plan(merchant_a), payment_method=saved_card.public_id)
        set_card(saved_card, "pm_card_chargeDeclinedInsufficientFunds")
        first_failure = utc(2024, 2, 10, 12, 1)
        traveller.move_to(first_failure)
        tick()
        invoice = _renewal_invoice(sub)
        for number, day in enumerate([1, 3, 5, 7], start=1):
            assert Subscription.objects.get(pk=sub.pk).status == SubscriptionStatus.PAST_DUE
            assert Invoice.objects.get(pk=invoice.pk).next_attempt_at == first_failure + dt.timedelta(days=day)
            traveller.move_to(first_failure + dt.timedelta(days=day, minutes=1))
            tick()
            assert Invoice.objects.get(pk=invoice.pk).payment_failures == number + 1
        traveller.move_to(utc(2024, 4, 1))
        tick()  # nothing more is billed
    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNCOLLECTIBLE and invoice.attempt_count == 5
    assert sub.status == final_action and sub.next_billing_at is None
    assert Invoice.objects.filter(subscription=sub).count() == 2
    assert RebillJob.objects.get(invoice=invoice).status == RebillJobStatus.FAILED
    assert Invoice.objects.get(pk=invoice.pk).next_attempt_at is None
    assert OutboxEvent.objects.filter(type="invoice.payment_failed").count() == 5
    assert OutboxEvent.objects.filter(type="subscription.canceled").exists() == (final_action == "canceled")
    assert AuditEntry.objects.filter(action=f"subscription.{final_action}", object_id=sub.public_id, actor_type="worker").exists()


@pytest.mark.django_db
def test_a_hard_decline_is_not_retried_with_the_same_card_but_at_once_with_a_new_one(merchant_a, customer, celery_eager):
    with time_machine.travel(utc(2024, 1, 10, 12), tick=False) as traveller:
        plan = make_plan(merchant_a)
        closed = subscribe(merchant_a, customer, plan)
        rescued = subscribe(merchant_a, customer, plan)
        for sub in (closed, rescued):
            subscription_update(subscription_id=sub.pk, payment_method="pm_card_visa_chargeDeclined", actor=TEST)
        traveller.move_to(utc(2024, 2, 10, 12, 1))
        tick()
        assert Invoice.objects.get(subscription=closed, status="open").next_attempt_at == utc(2024, 2, 17, 12, 1)
        for day in (1, 3, 5):
            traveller.move_to(utc(2024, 2, 10 + day, 13))
            tick()
        assert Invoice.objects.get(subscription=closed, status="open").attempt_count == 1  # card_declined: no retries
        traveller.move_to(utc(2024, 2, 12))
        subscription_update(subscription_id=rescued.pk, payment_method="pm_card_mastercard", actor=TEST)  # retried at once
        traveller.move_to(utc(2024, 2, 17, 13))
        tick()
    closed.refresh_from_db()
    rescued.refresh_from_db()
    assert rescued.status == SubscriptionStatus.ACTIVE
    assert Invoice.objects.filter(subscription=rescued, status="paid").count() == 2
    assert closed.status == SubscriptionStatus.UNPAID
    hard = Invoice.objects.get(subscription=closed, period_start=utc(2024, 2, 10, 12))
    assert hard.status == InvoiceStatus.UNCOLLECTIBLE and hard.attempt_count == 1  # given up without charging again


@pytest.mark.django_db
def test_a_first_invoice_declined_leaves_the_subscription_incomplete_then_canceled(merchant_a, customer, celery_eager):
    with time_machine.travel(utc(2024, 1, 10, 12), tick=False) as traveller:
        sub = subscribe(merchant_a, customer, make_plan(merchant_a), payment_method="pm_card_chargeDeclinedInsufficientFunds")
        assert sub.status == SubscriptionStatus.INCOMPLETE
        for day in (1, 3, 5, 7):
            traveller.move_to(utc(2024, 1, 10 + day, 12, 1))
            tick()
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.CANCELED and sub.cancellation_reason == "incomplete_expired"
    assert Invoice.objects.get(subscription=sub).status == InvoiceStatus.UNCOLLECTIBLE


# --- crash safety, dead letter, reaper ---------------------------------------------------------
def _due_job(merchant_a, customer, traveller, *, payment_method="pm_card_visa") -> RebillJob:
    sub = subscribe(merchant_a, customer, make_plan(merchant_a))
    if payment_method != "pm_card_visa":
        subscription_update(subscription_id=sub.pk, payment_method=payment_method, actor=TEST)
    traveller.move_to(utc(2024, 2, 10, 12, 1))
    rebill_schedule_due()
    return RebillJob.objects.get(subscription=sub, status=RebillJobStatus.QUEUED)


@pytest.mark.django_db
def test_a_job_rerun_after_a_crash_mid_charge_finds_the_charge_and_never_charges_twice(merchant_a, customer, monkeypatch):
    from subscriptions.services import rebill

    with time_machine.travel(utc(2024, 1, 10, 12), tick=False) as traveller:
        job = _due_job(merchant_a, customer, traveller)
        # the worker dies right after the gateway charged, before the outcome is recorded
        original_finish = rebill._charge_finish
        monkeypatch.setattr(rebill, "_charge_finish", lambda **kw: (_ for _ in ()).throw(SystemExit("killed")))
        assert rebill_lease_batch(queue="rebill.monthly", merchant_id=None, owner="w1") == [job.pk]
        with pytest.raises(SystemExit):
            rebill._run(job_id=job.pk, owner="w1", actor=Actor.worker("rebill"))
        monkeypatch.setattr(rebill, "_charge_finish", original_finish)
        assert RebillCharge.objects.get(job=job).outcome == ChargeOutcome.PENDING
        # its lease expires; the reaper re-queues; another worker runs the job again
        traveller.move_to(utc(2024, 2, 10, 12, 5))
        assert rebill_reap_stale() == 1
        assert rebill_drain(queue="rebill.monthly", merchant_id=None, owner="w2") == {"paid": 1}
    invoice = Invoice.objects.get(pk=job.invoice_id)
    assert invoice.status == InvoiceStatus.PAID and invoice.attempt_count == 1
    assert charges_per_invoice()[invoice.public_id] == 1
    job.refresh_from_db()
    assert (job.status, job.leases, job.error_count) == (RebillJobStatus.SUCCEEDED, 2, 1)


@pytest.mark.django_db
def test_a_charge_left_processing_is_resolved_by_asking_the_gateway(merchant_a, customer, monkeypatch):
    """The worker died between the transaction's creation and the gateway call: the gateway
    has no record, so the next run closes that attempt as 'nothing charged' and charges once."""
    from payments.services import transactions as txn_services

    with time_machine.travel(utc(2024, 1, 10, 12), tick=False) as traveller:
        job = _due_job(merchant_a, customer, traveller)
        # (killed once the transaction and its first attempt are committed, before the call)
        real_observed_call = txn_services.observed_call
        monkeypatch.setattr(txn_services, "observed_call", lambda **kw: (_ for _ in ()).throw(SystemExit("killed")))
        rebill_lease_batch(queue="rebill.monthly", merchant_id=None, owner="w1")
        from subscriptions.services import rebill

        with pytest.raises(SystemExit):
            rebill._run(job_id=job.pk, owner="w1", actor=Actor.worker("rebill"))
        monkeypatch.setattr(txn_services, "observed_call", real_observed_call)
        traveller.move_to(utc(2024, 2, 10, 12, 5))
        rebill_reap_stale()
        assert rebill_drain(queue="rebill.monthly", merchant_id=None, owner="w2") == {"paid": 1}
    charges = list(RebillCharge.objects.filter(job=job).order_by("number").values_list("outcome", "failure_code"))
    assert charges == [("error", "gateway_no_record"), ("succeeded", "")]
    assert list(charges_per_invoice().values()) == [1, 1]  # the first invoice and this one, once each


@pytest.mark.django_db
def test_jobs_failing_for_non_payment_reasons_are_dead_lettered_listed_and_requeued(merchant_a, customer, settings, capsys, monkeypatch):
    settings.FLOWPAY_REBILL_MAX_ATTEMPTS = 3
    settings.FLOWPAY_REBILL_RETRY_SECONDS = 60
    from subscriptions.services import rebill

    with time_machine.travel(utc(2024, 1, 10, 12), tick=False) as traveller:
        job = _due_job(merchant_a, customer, traveller)
        real = rebill._charge_transaction
        monkeypatch.setattr(rebill, "_charge_transaction", lambda **kw: 1 / 0)  # a bug
        outcomes = []
        for minute in (2, 4, 8):
            traveller.move_to(utc(2024, 2, 10, 12, minute))
            outcomes.append(rebill_drain(queue="rebill.monthly", merchant_id=None))
        assert outcomes == [{"error": 1}, {"error": 1}, {"dead": 1}]
        job.refresh_from_db()
        assert job.status == RebillJobStatus.DEAD and "ZeroDivisionError" in job.last_error

        with pytest.raises(SystemExit) as exit_info:
            call_command("list_dead_rebills")
        assert exit_info.value.code == 1
        table = capsys.readouterr().out
        assert job.public_id in table and "ZeroDivisionError" in table
        with pytest.raises(SystemExit):
            call_command("list_dead_rebills", "--format", "json")
        listed = json.loads(capsys.readouterr().out)
        assert listed["count"] == 1 and listed["deadJobs"][0]["invoice"] == job.invoice.public_id

        monkeypatch.setattr(rebill, "_charge_transaction", real)  # fixed
        call_command("list_dead_rebills", "--requeue", job.public_id)
        capsys.readouterr()
        assert RebillJob.objects.get(pk=job.pk).status == RebillJobStatus.QUEUED
        assert rebill_drain(queue="rebill.monthly", merchant_id=None) == {"paid": 1}
        call_command("list_dead_rebills")
        assert "No dead rebill jobs." in capsys.readouterr().out
    assert AuditEntry.objects.filter(action="rebill_job.requeue", actor_id="list_dead_rebills").exists()
    assert Invoice.objects.get(pk=job.invoice_id).status == InvoiceStatus.PAID


@pytest.mark.django_db
def test_list_dead_rebills_requeue_all_and_unknown_id(merchant_a, customer, settings, capsys):
    from django.core.management.base import CommandError

    with time_machine.travel(utc(2024, 1, 10, 12), tick=False) as traveller:
        job = _due_job(merchant_a, customer, traveller)
    RebillJob.objects.filter(pk=job.pk).update(status="dead", error_count=5, last_error="boom")
    with pytest.raises(CommandError):
        call_command("list_dead_rebills", "--requeue", "rbj_nope")
    call_command("list_dead_rebills", "--requeue-all", "--format", "json")
    assert json.loads(capsys.readouterr().out)["deadJobs"][0]["requeued"] is True
    assert RebillJob.objects.get(pk=job.pk).status == RebillJobStatus.QUEUED


@pytest.mark.django_db
def test_a_job_whose_lease_keeps_expiring_goes_to_the_dead_letter(merchant_a, customer, settings):
    settings.FLOWPAY_REBILL_MAX_ATTEMPTS = 2
    with time_machine.travel(utc(2024, 1, 10, 12), tick=False) as traveller:
        job = _due_job(merchant_a, customer, traveller)
        for minute in (2, 5):
            traveller.move_to(utc(2024, 2, 10, 12, minute))
            assert rebill_lease_batch(queue="rebill.monthly", merchant_id=None, owner="doomed") == [job.pk]
            traveller.move_to(utc(2024, 2, 10, 12, minute + 2))
            rebill_reap_task()
    job.refresh_from_db()
    assert job.status == RebillJobStatus.DEAD and "stopped heartbeating" in job.last_error


# --- state machines and constraints -----------------------------------------------------------
@pytest.mark.django_db
def test_state_machines_refuse_transitions_outside_the_design(merchant_a, customer):
    sub = subscribe(merchant_a, customer, make_plan(merchant_a))
    assert sub.status == SubscriptionStatus.ACTIVE
    with pytest.raises(TransitionNotAllowed):
        sub.end_trial()
    with pytest.raises(TransitionNotAllowed):
        sub.mark_unpaid(now=sub.created_at)  # active → unpaid needs past_due first
    with pytest.raises(AttributeError):
        sub.status = SubscriptionStatus.CANCELED  # protected: only transitions change it
    invoice = Invoice.objects.get(subscription=sub)
    with pytest.raises(TransitionNotAllowed):
        invoice.void(now=invoice.created_at)  # paid is final
    job = RebillJob.objects.get(invoice=invoice)
    with pytest.raises(TransitionNotAllowed):
        job.lease(owner="x", now=job.created_at, expires_at=job.created_at)
    from core.errors import InvalidState

    with pytest.raises(InvalidState):
        subscription_resume(subscription_id=sub.pk, actor=TEST)
    subscription_cancel(subscription_id=sub.pk, at_period_end=False, actor=TEST)
    with pytest.raises(InvalidState):
        subscription_pause(subscription_id=sub.pk, actor=TEST)


@pytest.mark.django_db
def test_the_database_allows_one_invoice_and_one_job_per_subscription_period(merchant_a, customer):
    sub = subscribe(merchant_a, customer, make_plan(merchant_a))
    invoice = Invoice.objects.get(subscription=sub)
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.create(merchant=sub.merchant, subscription=sub, customer=customer, amount=1000, currency="USD",
                               period_start=invoice.period_start, period_end=invoice.period_end)
    with pytest.raises(IntegrityError), transaction.atomic():
        Plan.objects.create(merchant=sub.merchant, name="free", amount=0, currency="USD", interval="month")
    with pytest.raises(IntegrityError), transaction.atomic():
        RebillCharge.objects.create(invoice=invoice, job=invoice.rebill_job, number=1, idempotency_key="other", payment_method="x")


@pytest.mark.django_db
def test_rebill_metrics_are_exposed(merchant_a, customer, client, settings):
    with time_machine.travel(utc(2024, 1, 10, 12), tick=False) as traveller:
        _due_job(merchant_a, customer, traveller, payment_method="pm_card_chargeDeclinedInsufficientFunds")
        text = client.get("/metrics").content.decode()
        assert 'rebill_queue_depth{queue="rebill.monthly"} 1.0' in text
        assert 'rebill_queue_depth{queue="rebill.yearly"} 0.0' in text
        rebill_drain(queue="rebill.monthly", merchant_id=None)
    text = client.get("/metrics").content.decode()
    assert 'rebill_queue_depth{queue="rebill.monthly"} 0.0' in text
    assert 'rebill_jobs_failed_total{queue="rebill.monthly",reason="declined"}' in text
    assert 'rebill_job_duration_seconds_bucket{le="0.05",outcome="paid",queue="rebill.monthly"}' in text


@pytest.mark.django_db
def test_a_run_whose_lease_was_reaped_leaves_the_new_owners_charge_alone(merchant_a, customer):
    """Worker w1 froze past its lease; the reaper gave the job to w2, whose charge is at the
    gateway. w1's late error handling must not close w2's pending charge."""
    from subscriptions.services import rebill

    with time_machine.travel(utc(2024, 1, 10, 12), tick=False) as traveller:
        job = _due_job(merchant_a, customer, traveller)
        rebill_lease_batch(queue="rebill.monthly", merchant_id=None, owner="w1")
        traveller.move_to(utc(2024, 2, 10, 12, 10))
        rebill_reap_stale()
        rebill_lease_batch(queue="rebill.monthly", merchant_id=None, owner="w2")
        step = rebill._charge_begin(job_id=job.pk, owner="w2", actor=TEST)  # w2's charge, in flight
        assert step.charge is not None

        outcome = rebill._job_error(job_id=job.pk, owner="w1", error="late", nothing_charged_code="gateway_no_record",
                                    actor=TEST)

    assert outcome == "lease_lost"
    charge = RebillCharge.objects.get(pk=step.charge.pk)
    assert charge.outcome == "pending" and charge.failure_code == ""
