"""The management commands of the foundation."""

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import ApiKey, Merchant
from audit.models import AuditEntry

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_merchant_json_prints_a_working_key():
    data = json.loads(run("create_merchant", "Shop One", "--json"))
    assert set(data) == {"merchantId", "apiKey"}
    merchant = Merchant.objects.get(public_id=data["merchantId"])
    assert merchant.name == "Shop One" and data["apiKey"].startswith("fp_test_")
    assert ApiKey.objects.get(merchant=merchant).key_hash != data["apiKey"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {data['apiKey']}")
    assert client.get("/payment/transactions").status_code == 200
    assert AuditEntry.objects.filter(action="merchant.create", actor_type="system").exists()


def test_create_merchant_table_output_and_live_keys():
    text = run("create_merchant", "Shop Two", "--environment", "live")
    assert "Merchant: Shop Two (mer_" in text and "fp_live_" in text


def test_create_merchant_rejects_a_blank_name():
    with pytest.raises(CommandError, match="needs a name"):
        run("create_merchant", "   ")
    assert not Merchant.objects.exists()


def test_create_staff_token_creates_the_user_with_the_role():
    data = json.loads(run("create_staff_token", "carol", "--role", "operator", "--json"))
    assert data["username"] == "carol" and data["role"] == "operator" and data["token"].startswith("fp_staff_")
    user = get_user_model().objects.get(username="carol")
    assert list(user.groups.values_list("name", flat=True)) == ["operator"]
    assert not user.has_usable_password()
    # a second token for the same user adds the role, keeps the user
    second = json.loads(run("create_staff_token", "carol", "--role", "finance", "--json"))
    assert second["token"] != data["token"]
    assert set(user.groups.values_list("name", flat=True)) == {"operator", "finance"}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {second['token']}")
    assert client.get("/payment/transactions").status_code == 200


def test_create_staff_token_refuses_unknown_roles():
    with pytest.raises(CommandError):
        run("create_staff_token", "dave", "--role", "god")
    assert not get_user_model().objects.filter(username="dave").exists()
