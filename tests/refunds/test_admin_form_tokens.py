"""Admin forms that move money carry a one-time token: the same rendered form submitted twice
(a double click, the back button) refunds, approves or records once, and says so."""

import re
import threading

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry
from core.actors import Actor
from refunds.models import Refund
from refunds.services.chargebacks import chargeback_create
from refunds.services.create import refund_create

pytestmark = pytest.mark.django_db

BODY = {"amount": 2000, "reason": "Damaged on arrival", "refund_to_original_method": "on"}


def refund_form_url(txn) -> str:
    return reverse("admin:payments_transaction_refund_detail", args=[txn.pk])


def token_of(page) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', page.content.decode())
    assert found, "the form carries no one-time token"
    return found.group(1)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def as_user(client, staff_user, staff_sign_in):
    def login(username: str, *roles: str):
        user = staff_user(username, *roles)
        staff_sign_in(client, user)
        return user

    return login


def test_the_refund_form_submitted_twice_refunds_once_and_says_so(client, as_user, merchant_a, make_payment, queued_refunds):
    txn = make_payment(merchant_a, amount=5000)
    as_user("sue", "support")
    token = token_of(client.get(refund_form_url(txn)))

    first = client.post(refund_form_url(txn), {**BODY, "form_token": token})
    second = client.post(refund_form_url(txn), {**BODY, "form_token": token})

    assert first.status_code == second.status_code == 302
    assert Refund.objects.filter(transaction=txn).count() == 1
    assert any("already submitted" in m for m in messages_of(second))
    # a new rendering of the form gets a new token, which works once
    again = token_of(client.get(refund_form_url(txn)))
    assert again != token
    client.post(refund_form_url(txn), {**BODY, "form_token": again})
    assert Refund.objects.filter(transaction=txn).count() == 2


def test_a_token_works_only_for_its_user_and_its_form(client, as_user, merchant_a, make_payment, queued_refunds):
    txn, other = make_payment(merchant_a, amount=5000), make_payment(merchant_a, amount=5000)
    as_user("sue", "support")
    token = token_of(client.get(refund_form_url(txn)))

    client.post(refund_form_url(other), {**BODY, "form_token": token})  # another form's token
    as_user("sam", "support")
    client.post(refund_form_url(txn), {**BODY, "form_token": token})  # another user's token
    client.post(refund_form_url(txn), {**BODY, "form_token": "made-up"})

    assert not Refund.objects.exists()


def test_a_refused_submit_shows_the_form_again_with_a_fresh_token(client, as_user, merchant_a, make_payment, queued_refunds):
    txn = make_payment(merchant_a, amount=1000)
    as_user("sue", "support")
    token = token_of(client.get(refund_form_url(txn)))
    too_much = client.post(refund_form_url(txn), {**BODY, "amount": 1001, "form_token": token})
    assert too_much.status_code == 200 and token_of(too_much) != token
    client.post(refund_form_url(txn), {**BODY, "amount": 1000, "form_token": token_of(too_much)})
    assert Refund.objects.filter(transaction=txn).count() == 1


def test_approve_reject_and_outcome_pages_run_once_per_rendering(client, as_user, merchant_a, make_payment, queued_refunds):
    txn = make_payment(merchant_a, amount=50000)
    sue = as_user("sue", "support")
    to_approve = refund_create(transaction_id=txn.pk, amount=12000, reason="Goodwill", actor=Actor.staff(user=sue))
    to_reject = refund_create(transaction_id=txn.pk, amount=12000, reason="Goodwill", actor=Actor.staff(user=sue))
    disputed = make_payment(merchant_a, amount=3000)
    chargeback, _ = chargeback_create(transaction_id=disputed.pk, chargeback_reference="CB-1", amount=1000, reason="r",
                                      actor=Actor.system("test"))
    as_user("fiona", "finance")

    for name, pk, data in (
        ("admin:refunds_refund_approve_detail", to_approve.pk, {}),
        ("admin:refunds_refund_reject_detail", to_reject.pk, {"reason": "Not eligible"}),
        ("admin:refunds_chargeback_outcome_detail", chargeback.pk, {"outcome": "won"}),
    ):
        url = reverse(name, args=[pk])
        token = token_of(client.get(url))
        client.post(url, {**data, "form_token": token})
        second = client.post(url, {**data, "form_token": token})
        assert any("already submitted" in m for m in messages_of(second)), name
        assert not any("Cannot" in m for m in messages_of(second)), "the service must not even be called again"

    assert AuditEntry.objects.filter(action="refund.approve").count() == 1
    assert AuditEntry.objects.filter(action="refund.reject").count() == 1
    assert AuditEntry.objects.filter(action="chargeback.won").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_double_click_of_concurrent_submits_refunds_once(client, as_user, merchant_a, make_payment, queued_refunds):
    txn = make_payment(merchant_a, amount=5000)
    as_user("sue", "support")
    token = token_of(client.get(refund_form_url(txn)))
    cookies = client.cookies
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def submit():
        thread_client = Client()
        thread_client.cookies = cookies
        try:
            barrier.wait(timeout=30)
            statuses.append(thread_client.post(refund_form_url(txn), {**BODY, "form_token": token}).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert statuses == [302] * 4
    assert Refund.objects.filter(transaction=txn).count() == 1
