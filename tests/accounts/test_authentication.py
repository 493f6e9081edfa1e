"""Credentials, roles and merchant isolation."""

import pytest

from accounts.models import ApiKey, StaffToken
from payments.models import Transaction

pytestmark = pytest.mark.django_db

URL = "/payment/transactions"


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer fp_test_unknownkey", "Bearer fp_live_nope", "Basic dXNlcjpwYXNz", "Bearer a b", "Token fp_test_x",
     "Bearer fp_staff_notreal", "Bearer sk_test_123"],
)
def test_missing_or_invalid_credentials_answer_401(client, header):
    kwargs = {} if header is None else {"HTTP_AUTHORIZATION": header}
    response = client.get(URL, **kwargs)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_keys_are_stored_hashed_with_only_a_prefix_in_clear(merchant_a):
    key = ApiKey.objects.get(merchant=merchant_a.merchant)
    assert merchant_a.api_key.startswith("fp_test_")
    assert merchant_a.api_key.startswith(key.prefix) and len(key.prefix) < 16
    assert merchant_a.api_key not in (key.key_hash, key.prefix)


def test_revoked_key_answers_401(merchant_a):
    from accounts.services import api_key_revoke
    from core.actors import Actor

    api_key_revoke(api_key_id=ApiKey.objects.get(merchant=merchant_a.merchant).pk, actor=Actor.system("test"))
    assert merchant_a.client.get(URL).status_code == 401


def test_merchant_b_cannot_read_capture_cancel_or_list_merchant_a_payments(merchant_a, merchant_b, make_payment):
    authorized = make_payment(merchant_a, capture_method="manual")
    completed = make_payment(merchant_a)

    for txn in (authorized, completed):
        assert merchant_b.client.get(f"{URL}/{txn.public_id}").status_code == 404
    for operation in ("capture", "cancel"):
        response = merchant_b.client.post(f"{URL}/{authorized.public_id}/{operation}", {}, format="json")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "resource_missing"
    assert merchant_b.client.get(URL).json()["data"] == []
    assert merchant_b.client.get(URL, {"status": "authorized"}).json()["data"] == []
    authorized.refresh_from_db()
    assert authorized.status == "authorized"
    assert {t["id"] for t in merchant_a.client.get(URL).json()["data"]} == {authorized.public_id, completed.public_id}


def test_merchant_b_cannot_use_merchant_a_customer(merchant_a, merchant_b):
    customer = merchant_a.client.post("/payment/customers", {"name": "Ann"}, format="json").json()
    assert merchant_b.client.get(f"/payment/customers/{customer['id']}").status_code == 404
    response = merchant_b.client.post(URL, {"amount": 100, "currency": "usd", "paymentMethod": "pm_card_visa", "customer": customer["id"]}, format="json")
    assert response.status_code == 400 and response.json()["error"]["param"] == "customer"
    assert not Transaction.objects.filter(merchant=merchant_b.merchant).exists()
    assert merchant_b.client.get("/payment/customers").json()["data"] == []


def test_staff_token_reads_across_merchants_but_cannot_create_payments(merchant_a, make_payment, staff_client):
    txn = make_payment(merchant_a)
    auditor = staff_client("auditor")
    assert auditor.get(f"{URL}/{txn.public_id}").json()["id"] == txn.public_id
    assert [t["id"] for t in auditor.get(URL).json()["data"]] == [txn.public_id]
    response = auditor.post(URL, {"amount": 100, "currency": "usd", "paymentMethod": "pm_card_visa"}, format="json")
    assert response.status_code == 403 and response.json()["error"]["type"] == "permission_error"


def test_capture_with_staff_token_needs_support_or_admin(merchant_a, make_payment, staff_client):
    txn = make_payment(merchant_a, capture_method="manual")
    assert staff_client("finance").post(f"{URL}/{txn.public_id}/capture", {}, format="json").status_code == 403
    response = staff_client("support").post(f"{URL}/{txn.public_id}/capture", {}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "completed"
    from audit.models import AuditEntry

    assert AuditEntry.objects.filter(object_id=txn.public_id, action="transaction.capture", actor_type="staff", actor_id="support-user").exists()


def test_staff_user_without_role_is_forbidden(db, client, django_user_model):
    from accounts.services import staff_token_create
    from core.actors import Actor

    issued = staff_token_create(username="bob", role="finance", actor=Actor.system("test"))
    django_user_model.objects.get(username="bob").groups.clear()
    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert response.status_code == 403
    StaffToken.objects.filter(pk=issued.record.pk).update(revoked_at="2026-01-01T00:00:00Z")
    assert client.get(URL, HTTP_AUTHORIZATION=f"Bearer {issued.secret}").status_code == 401
