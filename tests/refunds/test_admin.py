"""Support's manual refunds in the admin, the four-eyes approval above
FLOWPAY_SUPPORT_REFUND_LIMIT, refund and chargeback admin actions, and reasons stored
verbatim but always rendered escaped."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from audit.models import AuditEntry
from core.actors import Actor
from core.errors import PermissionDenied
from refunds.models import Chargeback, Refund
from refunds.services.chargebacks import chargeback_create
from refunds.services.create import refund_approve, refund_create
from tests.support.refunds import run_queued

pytestmark = pytest.mark.django_db

XSS_REASON = "<script>alert(1)</script>' OR 1=1 --"


def refund_form_url(txn) -> str:
    return reverse("admin:payments_transaction_refund_detail", args=[txn.pk])


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def changelist_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture(autouse=True)
def support_limit(settings):
    settings.FLOWPAY_SUPPORT_REFUND_LIMIT = 10000  # 100.00 USD


@pytest.fixture
def as_user(client, staff_user, staff_sign_in):
    def login(username: str, *roles: str):
        user = staff_user(username, *roles)
        staff_sign_in(client, user)
        return user

    return login


def test_support_refunds_within_the_limit_from_the_transaction_page(client, as_user, merchant_a, make_payment,
                                                                    queued_refunds, django_capture_on_commit_callbacks):
    # given a 50.00 payment and a support user in the admin
    txn = make_payment(merchant_a, amount=5000)
    as_user("sue", "support")

    # the payment's page offers the Refund button, which opens the form
    assert refund_form_url(txn) in client.get(change_url(txn)).content.decode()
    form_page = client.get(refund_form_url(txn)).content.decode()
    assert 'name="amount"' in form_page and 'name="reason"' in form_page and 'name="refund_to_original_method"' in form_page

    # when support refunds 20.00 to the original method
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(refund_form_url(txn), {"amount": 2000, "reason": "Damaged on arrival",
                                                      "refund_to_original_method": "on"})

    # then the same service as the API ran, as the staff user, and the worker refunds it
    assert response.status_code == 302 and response["Location"] == change_url(txn)
    refund = Refund.objects.get()
    assert (refund.status, refund.amount, refund.initiated_by_type, refund.initiated_by_id) == ("pending", 2000, "staff", "sue")
    assert messages_of(response) == [f"{refund.public_id}: refund pending."]
    run_queued(queued_refunds)
    txn.refresh_from_db()
    assert (txn.status, txn.amount_refunded) == ("partially_refunded", 2000)
    assert AuditEntry.objects.filter(action="refund.create", actor_type="staff", actor_id="sue").exists()


def test_support_above_the_limit_cannot_refund_alone_finance_approves(client, as_user, merchant_a, make_payment,
                                                                      queued_refunds, django_capture_on_commit_callbacks):
    # given a 200.00 payment and a support user refunding 150.00 (the limit is 100.00)
    txn = make_payment(merchant_a, amount=20000)
    sue = as_user("sue", "support")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(refund_form_url(txn), {"amount": 15000, "reason": "Goodwill", "refund_to_original_method": "on"})

    # then the refund waits for approval: reserved, but not queued nor sent to the gateway
    refund = Refund.objects.get()
    assert refund.status == "requires_approval" and refund.approval_required and queued_refunds == []
    assert "waiting for a finance or admin approval" in messages_of(response)[0]
    txn.refresh_from_db()
    assert (txn.amount_refund_reserved, txn.amount_refunded, txn.amount_refundable) == (15000, 0, 5000)

    # and support cannot approve it: no button, no action, and the service refuses
    refund_page = client.get(change_url(refund)).content.decode()
    approve_url = reverse("admin:refunds_refund_approve_detail", args=[refund.pk])
    assert approve_url not in refund_page
    assert client.get(approve_url).status_code == 403
    refused = client.post(changelist_url(Refund), {"action": "approve_selected", "_selected_action": [refund.pk]})
    assert messages_of(refused) == ["No action selected."]  # the action is not offered to support
    with pytest.raises(PermissionDenied):
        refund_approve(refund_id=refund.pk, actor=Actor.staff(user=sue))
    refund.refresh_from_db()
    assert refund.status == "requires_approval"

    # when a finance user approves it from the refund list
    as_user("fiona", "finance")
    with django_capture_on_commit_callbacks(execute=True):
        approved = client.post(changelist_url(Refund), {"action": "approve_selected", "_selected_action": [refund.pk]})

    # then it runs, and both steps are audited with their staff user
    assert messages_of(approved)[-1] == f"{refund.public_id}: approved."
    refund.refresh_from_db()
    assert (refund.status, refund.approved_by.username) == ("pending", "fiona")
    run_queued(queued_refunds)
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    audit = AuditEntry.objects.filter(object_id=refund.public_id)
    assert audit.filter(action="refund.create", actor_type="staff", actor_id="sue").exists()
    assert audit.filter(action="refund.approve", actor_type="staff", actor_id="fiona").exists()
    assert audit.get(action="refund.create").details["approval_required"] is True


def test_the_approve_button_asks_for_confirmation_then_approves(client, as_user, merchant_a, make_payment, queued_refunds,
                                                                 django_capture_on_commit_callbacks):
    txn = make_payment(merchant_a, amount=20000)
    sue = as_user("sue", "support")
    refund = refund_create(transaction_id=txn.pk, amount=12000, reason="Goodwill", actor=Actor.staff(user=sue))
    as_user("ada", "admin")
    approve_url = reverse("admin:refunds_refund_approve_detail", args=[refund.pk])

    assert approve_url in client.get(change_url(refund)).content.decode()
    confirm = client.get(approve_url)
    assert confirm.status_code == 200 and "Goodwill" in confirm.content.decode()
    refund.refresh_from_db()
    assert refund.status == "requires_approval"  # a GET changes nothing

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(approve_url)
    assert done.status_code == 302
    refund.refresh_from_db()
    assert refund.status == "pending" and queued_refunds == [refund.pk]


def test_finance_and_admin_refund_above_the_limit_without_approval(merchant_a, make_payment, staff_user, queued_refunds):
    txn = make_payment(merchant_a, amount=50000)
    for name, role in (("fin", "finance"), ("adm", "admin")):
        refund = refund_create(transaction_id=txn.pk, amount=20000, reason="Large refund",
                               actor=Actor.staff(user=staff_user(name, role)))
        assert refund.status == "pending" and not refund.approval_required


def test_approval_over_the_api_needs_another_finance_user(merchant_a, make_payment, staff_api, queued_refunds):
    txn = make_payment(merchant_a, amount=20000)
    requested = staff_api("support", "sam").post(f"/payment/transactions/{txn.public_id}/refund",
                                                 {"amount": 15000, "reason": "Goodwill"}, format="json").json()
    assert requested["status"] == "requires_approval"
    assert requested["approval"]["required"] is True and requested["approval"]["approvedBy"] is None

    assert staff_api("support", "sam").post(f"/payment/refunds/{requested['id']}/approve").status_code == 403
    approved = staff_api("finance", "fred").post(f"/payment/refunds/{requested['id']}/approve")

    assert approved.status_code == 200, approved.json()
    assert approved.json()["status"] == "pending" and approved.json()["approval"]["approvedBy"] == "fred"


def test_a_requester_can_never_approve_their_own_refund(merchant_a, make_payment, staff_user, queued_refunds):
    txn = make_payment(merchant_a, amount=20000)
    sam = staff_user("sam", "support")
    refund = refund_create(transaction_id=txn.pk, amount=15000, reason="Goodwill", actor=Actor.staff(user=sam))
    staff_user("sam", "finance")  # promoted meanwhile

    with pytest.raises(PermissionDenied, match="Four-eyes"):
        refund_approve(refund_id=refund.pk, actor=Actor.staff(user=sam))


def test_rejecting_a_refund_gives_the_amount_back(client, as_user, merchant_a, make_payment, queued_refunds):
    txn = make_payment(merchant_a, amount=20000)
    sue = as_user("sue", "support")
    refund = refund_create(transaction_id=txn.pk, amount=15000, reason="Goodwill", actor=Actor.staff(user=sue))
    as_user("fiona", "finance")

    client.post(reverse("admin:refunds_refund_reject_detail", args=[refund.pk]), {"reason": "Not eligible"})

    refund.refresh_from_db()
    txn.refresh_from_db()
    assert (refund.status, refund.rejection_reason, refund.holds_reservation) == ("rejected", "Not eligible", False)
    assert txn.amount_refund_reserved == 0 and txn.amount_refundable == 20000
    assert AuditEntry.objects.filter(action="refund.reject", actor_id="fiona").exists()


def test_refund_reasons_are_stored_verbatim_and_rendered_escaped(client, as_user, merchant_a, make_payment, queued_refunds):
    # given a refund made in the admin and one made through the API, both with a hostile reason
    txn = make_payment(merchant_a, amount=5000)
    as_user("sue", "support")
    client.post(refund_form_url(txn), {"amount": 1000, "reason": XSS_REASON, "refund_to_original_method": "on"})
    api = merchant_a.client.post(f"/payment/transactions/{txn.public_id}/refund", {"amount": 500, "reason": XSS_REASON},
                                 format="json")
    chargeback, _ = chargeback_create(transaction_id=txn.pk, chargeback_reference="<b>CB</b>", amount=100,
                                      reason=XSS_REASON, actor=Actor.system("test"))

    # then the database and the API hold exactly what was sent
    assert list(Refund.objects.values_list("reason", flat=True)) == [XSS_REASON, XSS_REASON]
    assert api.json()["reason"] == XSS_REASON
    assert AuditEntry.objects.filter(action="refund.create").first().details["reason"] == XSS_REASON

    # and no admin page renders it as markup
    refund = Refund.objects.first()
    pages = [change_url(refund), changelist_url(Refund), change_url(txn), refund_form_url(txn),
             change_url(chargeback), changelist_url(Chargeback)]
    as_user("ada", "admin")
    pages.append(reverse("admin:refunds_refund_approve_detail", args=[refund.pk]))
    for url in pages:
        page = client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in page, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, url
    assert "<b>CB</b>" not in client.get(change_url(chargeback)).content.decode()


def test_staff_without_a_refund_role_cannot_open_the_refund_form(client, as_user, merchant_a, make_payment):
    txn = make_payment(merchant_a, amount=5000)
    as_user("otto", "operator")

    assert client.get(refund_form_url(txn)).status_code == 403
    assert client.post(refund_form_url(txn), {"amount": 100, "reason": "x"}).status_code == 403
    assert not Refund.objects.exists()


def test_a_refused_admin_refund_shows_the_error_on_the_form(client, as_user, merchant_a, make_payment, queued_refunds):
    txn = make_payment(merchant_a, amount=1000)
    as_user("sue", "support")

    too_much = client.post(refund_form_url(txn), {"amount": 1001, "reason": "x", "refund_to_original_method": "on"})
    blank = client.post(refund_form_url(txn), {"amount": 10, "reason": "   ", "refund_to_original_method": "on"})

    assert too_much.status_code == 200 and "exceeds the amount still refundable" in too_much.content.decode()
    assert blank.status_code == 200 and "A reason is required" in blank.content.decode()
    assert not Refund.objects.exists()


def test_chargeback_actions_in_the_admin_call_the_services(client, as_user, merchant_a, make_payment):
    txn = make_payment(merchant_a, amount=3000)
    accepted, _ = chargeback_create(transaction_id=txn.pk, chargeback_reference="CB-A", amount=1000, reason="r",
                                    actor=Actor.system("test"))
    contested, _ = chargeback_create(transaction_id=txn.pk, chargeback_reference="CB-B", amount=1000, reason="r",
                                     actor=Actor.system("test"))
    as_user("sue", "support")
    client.post(changelist_url(Chargeback), {"action": "accept_selected", "_selected_action": [accepted.pk]})
    assert client.get(reverse("admin:refunds_chargeback_outcome_detail", args=[contested.pk])).status_code == 403

    as_user("fiona", "finance")
    client.post(reverse("admin:refunds_chargeback_outcome_detail", args=[contested.pk]), {"outcome": "won"})

    accepted.refresh_from_db()
    contested.refresh_from_db()
    txn.refresh_from_db()
    assert (accepted.status, contested.status) == ("accepted", "won")
    assert (txn.disputed, txn.amount_disputed) == (True, 1000)
    assert AuditEntry.objects.filter(action="chargeback.accept", actor_id="sue").exists()
    assert AuditEntry.objects.filter(action="chargeback.won", actor_id="fiona").exists()
