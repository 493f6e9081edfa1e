"""The runbook's refund and chargeback commands ("Managing Refunds", "Handling Chargebacks"),
run exactly as written with curl against a live server; only the base URL is local."""

import json
import os
import subprocess

import pytest

from accounts.services import staff_token_create
from audit.models import AuditEntry
from core.actors import Actor
from refunds.models import Chargeback, Refund
from tests.support.refunds import charge_of

RUNBOOK_BASE_URL = "https://api.internal.flowmart.com"
RUNBOOK_REFUND = """curl -X POST https://api.internal.flowmart.com/payment/transactions/{transactionId}/refund \\
  -H "Authorization: Bearer $ADMIN_TOKEN" \\
  -H "Content-Type: application/json" \\
  -d '{"amount": 1999, "reason": "Customer service request", "refundToOriginalMethod": true}'"""
RUNBOOK_CHARGEBACK = """curl -X POST https://api.internal.flowmart.com/payment/transactions/{transactionId}/chargeback \\
  -H "Authorization: Bearer $ADMIN_TOKEN" \\
  -H "Content-Type: application/json" \\
  -d '{"chargebackReference": "CB12345", "amount": 1999, "reason": "Unauthorized transaction"}'"""


def run_runbook(command: str, *, base_url: str, transaction_id: str, admin_token: str) -> dict:
    script = command.replace(RUNBOOK_BASE_URL, base_url).replace("{transactionId}", transaction_id)
    completed = subprocess.run(
        ["bash", "-c", script], env={**os.environ, "ADMIN_TOKEN": admin_token},
        capture_output=True, text=True, timeout=60, check=True,
    )
    return json.loads(completed.stdout)


@pytest.mark.django_db(transaction=True)
def test_the_runbook_refund_and_chargeback_commands_succeed_as_written(live_server, merchant_a, make_payment,
                                                                       tasks_run_on_commit):
    # given two completed 19.99 payments and a support user's token as $ADMIN_TOKEN
    to_refund, disputed = make_payment(merchant_a, amount=1999), make_payment(merchant_a, amount=1999)
    admin_token = staff_token_create(username="runbook-support", role="support", actor=Actor.system("test")).secret

    # when the on-call engineer runs the runbook's refund
    refund = run_runbook(RUNBOOK_REFUND, base_url=live_server.url, transaction_id=to_refund.public_id, admin_token=admin_token)

    # then the refund was recorded and executed at the gateway
    assert refund["object"] == "refund", refund
    assert (refund["amount"], refund["reason"], refund["refundToOriginalMethod"]) == (1999, "Customer service request", True)
    assert refund["status"] == "succeeded"
    to_refund.refresh_from_db()
    assert (to_refund.status, to_refund.amount_refunded) == ("refunded", 1999)
    assert charge_of(to_refund).amount_refunded == 1999
    assert Refund.objects.get().initiated_by_id == "runbook-support"

    # when they run the runbook's chargeback, twice (a retried command)
    chargeback = run_runbook(RUNBOOK_CHARGEBACK, base_url=live_server.url, transaction_id=disputed.public_id,
                             admin_token=admin_token)
    again = run_runbook(RUNBOOK_CHARGEBACK, base_url=live_server.url, transaction_id=disputed.public_id,
                        admin_token=admin_token)

    # then one chargeback was recorded
    assert chargeback["object"] == "chargeback", chargeback
    assert (chargeback["chargebackReference"], chargeback["amount"], chargeback["status"]) == ("CB12345", 1999, "needs_response")
    assert again["id"] == chargeback["id"] and Chargeback.objects.count() == 1
    assert AuditEntry.objects.filter(action="chargeback.create", actor_id="runbook-support").count() == 1
