"""The one posting service (ledger.services.postings.ledger_post): idempotency keys, the
no-overdraft refusal that writes nothing, overflow and settle-first legs, entries that carry
their account's version and balances."""

import pytest
from django.db import transaction

from core.errors import InsufficientFunds
from ledger.models import AccountCode, LedgerAccount, LedgerEntry, LedgerKind, LedgerTransaction, Phase
from ledger.services.movements import AVAILABLE, PENDING, RECEIVABLE, merchant_credit, merchant_debit
from ledger.services.postings import LedgerConflict, Posting, credit, debit, ledger_post
from tests.support.ledger import books_problems, hot_account, posting

pytestmark = pytest.mark.django_db


def account(merchant, ref) -> LedgerAccount:
    return LedgerAccount.objects.get(merchant=merchant.merchant if hasattr(merchant, "merchant") else merchant,
                                     code=ref.code, gateway=ref.gateway)


def fund(merchant, amount: int, key: str = "fund") -> None:
    """Put `amount` in the merchant's available funds (from a clearing account)."""
    ledger_post(posting=posting(merchant, key=key, debit_to=hot_account(0), credit_to=AVAILABLE, amount=amount, shown=amount))


def test_the_same_idempotency_key_twice_posts_once(merchant_a):
    merchant = merchant_a.merchant
    first = ledger_post(posting=posting(merchant, key="k-1", debit_to=hot_account(1), credit_to=hot_account(2), amount=500))
    again = ledger_post(posting=posting(merchant, key="k-1", debit_to=hot_account(1), credit_to=hot_account(2), amount=500))

    assert first.created and not again.created
    assert again.ledger_transaction.pk == first.ledger_transaction.pk
    assert LedgerTransaction.objects.filter(idempotency_key="k-1").count() == 1
    assert LedgerEntry.objects.filter(ledger_transaction=first.ledger_transaction).count() == 2
    assert account(merchant, hot_account(1)).debits_posted == 500
    assert account(merchant, hot_account(2)).credits_posted == 500
    assert books_problems(merchant) == []


def test_a_key_posted_for_another_movement_is_a_conflict_not_a_replay(merchant_a):
    merchant = merchant_a.merchant
    ledger_post(posting=posting(merchant, key="k-2", debit_to=hot_account(1), credit_to=hot_account(2), amount=500))
    other = Posting(**{**posting(merchant, key="k-2", debit_to=hot_account(1), credit_to=hot_account(2), amount=500).__dict__,
                       "kind": LedgerKind.REFUND})
    with pytest.raises(LedgerConflict):
        ledger_post(posting=other)


@pytest.mark.django_db(transaction=True)
def test_a_posting_that_would_overdraw_is_refused_and_writes_nothing(merchant_a):
    merchant = merchant_a.merchant
    fund(merchant, 1000)
    before_accounts = list(LedgerAccount.objects.order_by("id").values())
    before_transactions = LedgerTransaction.objects.count()
    before_entries = LedgerEntry.objects.count()

    # when 10.01 is taken from 10.00 of available funds
    with pytest.raises(InsufficientFunds) as refused:
        with transaction.atomic():
            ledger_post(posting=posting(merchant, key="too-much", debit_to=AVAILABLE, credit_to=hot_account(3), amount=1001,
                                        shown=-1001))

    # then the refusal says why, and nothing was written: no transaction, no entry, no account change
    assert refused.value.code == "insufficient_funds" and "available balance in USD is 1000" in refused.value.message
    assert LedgerTransaction.objects.count() == before_transactions
    assert not LedgerTransaction.objects.filter(idempotency_key="too-much").exists()
    assert LedgerEntry.objects.count() == before_entries
    assert list(LedgerAccount.objects.order_by("id").values()) == before_accounts
    # and the same amount within the funds goes through
    ledger_post(posting=posting(merchant, key="exact", debit_to=AVAILABLE, credit_to=hot_account(3), amount=1000, shown=-1000))
    assert account(merchant, AVAILABLE).spendable == 0
    assert books_problems(merchant) == []


def test_a_pending_reservation_counts_against_the_no_overdraft_rule(merchant_a):
    merchant = merchant_a.merchant
    fund(merchant, 1000)
    ledger_post(posting=posting(merchant, key="reserve", debit_to=AVAILABLE, credit_to=hot_account(4), amount=700, shown=-700,
                                debit={"phase": Phase.PENDING}, credit={"phase": Phase.PENDING}))
    with pytest.raises(InsufficientFunds), transaction.atomic():
        ledger_post(posting=posting(merchant, key="second", debit_to=AVAILABLE, credit_to=hot_account(4), amount=301, shown=-301))
    available = account(merchant, AVAILABLE)
    assert (available.credits_posted, available.debits_posted, available.debits_pending) == (1000, 0, 700)
    assert available.spendable == 300


def test_a_merchant_debit_past_the_available_funds_becomes_a_receivable_and_new_funds_pay_it_first(merchant_a):
    merchant = merchant_a.merchant
    fund(merchant, 1000)
    # a refund-like debit of 25.00 with 10.00 available: 10.00 from available, 15.00 owed
    ledger_post(posting=posting(merchant, key="debit", debit_to=AVAILABLE, credit_to=hot_account(5), amount=2500, shown=-2500,
                                legs=[merchant_debit(2500), credit(hot_account(5), 2500)]))
    assert account(merchant, AVAILABLE).spendable == 0
    assert account(merchant, RECEIVABLE).balance == 1500
    # 20.00 of new funds: 15.00 settle the receivable, 5.00 are available
    ledger_post(posting=posting(merchant, key="credit", debit_to=hot_account(5), credit_to=AVAILABLE, amount=2000, shown=2000,
                                legs=[debit(hot_account(5), 2000), merchant_credit(2000)]))
    assert account(merchant, RECEIVABLE).balance == 0
    assert account(merchant, AVAILABLE).spendable == 500
    assert books_problems(merchant) == []


def test_entries_carry_the_account_version_and_balances_after_them(merchant_a):
    merchant = merchant_a.merchant
    for number, amount in enumerate([300, 200, 100], start=1):
        ledger_post(posting=posting(merchant, key=f"e{number}", debit_to=hot_account(6), credit_to=PENDING, amount=amount,
                                    shown=amount))
    pending = account(merchant, PENDING)
    entries = list(pending.entries.order_by("account_version").values_list("account_version", "balance_after"))
    assert entries == [(1, 300), (2, 500), (3, 600)]
    assert pending.version == 3 and pending.balance == 600
    assert account(merchant, hot_account(6)).balance == 600  # debit-normal


def test_a_posting_needs_two_legs_of_positive_amounts(merchant_a):
    merchant = merchant_a.merchant
    lone = Posting(**{**posting(merchant, key="lone", debit_to=hot_account(1), credit_to=hot_account(2), amount=5).__dict__,
                      "legs": [debit(hot_account(1), 5)]})
    with pytest.raises(ValueError):
        ledger_post(posting=lone)
    negative = Posting(**{**lone.__dict__, "legs": [debit(hot_account(1), -5), credit(hot_account(2), -5)]})
    with pytest.raises(ValueError):
        ledger_post(posting=negative)
    assert not LedgerTransaction.objects.filter(idempotency_key="lone").exists()


def test_accounts_are_created_once_with_their_code_s_rules(merchant_a):
    merchant = merchant_a.merchant
    fund(merchant, 100)
    available = account(merchant, AVAILABLE)
    assert (available.normal_side, available.debits_must_not_exceed_credits) == ("credit", True)
    clearing = account(merchant, hot_account(0))
    assert (clearing.code, clearing.normal_side, clearing.debits_must_not_exceed_credits) == (AccountCode.GATEWAY_CLEARING, "debit", False)
    fund(merchant, 100, key="fund-2")
    assert LedgerAccount.objects.filter(merchant=merchant, code=AccountCode.MERCHANT_AVAILABLE).count() == 1
