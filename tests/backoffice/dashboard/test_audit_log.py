"""The audit log browser: filters by actor, action, object, correlation id and time; an
entry's details as stored (redacted); the chain's state (the last seal, what is not sealed
yet, the last verification, whoever ran it); "verify now" records its outcome in the log,
as `verify_audit_log` does; the filtered entries export; one "Audit log" in the sidebar."""

import csv
import io
import json

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.db import connection, transaction
from django.test import RequestFactory
from django.urls import reverse

from audit.actions import AuditAction
from audit.models import AuditEntry
from audit.sealing import audit_seal_pending
from audit.services import audit_record
from core.actors import Actor
from core.observability.context import correlation_id

pytestmark = pytest.mark.django_db

PAGE = reverse("admin:dashboard_audit_log")
EXPORT = reverse("admin:audit_auditentry_export_csv")


@pytest.fixture
def entries(merchant_a):
    worker = Actor.worker("refunds.execute")
    token = correlation_id.set("corr-dashboard-1")
    try:
        audit_record(actor=worker, action=AuditAction.REFUND_RETRY, merchant_id=merchant_a.merchant.pk,
                     details={"reason": "operator asked", "api_key": "sk_live_should_never_show"})
    finally:
        correlation_id.reset(token)
    audit_record(actor=Actor.system("cron"), action=AuditAction.LEDGER_VERIFY, details={"ok": True})
    return AuditEntry.objects.get(action="refund.retry")


def exported(client, query: str) -> list[dict]:
    response = client.get(f"{EXPORT}?{query}")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize("query", [
    "action__exact=refund.retry", "actor_type__exact=worker&actor_id__exact=refunds.execute",
    "correlation_id__exact=corr-dashboard-1", "merchant__id__exact={merchant}&result__exact=success&actor_type__exact=worker",
    "merchant__id__exact={merchant}&occurred_at__gte=2000-01-01T00:00:00Z&action__exact=refund.retry",
])
def test_each_filter_finds_the_entry(entries, role_client, query):
    client = role_client("auditor")
    query = query.format(merchant=entries.merchant_id)
    assert client.get(f"{PAGE}?{query}").status_code == 200
    rows = exported(client, query)
    assert [row["id"] for row in rows] == [str(entries.pk)]


def test_an_entry_shows_and_exports_its_details_redacted(entries, role_client):
    client = role_client("finance")
    page = client.get(reverse("admin:audit_auditentry_change", args=[entries.pk])).content.decode()
    assert "operator asked" in page and "[redacted]" in page and "sk_live_should_never_show" not in page
    (row,) = exported(client, "action__exact=refund.retry")
    assert json.loads(row["details"]) == {"api_key": "[redacted]", "reason": "operator asked"}


def test_the_chain_state_and_verify_now_record_the_verification_in_the_log(entries, role_client):
    auditor = role_client("auditor")
    page = auditor.get(PAGE).content.decode()
    assert "never verified" in page and "no seal yet" in page

    audit_seal_pending()
    last = AuditEntry.objects.order_by("-id").first()
    assert f"entries up to {last.pk}" in auditor.get(PAGE).content.decode()

    assert auditor.post(reverse("admin:dashboard_audit_log_verify")).status_code == 302
    verification = AuditEntry.objects.get(action="audit_log.verify")
    assert (verification.result, verification.actor_type, verification.actor_id) == ("success", "staff", "auditor-dash")
    assert verification.details["problems"] == 0 and verification.details["seals_checked"] >= 1
    page = auditor.get(PAGE).content.decode()
    assert 'data-result="success"' in page and "by staff:auditor-dash" in page


def test_verify_audit_log_records_its_outcome_too(entries):
    call_command("verify_audit_log", "--format", "json", stdout=io.StringIO())
    entry = AuditEntry.objects.get(action="audit_log.verify")
    assert (entry.actor_type, entry.actor_id, entry.result) == ("system", "verify_audit_log", "success")


def test_the_sidebar_names_the_audit_log_once(admin_user):
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    names = [app["name"] for app in admin.site.get_app_list(request)]
    assert names.count("Audit log") == 1 and "Field history" in names


def test_verify_now_on_a_tampered_log_says_so_and_records_the_failure(entries, role_client):
    # what only someone past the application could do: the append-only trigger switched off
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE audit_entry SET actor_id = 'mallory' WHERE id = %s", [entries.pk])
    auditor = role_client("auditor")
    response = auditor.post(reverse("admin:dashboard_audit_log_verify"), follow=True)
    assert "does NOT verify" in response.content.decode()
    verification = AuditEntry.objects.get(action="audit_log.verify")
    assert verification.result == "failure" and verification.details["problems"] == 1
    assert f"entry {entries.pk}: altered" in verification.details["first_problems"][0]
    page = auditor.get(PAGE).content.decode()
    assert 'data-result="failure"' in page and "TAMPERING FOUND" in page
