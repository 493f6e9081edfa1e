"""The posting service under real concurrency: threads, each on its own PostgreSQL
connection, committing postings on the same hot accounts at once."""

import random
import threading
from collections import Counter

import pytest
from django.db import OperationalError, connection, transaction

from core.actors import Actor
from core.errors import InsufficientFunds
from ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction, Payout
from ledger.services.movements import AVAILABLE
from ledger.services.payouts import payout_create
from ledger.services.postings import ledger_post
from tests.support.ledger import balance_of, books_problems, hot_account, posting

pytestmark = pytest.mark.django_db(transaction=True)

THREADS, POSTINGS, HOT_ACCOUNTS = 20, 200, 10


def run_threads(count: int, work) -> list[BaseException]:
    """Run work(number) in `count` threads started together; returns the errors raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def body(number: int) -> None:
        try:
            start.wait()
            work(number)
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck (deadlock?)"
    return errors


def test_20_threads_x_200_postings_over_10_hot_accounts(merchant_a):
    merchant = merchant_a.merchant
    expected: list[Counter] = [Counter() for _ in range(THREADS)]

    def work(number: int) -> None:
        rng = random.Random(number)
        for index in range(POSTINGS):
            # Both directions between any two of the hot accounts.
            first, second = rng.sample(range(HOT_ACCOUNTS), 2)
            amount = rng.randint(1, 10_000)
            with transaction.atomic():
                ledger_post(posting=posting(merchant, key=f"hot-{number}-{index}", debit_to=hot_account(first),
                                            credit_to=hot_account(second), amount=amount))
            expected[number][first] += amount  # debit-normal accounts: a debit adds
            expected[number][second] -= amount

    errors = run_threads(THREADS, work)

    # no deadlock, no serialization failure, no refusal
    assert errors == []
    assert LedgerTransaction.objects.filter(merchant=merchant).count() == THREADS * POSTINGS
    assert LedgerEntry.objects.filter(account__merchant=merchant).count() == 2 * THREADS * POSTINGS
    # no lost update: every account holds exactly what its postings moved ...
    total = Counter()
    for moved in expected:
        total.update(moved)  # update() adds negative counts too (Counter + Counter would drop them)
    for number in range(HOT_ACCOUNTS):
        account = LedgerAccount.objects.get(merchant=merchant, code="gateway_clearing", gateway=f"hot{number}")
        assert account.balance == total[number], f"hot{number}"
    # ... every balance equals the replay of its entries (and each entry's running balance
    # its predecessors'), Σ debits = Σ credits per currency
    assert books_problems(merchant) == []
    sums = LedgerEntry.objects.filter(account__merchant=merchant)
    debits = sum(sums.filter(side="debit").values_list("amount", flat=True))
    credits = sum(sums.filter(side="credit").values_list("amount", flat=True))
    assert debits == credits


def test_concurrent_postings_under_one_idempotency_key_post_once(merchant_a):
    merchant = merchant_a.merchant
    created: list[bool] = []

    def work(number: int) -> None:
        with transaction.atomic():
            result = ledger_post(posting=posting(merchant, key="one-key", debit_to=hot_account(1), credit_to=hot_account(2),
                                                 amount=700))
        created.append(result.created)

    assert run_threads(10, work) == []
    assert sorted(created) == [False] * 9 + [True]
    assert LedgerTransaction.objects.filter(idempotency_key="one-key").count() == 1
    assert LedgerAccount.objects.get(merchant=merchant, gateway="hot1").debits_posted == 700


def test_concurrent_payouts_never_take_more_than_is_available(merchant_a):
    merchant = merchant_a.merchant
    with transaction.atomic():
        ledger_post(posting=posting(merchant, key="fund", debit_to=hot_account(0), credit_to=AVAILABLE, amount=1000, shown=1000))
    outcomes: list[str] = []

    def work(number: int) -> None:
        try:
            payout_create(merchant_id=merchant.pk, livemode=False, amount=300, currency="USD", actor=Actor.system("test"))
        except InsufficientFunds:
            outcomes.append("refused")
        except OperationalError as exc:  # not expected: reported by the assertion below
            outcomes.append(f"error: {exc}")
        else:
            outcomes.append("paid out")

    assert run_threads(8, work) == []
    assert Counter(outcomes) == {"paid out": 3, "refused": 5}
    assert Payout.objects.filter(merchant=merchant).count() == 3
    assert balance_of(merchant).available == 100
    assert books_problems(merchant) == []
