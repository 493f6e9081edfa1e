"""seed_demo: idempotent demo data whose printed credentials really work."""

import datetime as dt
import io
import json
import stat

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey, Merchant
from payments.models import Transaction, TransactionStatus


def _seed(**kwargs) -> dict:
    out = io.StringIO()
    call_command("seed_demo", "--json", stdout=out, **kwargs)
    return json.loads(out.getvalue())


def _client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def run_dir(settings, tmp_path):
    settings.RUN_DIR = tmp_path
    settings.FLOWPAY_DASHBOARD_DEMO_PAYMENTS = 40  # `make run` seeds 300
    return tmp_path


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_its_api_key_works(run_dir):
    first = _seed()
    second = _seed()

    assert first == second
    assert Merchant.objects.filter(name="FlowMart Demo").count() == 1
    assert ApiKey.objects.filter(merchant__name="FlowMart Demo", revoked_at__isnull=True).count() == 1
    merchant = Merchant.objects.get(name="FlowMart Demo")
    assert first["merchant"]["id"] == merchant.public_id
    statuses = set(Transaction.objects.filter(merchant=merchant).values_list("status", flat=True))
    assert {TransactionStatus.COMPLETED, TransactionStatus.AUTHORIZED, TransactionStatus.FAILED,
            TransactionStatus.REQUIRES_ACTION} <= statuses
    seeded = Transaction.objects.filter(merchant=merchant).count()
    assert seeded >= 8

    path = run_dir / "demo-credentials.json"
    assert json.loads(path.read_text()) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    response = _client(first["apiKey"]).get("/payment/transactions", {"limit": 100})
    assert response.status_code == 200, response.content
    body = response.json()
    assert len(body["data"]) == seeded
    assert {t["id"] for t in body["data"]} == set(Transaction.objects.filter(merchant=merchant).values_list("public_id", flat=True))

    admin = get_user_model().objects.get(username=first["admin"]["username"])
    assert admin.is_superuser and admin.check_password(first["admin"]["password"])
    assert admin.groups.filter(name="admin").exists()
    for role, staff in first["staffTokens"].items():
        response = _client(staff["token"]).get("/payment/transactions")
        assert response.status_code == 200, (role, response.content)


@pytest.mark.django_db
def test_seed_demo_without_the_file_reissues_credentials_and_revokes_the_old(run_dir):
    first = _seed()
    seeded = Transaction.objects.filter(merchant__name="FlowMart Demo").count()
    (run_dir / "demo-credentials.json").unlink()

    second = _seed()

    assert second["apiKey"] != first["apiKey"]
    assert second["admin"]["password"] != first["admin"]["password"]
    assert _client(first["apiKey"]).get("/payment/transactions").status_code == 401
    assert _client(first["staffTokens"]["operator"]["token"]).get("/payment/transactions").status_code == 401
    assert _client(second["apiKey"]).get("/payment/transactions").status_code == 200
    assert get_user_model().objects.get(username="admin").check_password(second["admin"]["password"])
    assert Merchant.objects.filter(name="FlowMart Demo").count() == 1
    assert Transaction.objects.filter(merchant__name="FlowMart Demo").count() == seeded  # not seeded twice
    assert json.loads((run_dir / "demo-credentials.json").read_text()) == second


@pytest.mark.django_db
def test_the_demo_admin_signs_in_with_the_printed_secret_and_the_readme_one_liner(run_dir):
    import base64
    import re
    import subprocess
    import sys
    from pathlib import Path

    from django.conf import settings
    from django.test import Client

    first = _seed()
    secret, uri = first["admin"]["totpSecret"], first["admin"]["otpauthUri"]
    assert uri.startswith("otpauth://totp/FlowPay%3Aadmin?secret=") and f"secret={secret}" in uri
    assert len(base64.b32decode(secret + "=" * (-len(secret) % 8))) == 20
    # the same secret on the next run (the credentials file still checks out)
    assert _seed()["admin"]["totpSecret"] == secret

    # the README's one-liner computes the code the sign-in accepts
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    one_liner = re.search(r"^python3 -c '(.+)' \"\$SECRET\"$", readme, re.MULTILINE)
    assert one_liner, "README.md shows the one-liner as: python3 -c '…' \"$SECRET\""
    code = subprocess.run([sys.executable, "-c", one_liner.group(1), secret], capture_output=True, text=True, check=True).stdout.strip()
    assert re.fullmatch(r"\d{6}", code)
    response = Client().post("/admin/login/", {"username": "admin", "password": first["admin"]["password"], "otp_token": code})
    assert response.status_code == 302 and response["Location"] == "/admin/"


@pytest.mark.django_db
def test_the_dashboard_demo_fills_every_figure_once(run_dir, staff_user, staff_sign_in):
    from django.test import Client

    from backoffice.dashboard.models import HourlyRollup
    from refunds.models import Chargeback, Refund
    from subscriptions.models import Subscription
    from webhooks.models import WebhookDelivery

    _seed()
    buckets = HourlyRollup.objects.count()
    _seed()  # seeded once
    demo = Transaction.objects.filter(metadata__has_key="dashboard_demo")
    assert demo.count() == 40 and HourlyRollup.objects.count() == buckets > 0
    assert demo.filter(status="failed").exists() and len(set(demo.values_list("currency", flat=True))) >= 3
    assert Refund.objects.filter(status="succeeded").exists() and Chargeback.objects.count() == 1
    assert Subscription.objects.filter(status="active").count() == 3
    assert WebhookDelivery.objects.filter(status="dead").count() == 1

    finance = Client()
    staff_sign_in(finance, staff_user("demo-finance", "finance"))
    response = finance.get("/admin/?period=30d&currency=USD&mode=test")
    cards = {card["key"]: card["value"] for card in response.context["overview"]["cards"]}
    assert cards["gross"] != "0.00 USD" and cards["mrr"] != "0.00 USD" and cards["dead-deliveries"] == "1"
    assert cards["disputes"] != "0.00 USD" and cards["open-disputes"] == "1" and cards["refunds"] != "0.00 USD"
    # every demo payment is inside the 30 days: the previous period has none of them
    assert not demo.filter(created_at__lt=timezone.now() - dt.timedelta(days=30)).exists()
