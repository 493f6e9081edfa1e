"""The runbook's monthly PCI audit report."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditEntry
from audit.sealing import audit_seal_pending

pytestmark = pytest.mark.django_db


def report(month: str) -> tuple[int, dict]:
    out = StringIO()
    try:
        call_command("generate_pci_audit_report", f"--month={month}", "--format", "json", stdout=out)
        code = 0
    except SystemExit as exited:
        code = exited.code
    return code, json.loads(out.getvalue())


def test_the_month_s_controls_roles_and_operator_actions_are_reported(merchant_a, staff_client, settings):
    settings.FLOWPAY_GATEWAYS = ["simulator"]
    operator = staff_client("operator", "olga")
    operator.post("/internal/api/system/enable-simplified-flow", {"reason": "DR drill"}, format="json")
    refused = merchant_a.client.post("/payment/transactions", {"amount": 100, "currency": "usd",
                                                                "paymentMethod": "4242 4242 4242 4242"}, format="json")
    assert refused.status_code == 400
    entry = AuditEntry.objects.get(action="security.card_data_rejected")
    assert entry.actor_id == f"unverified:{merchant_a.api_key[:14]}" and entry.details["field"] == "paymentMethod"
    assert "4242" not in json.dumps(entry.details)

    code, document = report(timezone.now().strftime("%Y-%m"))

    assert code == 0 and document["auditChainIntact"] is True
    controls = {row["action"]: row["count"] for row in document["controls"]}
    assert controls["security.card_data_rejected"] == 1
    assert controls["api_key.create"] == 1 and controls["staff_token.create"] == 1
    assert [(a["actor_id"], a["details__reason"]) for a in document["operatorActions"]] == [("olga", "DR drill")]
    assert {"username": "olga", "roles": ["operator"]}.items() <= next(s for s in document["staff"] if s["username"] == "olga").items()

    _, empty = report("2020-01")
    assert empty["auditEntries"] == 0 and all(row["count"] == 0 for row in empty["controls"])


def test_a_broken_audit_chain_fails_the_report(merchant_a, settings):
    settings.FLOWPAY_AUDIT_SEAL_MIN_AGE_SECONDS = 0
    audit_seal_pending()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("DELETE FROM audit_entry WHERE id = (SELECT min(id) FROM audit_entry)")
    code, document = report(timezone.now().strftime("%Y-%m"))
    assert code == 1 and document["auditChainIntact"] is False
    assert any("tampering" in problem for problem in document["problems"])


def test_a_bad_month_is_a_usage_error():
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command("generate_pci_audit_report", "--month=May 2023")


def test_the_report_counts_staff_authentication_events_by_result(client, staff_user, staff_sign_in):
    from tests.support.staff_auth import SIGN_IN_URL

    user = staff_user("ursula", "support")
    client.post(SIGN_IN_URL, {"username": "ursula", "password": "not her password"})
    client.post(SIGN_IN_URL, {"username": "nobody-at-all", "password": "x"})
    staff_sign_in(client, user)
    client.post("/admin/logout/")

    code, document = report(timezone.now().strftime("%Y-%m"))

    rows = {row["action"]: row for row in document["authentication"]}
    assert rows["staff_user.sign_in"]["success"] == 1 and rows["staff_user.sign_in"]["failure"] == 2
    assert rows["staff_user.sign_in"]["total"] == 3 and rows["staff_user.sign_out"]["total"] == 1
    assert rows["staff_user.locked"]["total"] == 0 and "staff_user.mfa_reset" in rows
    _, empty = report("2020-01")
    assert all(row["total"] == 0 for row in empty["authentication"])
