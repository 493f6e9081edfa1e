"""Ledger adjustments under four eyes (services and admin), the ledger's read-only admin
pages, and merchants' ledger terms edited in the admin."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from audit.models import AuditEntry
from core.actors import Actor
from core.errors import InvalidRequest, InvalidState, PermissionDenied
from ledger.models import LedgerAdjustment, LedgerTransaction, MerchantLedgerSettings
from ledger.services.adjustments import ledger_adjustment_approve, ledger_adjustment_reject, ledger_adjustment_request
from tests.support.ledger import balance_of, books_problems, release_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def actor_of(staff_user):
    def make(username: str, *roles: str) -> Actor:
        return Actor.staff(user=staff_user(username, *roles))

    return make


def request_credit(merchant, actor, amount: int = 1500, **overrides) -> LedgerAdjustment:
    fields = {"merchant_id": merchant.pk, "livemode": False, "currency": "USD", "amount": amount,
              "debit_code": "platform_revenue", "credit_code": "merchant_available", "reason": "goodwill for a late delivery",
              "actor": actor, **overrides}
    return ledger_adjustment_request(**fields)


def test_an_adjustment_posts_only_when_a_second_person_approves_it(merchant_a, make_payment, actor_of):
    merchant = merchant_a.merchant
    fiona, frank = actor_of("fiona", "finance"), actor_of("frank", "finance")
    adjustment = request_credit(merchant, fiona)
    assert adjustment.status == "requires_approval" and balance_of(merchant).available == 0
    assert not LedgerTransaction.objects.filter(source_id=adjustment.public_id).exists()

    with pytest.raises(PermissionDenied, match="Four-eyes"):
        ledger_adjustment_approve(adjustment_id=adjustment.pk, actor=fiona)

    approved = ledger_adjustment_approve(adjustment_id=adjustment.pk, actor=frank)

    assert approved.status == "posted" and approved.approved_by.username == "frank"
    posted = approved.ledger_transaction
    assert (posted.kind, posted.balance_type, posted.amount, posted.net) == ("adjustment", "adjustment", 1500, 1500)
    assert balance_of(merchant).available == 1500
    assert list(AuditEntry.objects.filter(object_id=adjustment.public_id).values_list("action", "actor_id").order_by("id")) == [
        ("ledger_adjustment.request", "fiona"), ("ledger_adjustment.approve", "frank")]
    with pytest.raises(InvalidState):
        ledger_adjustment_approve(adjustment_id=adjustment.pk, actor=actor_of("fay", "admin"))
    assert books_problems(merchant) == []


def test_a_debit_of_the_merchant_past_its_funds_is_owed_and_a_fee_correction_shows_as_a_fee(merchant_a, make_payment,
                                                                                           actor_of):
    merchant = merchant_a.merchant
    make_payment(merchant_a, amount=1000)
    release_all()  # 9.41 available
    adjustment = request_credit(merchant, actor_of("fiona", "finance"), amount=1000, debit_code="merchant_available",
                                credit_code="platform_revenue", balance_type="fee", reason="monthly platform fee")
    posted = ledger_adjustment_approve(adjustment_id=adjustment.pk, actor=actor_of("frank", "admin")).ledger_transaction
    assert (posted.balance_type, posted.amount) == ("fee", -1000)
    assert balance_of(merchant).available == 941 - 1000
    # a gateway-side correction found by reconciliation: nothing the merchant sees
    gateway_fix = request_credit(merchant, Actor.worker("reconciliation"), amount=25, debit_code="fees",
                                 credit_code="gateway_clearing", gateway="simulator", reason="fee per the settlement report",
                                 source_type="reconciliation_item", source_id="ri_123")
    internal = ledger_adjustment_approve(adjustment_id=gateway_fix.pk, actor=actor_of("frank", "admin")).ledger_transaction
    assert internal.balance_type is None and balance_of(merchant).available == -59
    assert books_problems(merchant) == []


def test_rejected_adjustments_post_nothing(merchant_a, actor_of):
    adjustment = request_credit(merchant_a.merchant, actor_of("fiona", "finance"))
    rejected = ledger_adjustment_reject(adjustment_id=adjustment.pk, actor=actor_of("frank", "finance"), reason="no ticket")
    assert (rejected.status, rejected.rejection_reason) == ("rejected", "no ticket")
    assert rejected.ledger_transaction is None and balance_of(merchant_a.merchant).available == 0


@pytest.mark.parametrize("overrides, error", [
    ({"reason": "  "}, InvalidRequest), ({"amount": 0}, InvalidRequest), ({"currency": "ZZZ"}, InvalidRequest),
    ({"debit_code": "merchant_pending"}, InvalidRequest), ({"credit_code": "platform_revenue"}, InvalidRequest),
    ({"debit_code": "gateway_clearing"}, InvalidRequest), ({"gateway": "stripe"}, InvalidRequest),
    ({"balance_type": "payment"}, InvalidRequest),
])
def test_a_bad_adjustment_request_is_refused(merchant_a, actor_of, overrides, error):
    with pytest.raises(error):
        request_credit(merchant_a.merchant, actor_of("fiona", "finance"), **overrides)
    assert not LedgerAdjustment.objects.exists()


@pytest.mark.parametrize("role", ["support", "operator", "auditor"])
def test_only_finance_and_admin_request_or_approve(merchant_a, actor_of, role):
    with pytest.raises(PermissionDenied):
        request_credit(merchant_a.merchant, actor_of(f"{role}-1", role))
    adjustment = request_credit(merchant_a.merchant, actor_of("fiona", "finance"))
    with pytest.raises(PermissionDenied):
        ledger_adjustment_approve(adjustment_id=adjustment.pk, actor=actor_of(f"{role}-2", role))


# --- admin -----------------------------------------------------------------------------
def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def form_token(response) -> str:
    import re

    return re.search(r'name="form_token" value="([^"]+)"', response.content.decode()).group(1)


def test_the_admin_requests_and_a_second_user_approves_an_adjustment(client, staff_user, staff_sign_in, merchant_a):
    staff_sign_in(client, staff_user("fiona", "finance"))
    url = reverse("admin:ledger_ledgeradjustment_request_adjustment")
    page = client.get(url)
    assert page.status_code == 200
    body = {"merchant": merchant_a.merchant.pk, "currency": "USD", "amount": 2500, "debit_code": "platform_revenue",
            "credit_code": "merchant_available", "gateway": "", "balance_type": "adjustment",
            "reason": "<b>refund of a fee</b>", "source_id": "", "form_token": form_token(page)}
    done = client.post(url, body)
    adjustment = LedgerAdjustment.objects.get()
    assert done.status_code == 302 and adjustment.status == "requires_approval"
    assert client.post(url, body).status_code == 302 and LedgerAdjustment.objects.count() == 1  # submitted twice: once

    approve_url = reverse("admin:ledger_ledgeradjustment_approve_detail", args=[adjustment.pk])
    own = client.post(approve_url, {"form_token": form_token(client.get(approve_url))}, follow=True)
    assert any("Four-eyes" in m for m in messages_of(own))
    assert LedgerAdjustment.objects.get().status == "requires_approval"

    staff_sign_in(client, staff_user("frank", "admin"))
    confirm = client.get(approve_url)
    assert "&lt;b&gt;refund of a fee&lt;/b&gt;" in confirm.content.decode()  # the reason, escaped
    client.post(approve_url, {"form_token": form_token(confirm)})
    assert LedgerAdjustment.objects.get().status == "posted"
    assert balance_of(merchant_a.merchant).available == 2500


def test_the_books_are_read_only_in_the_admin_and_open_to_ledger_readers(client, staff_user, staff_sign_in, merchant_a, make_payment):
    make_payment(merchant_a, amount=1000)
    staff_sign_in(client, staff_user("sue", "support"))
    for model in ("ledgeraccount", "ledgertransaction", "payout", "ledgerverificationrun", "ledgeradjustment"):
        assert client.get(reverse(f"admin:ledger_{model}_changelist")).status_code == 200, model
    txn = LedgerTransaction.objects.get()
    page = client.get(reverse("admin:ledger_ledgertransaction_change", args=[txn.pk]))
    assert page.status_code == 200 and "gateway_clearing" in page.content.decode()
    assert client.post(reverse("admin:ledger_ledgertransaction_delete", args=[txn.pk])).status_code == 403
    # support may read, not request
    assert client.get(reverse("admin:ledger_ledgeradjustment_request_adjustment")).status_code == 403
    staff_sign_in(client, staff_user("otto", "operator"))
    assert client.get(reverse("admin:ledger_ledgeraccount_changelist")).status_code == 403


def test_finance_edits_a_merchant_s_terms_and_the_change_is_audited(client, staff_user, staff_sign_in, merchant_a):
    staff_sign_in(client, staff_user("fiona", "finance"))
    url = reverse("admin:ledger_merchantledgersettings_add")
    response = client.post(url, {"merchant": merchant_a.merchant.pk, "availability_delay_days": 7, "fee_percent_bps": 150,
                                 "fee_fixed": 25, "dispute_fee": 2000, "payout_schedule": "weekly", "payout_weekday": 4})
    assert response.status_code == 302, response.content.decode()[:2000]
    terms = MerchantLedgerSettings.objects.get(merchant=merchant_a.merchant)
    assert (terms.availability_delay_days, terms.fee_percent_bps, terms.payout_schedule) == (7, 150, "weekly")
    entry = AuditEntry.objects.get(action="ledger_settings.update")
    assert entry.actor_id == "fiona" and entry.details["after"]["fee_fixed"] == 25
