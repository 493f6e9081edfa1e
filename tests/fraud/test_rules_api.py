"""The rules API: create (never a rule that does not parse), versions on every change,
shadow mode, disable, platform rules (staff's), and testing a rule against history, whose
counts equal a direct query over the seeded decisions."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from audit.models import AuditEntry
from fraud.models import Decision, Rule, RuleVersion
from fraud.screening.rules import PLATFORM_RULES
from tests.support.fraud import add_rule, pay

RULES = "/payment/fraud/rules"


@pytest.mark.django_db
def test_a_rule_that_does_not_parse_is_refused_with_its_column_and_not_saved(merchant_a):
    before = Rule.objects.count()
    response = merchant_a.client.post(RULES, {"rule": "block if :amount: >> 5"}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "rule_invalid" and error["param"] == "rule" and error["column"] == 20
    assert "(column 20)" in error["message"]
    unknown = merchant_a.client.post(RULES, {"rule": "block if :amount: > 5 and :colour: = 'red'"}, format="json").json()
    assert unknown["error"]["column"] == 27 and "Unknown attribute :colour:" in unknown["error"]["message"]
    assert Rule.objects.count() == before and not AuditEntry.objects.filter(action="fraud_rule.create").exists()


@pytest.mark.django_db
def test_every_change_is_a_new_version_and_the_old_ones_stay(merchant_a):
    created = add_rule(merchant_a, "review if :amount: > 1000")
    assert created["version"] == 1 and created["mode"] == "active" and created["platform"] is False
    rule_url = f"{RULES}/{created['id']}"
    changed = merchant_a.client.patch(rule_url, {"rule": "review if :amount: > 2000", "description": "higher"},
                                      format="json").json()
    assert changed["version"] == 2 and changed["rule"] == "review if :amount: > 2000" and changed["description"] == "higher"
    shadowed = merchant_a.client.patch(rule_url, {"mode": "shadow"}, format="json").json()
    assert shadowed["version"] == 3 and shadowed["mode"] == "shadow" and shadowed["rule"] == "review if :amount: > 2000"
    disabled = merchant_a.client.delete(rule_url).json()
    assert disabled["version"] == 4 and disabled["mode"] == "disabled"
    versions = merchant_a.client.get(rule_url).json()["versions"]
    assert [(v["version"], v["rule"], v["mode"]) for v in versions] == [
        (1, "review if :amount: > 1000", "active"), (2, "review if :amount: > 2000", "active"),
        (3, "review if :amount: > 2000", "shadow"), (4, "review if :amount: > 2000", "disabled"),
    ]
    # a disabled rule is not evaluated
    assert pay(merchant_a, amount=5000).json()["risk"]["shadowRules"] == []
    # an invalid change changes nothing
    bad = merchant_a.client.patch(rule_url, {"rule": "review if"}, format="json")
    assert bad.status_code == 400 and RuleVersion.objects.filter(rule__public_id=created["id"]).count() == 4
    assert AuditEntry.objects.filter(action="fraud_rule.update").count() == 2
    assert AuditEntry.objects.filter(action="fraud_rule.disable").count() == 1


@pytest.mark.django_db
def test_versions_cannot_be_rewritten_in_the_database(merchant_a):
    from django.db import DatabaseError, transaction

    add_rule(merchant_a, "block if :amount: > 1")
    version = RuleVersion.objects.filter(rule__merchant=merchant_a.merchant).get()
    with pytest.raises(DatabaseError, match="written once"), transaction.atomic():
        RuleVersion.objects.filter(pk=version.pk).update(source="allow if :amount: > 1")
    pay(merchant_a)
    with pytest.raises(DatabaseError, match="written once"), transaction.atomic():
        Decision.objects.update(outcome="allow")


@pytest.mark.django_db
def test_the_platform_rules_ship_and_are_read_only_to_merchants(merchant_a, staff_client):
    listed = merchant_a.client.get(f"{RULES}?platform=true").json()["data"]
    assert {r["rule"] for r in listed} == {source for _, source, _ in PLATFORM_RULES}
    platform_rule = listed[0]
    assert merchant_a.client.patch(f"{RULES}/{platform_rule['id']}", {"mode": "shadow"}, format="json").status_code == 403
    assert merchant_a.client.delete(f"{RULES}/{platform_rule['id']}").status_code == 403
    # staff with fraud.rules (admin) add platform rules, which apply to every merchant
    admin = staff_client("admin")
    created = admin.post(RULES, {"rule": "block if :card_country: = 'NG'", "description": "test"}, format="json")
    assert created.status_code == 201 and created.json()["platform"] is True and created.json()["merchant"] is None
    assert pay(merchant_a, paymentMethod="pm_card_visa").status_code == 201
    assert staff_client("support").post(RULES, {"rule": "block if :amount: > 1"}, format="json").status_code == 403
    assert staff_client("auditor").get(RULES).status_code == 200


@pytest.mark.django_db
def test_a_merchant_sees_its_own_rules_and_the_platforms(merchant_a, merchant_b):
    own = add_rule(merchant_a, "block if :amount: > 1000000")
    assert merchant_b.client.get(f"{RULES}/{own['id']}").status_code == 404
    ids_b = {r["id"] for r in merchant_b.client.get(RULES).json()["data"]}
    assert own["id"] not in ids_b and len(ids_b) == len(PLATFORM_RULES)


@pytest.mark.django_db
def test_the_number_of_rules_is_limited(merchant_a, settings):
    settings.FLOWPAY_FRAUD_MAX_RULES = 2
    first = add_rule(merchant_a, "block if :amount: > 1000000")
    add_rule(merchant_a, "block if :amount: > 2000000")
    refused = merchant_a.client.post(RULES, {"rule": "block if :amount: > 3000000"}, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "limit_reached"
    merchant_a.client.delete(f"{RULES}/{first['id']}")
    assert merchant_a.client.post(RULES, {"rule": "block if :amount: > 3000000"}, format="json").status_code == 201


# --- testing a rule against history ---------------------------------------------------------------
def _seed_history(account) -> None:
    """Screened payments: 40 days ago (outside a 30-day test) and recently, of several amounts,
    currencies and emails."""
    with time_machine.travel(timezone.now() - dt.timedelta(days=40), tick=False):
        for amount in (9000, 12000):
            assert pay(account, amount=amount).status_code == 201
    for index, (amount, currency) in enumerate([(1500, "usd"), (6000, "usd"), (7000, "eur"), (9900, "usd"), (200, "gbp"),
                                                (50000, "usd"), (5001, "usd"), (4999, "jpy")]):
        assert pay(account, amount=amount, currency=currency, email=f"buyer{index % 3}@example.com").status_code in (201, 402)


@pytest.mark.django_db
def test_the_test_endpoint_counts_equal_a_direct_query_over_the_seeded_history(merchant_a, merchant_b):
    _seed_history(merchant_a)
    _seed_history(merchant_b)  # another merchant's payments are never evaluated
    since = timezone.now() - dt.timedelta(days=30)
    mine = Decision.objects.filter(merchant=merchant_a.merchant, created_at__gte=since)

    response = merchant_a.client.post(f"{RULES}/test", {"rule": "block if :amount: > 5000 and :currency: = 'usd'", "days": 30,
                                                        "limit": 100}, format="json")
    assert response.status_code == 200, response.content
    result = response.json()
    expected = mine.filter(signals__amount__gt=5000, signals__currency="USD")
    assert result["evaluated"] == mine.count() == 8
    assert result["matched"] == expected.count() == 4
    assert {m["transaction"] for m in result["matches"]} == set(expected.values_list("transaction__public_id", flat=True))
    assert result["truncated"] is False and result["action"] == "block"

    # over 60 days the old payments count too
    wide = merchant_a.client.post(f"{RULES}/test", {"rule": "review if :amount: > 8000", "days": 60}, format="json").json()
    assert wide["evaluated"] == 10
    assert wide["matched"] == Decision.objects.filter(merchant=merchant_a.merchant, signals__amount__gt=8000).count() == 4

    # lists as they are now
    merchant_a.client.post("/payment/fraud/lists/blocked_emails", {"value": "buyer1@example.com"}, format="json")
    listed = merchant_a.client.post(f"{RULES}/test", {"rule": "block if :email: in @blocked_emails"}, format="json").json()
    assert listed["matched"] == mine.filter(signals__email="buyer1@example.com").count() == 3
    # nothing was saved
    assert not Rule.objects.filter(merchant=merchant_a.merchant).exists()


@pytest.mark.django_db
def test_testing_an_invalid_rule_is_a_400_with_the_column(merchant_a):
    response = merchant_a.client.post(f"{RULES}/test", {"rule": "block if :amount: > 5 or"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["column"] == 25
    assert merchant_a.client.post(f"{RULES}/test", {"rule": "block if :amount: > 5", "days": 0}, format="json").status_code == 400


@pytest.mark.django_db
def test_a_rules_test_and_the_list_counts_see_only_the_keys_mode(merchant_a):
    from accounts.services import api_key_create
    from core.actors import Actor

    live = type(merchant_a.client)()
    live.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant_a.merchant, environment='live', actor=Actor.system('test')).secret}")
    assert live.post("/payment/transactions", {"amount": 1999, "currency": "usd", "paymentMethod": "pm_card_visa"},
                     format="json").status_code == 201
    live.post("/payment/fraud/lists/blocked_emails", {"value": "live@example.com"}, format="json")
    assert pay(merchant_a).status_code == 201
    test_result = merchant_a.client.post(f"{RULES}/test", {"rule": "block if :amount: > 1"}, format="json").json()
    live_result = live.post(f"{RULES}/test", {"rule": "block if :amount: > 1"}, format="json").json()
    assert (test_result["evaluated"], live_result["evaluated"]) == (1, 1)
    assert test_result["matches"][0]["transaction"] != live_result["matches"][0]["transaction"]
    counts = {e["name"]: e["itemCount"] for e in merchant_a.client.get("/payment/fraud/lists").json()["data"]}
    assert counts["blocked_emails"] == 0
    assert {e["name"]: e["itemCount"] for e in live.get("/payment/fraud/lists").json()["data"]}["blocked_emails"] == 1
