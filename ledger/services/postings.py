"""The one service that changes ledger balances: `ledger_post`.

Every money movement describes itself as a `Posting` (legs on account references) and calls
`ledger_post` inside the database transaction of the state change that causes it, so the
movement and its ledger transaction commit together or not at all. `ledger_post`:

1. claims the posting's idempotency key (INSERT … ON CONFLICT DO NOTHING): a key already
   posted returns that ledger transaction and moves nothing, whoever posted it and however
   many callers race;
2. locks every account the posting touches with one `SELECT … ORDER BY id FOR UPDATE`
   (accounts missing are created first), so two postings always lock in the same order
   and never deadlock each other; balances are then read under the lock, never
   read-then-written;
3. resolves the legs against the locked balances (a debit past what an account may give
   overflows to the account named for it; a credit settles the named debt first), checks
   every account's rule, and refuses the whole posting with InsufficientFunds when one
   would break (nothing is committed: the caller's transaction is doomed);
4. inserts the entries (each with the account's version and balances after it) and
   updates every account with one UPDATE.

Lock order everywhere: the business rows first (transaction, refund, chargeback, payout),
then ledger accounts by id, inside ledger_post only. The database checks the result again:
CHECK constraints on the accounts' rules, and at COMMIT the deferred trigger that every
ledger transaction balances (ledger migration 0002).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection, transaction

from core.errors import InsufficientFunds
from core.lookups import LockedRowsById, row_insert_sql
from ledger.models import (
    ACCOUNT_RULES,
    AccountCode,
    BalanceType,
    LedgerAccount,
    LedgerEntry,
    LedgerKind,
    LedgerTransaction,
    Phase,
    Side,
    SourceType,
)


class LedgerConflict(Exception):
    """An idempotency key already posted for another movement: a programming error (two
    rules deriving the same key), never a retry."""


@dataclass(frozen=True)
class AccountRef:
    """An account of the posting's merchant, mode and currency."""

    code: AccountCode
    gateway: str = ""

    def __str__(self) -> str:
        return f"{self.code}:{self.gateway}" if self.gateway else str(self.code)


@dataclass(frozen=True)
class Leg:
    account: AccountRef
    side: Side
    amount: int
    phase: Phase = Phase.POSTED
    # A debit beyond what `account` may give without breaking its rule goes to this
    # account instead (a refund past the available funds becomes a receivable).
    overflow_to: AccountRef | None = None
    # A credit goes to this debit-normal account first, up to its balance (new funds pay
    # the merchant's receivable before they are available).
    settles_first: AccountRef | None = None


def debit(account: AccountRef, amount: int, **kwargs) -> Leg:
    return Leg(account=account, side=Side.DEBIT, amount=amount, **kwargs)


def credit(account: AccountRef, amount: int, **kwargs) -> Leg:
    return Leg(account=account, side=Side.CREDIT, amount=amount, **kwargs)


@dataclass(frozen=True)
class Posting:
    merchant_id: int
    livemode: bool
    currency: str
    kind: LedgerKind
    idempotency_key: str
    source_type: SourceType
    source_id: str
    legs: Sequence[Leg]
    effective_at: dt.datetime
    available_on: dt.datetime | None = None  # default: effective_at
    # What the merchant sees: its type (None: internal), gross amount and fee (net = amount - fee).
    balance_type: BalanceType | None = None
    amount: int = 0
    fee: int = 0
    related_transaction_id: int | None = None
    payout_id: int | None = None
    description: str = ""


@dataclass(frozen=True)
class PostingResult:
    ledger_transaction: LedgerTransaction
    created: bool  # False: the key was posted before, nothing moved now


@dataclass
class _Totals:
    """An account's totals while a posting is resolved (the locked row's, then updated)."""

    account: LedgerAccount
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int
    version: int
    touched: bool = False

    @classmethod
    def of(cls, account: LedgerAccount) -> _Totals:
        return cls(account, account.debits_posted, account.credits_posted, account.debits_pending,
                   account.credits_pending, account.version)

    @property
    def credit_normal(self) -> bool:
        return self.account.normal_side == Side.CREDIT

    def spendable(self) -> int:
        """What a debit (credit-normal) or a credit (debit-normal) may take within the rule."""
        if self.credit_normal:
            return self.credits_posted - self.debits_posted - self.debits_pending
        return self.debits_posted - self.credits_posted - self.credits_pending

    def apply(self, side: str, phase: str, amount: int) -> None:
        sign = -1 if phase == Phase.RELEASED else 1
        name = f"{'debits' if side == Side.DEBIT else 'credits'}_{'posted' if phase == Phase.POSTED else 'pending'}"
        setattr(self, name, getattr(self, name) + sign * amount)
        self.version += 1
        self.touched = True

    def balances(self) -> tuple[int, int]:
        """(posted, pending) on the normal side."""
        posted = self.credits_posted - self.debits_posted
        pending = self.credits_pending - self.debits_pending
        return (posted, pending) if self.credit_normal else (-posted, -pending)

    def broken_rule(self) -> str | None:
        account = self.account
        if min(self.debits_pending, self.credits_pending) < 0:
            return "releases more than is pending"
        if account.debits_must_not_exceed_credits and self.debits_posted + self.debits_pending > self.credits_posted:
            return "debits would exceed credits"
        if account.credits_must_not_exceed_debits and self.credits_posted + self.credits_pending > self.debits_posted:
            return "credits would exceed debits"
        return None


def ledger_post(*, posting: Posting) -> PostingResult:
    """Post one money movement (see the module docstring). Runs inside the caller's database
    transaction; a refusal (InsufficientFunds) dooms that transaction, so nothing of the
    movement is committed."""
    legs = [leg for leg in posting.legs if leg.amount]
    if any(leg.amount < 0 for leg in legs) or len(legs) < 2:
        raise ValueError(f"a posting needs two or more legs of positive amounts: {posting.kind} {posting.idempotency_key}")
    with transaction.atomic(savepoint=False):
        return _post(posting, legs)


def _post(posting: Posting, legs: list[Leg]) -> PostingResult:
    ltx = _ledger_transaction(posting)
    if not _claim(ltx):
        existing = LedgerTransaction.objects.get(idempotency_key=posting.idempotency_key)
        if existing.kind != posting.kind or existing.source_id != posting.source_id:
            raise LedgerConflict(f"idempotency key {posting.idempotency_key!r} was posted for {existing.kind} {existing.source_id}")
        return PostingResult(ledger_transaction=existing, created=False)

    totals = _lock_accounts(posting, legs)
    entries = _resolve(legs, totals)
    for ref, state in totals.items():
        broken = state.broken_rule() if state.touched else None
        if broken:
            raise InsufficientFunds(_refusal_message(posting, ref, state, broken), param="amount")
    for entry in entries:
        entry.ledger_transaction = ltx
    LedgerEntry.objects.bulk_create(entries)
    _update_accounts([state for state in totals.values() if state.touched])
    return PostingResult(ledger_transaction=ltx, created=True)


def _ledger_transaction(posting: Posting) -> LedgerTransaction:
    return LedgerTransaction(
        merchant_id=posting.merchant_id, livemode=posting.livemode, currency=posting.currency, kind=posting.kind,
        idempotency_key=posting.idempotency_key, balance_type=posting.balance_type,
        amount=posting.amount if posting.balance_type else 0, fee=posting.fee if posting.balance_type else 0,
        net=(posting.amount - posting.fee) if posting.balance_type else 0,
        source_type=posting.source_type, source_id=posting.source_id,
        related_transaction_id=posting.related_transaction_id, payout_id=posting.payout_id,
        description=posting.description[:500], effective_at=posting.effective_at,
        available_on=posting.available_on or posting.effective_at,
    )


def _claim(ltx: LedgerTransaction) -> bool:
    """INSERT the ledger transaction unless its idempotency key exists (then False). One
    statement: a concurrent insert of the same key waits for the first to commit or roll
    back, then inserts nothing (or claims the key itself)."""
    insert, values = row_insert_sql(ltx, connection=connection)
    quote = connection.ops.quote_name
    sql = f"{insert} ON CONFLICT ({quote('idempotency_key')}) DO NOTHING RETURNING {quote('id')}"
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return False
    ltx.pk = row[0]
    ltx._state.adding = False
    return True


TOTALS_COLUMNS = ("debits_posted", "credits_posted", "debits_pending", "credits_pending", "version")
# Every touched account's new totals in one UPDATE, built once (the ORM's CASE per column
# cost several times the statement itself on every captured payment).
_UPDATE_ACCOUNTS_SQL = (
    f"UPDATE {LedgerAccount._meta.db_table} AS a SET "
    + ", ".join(f"{c} = v.{c}" for c in TOTALS_COLUMNS)
    + " FROM (SELECT * FROM unnest(%s::bigint[], " + ", ".join("%s::bigint[]" for _ in TOTALS_COLUMNS)
    + ") AS u(id, " + ", ".join(TOTALS_COLUMNS) + ")) AS v WHERE a.id = v.id"
)
ACCOUNTS_LOCKED = LockedRowsById(LedgerAccount)


# Account ids by (merchant, mode, currency, code, gateway), per process: accounts are never
# deleted, so a known id saves a look-up. Only committed accounts are remembered (on commit):
# an id another thread created but has not committed yet would be invisible here, and the
# fast path would then lock some accounts before creating others. A stale entry (a test
# database flushed) finds fewer rows and takes the slow path.
_ACCOUNT_IDS: dict[tuple, int] = {}
_ACCOUNT_IDS_MAX = 50_000


def _lock_accounts(posting: Posting, legs: list[Leg]) -> dict[AccountRef, _Totals]:
    """Lock every account of the posting, in id order. Missing accounts are created first,
    before any row lock is taken and in a fixed order, so that creators never deadlock."""
    refs = {leg.account for leg in legs}
    refs |= {leg.overflow_to for leg in legs if leg.overflow_to} | {leg.settles_first for leg in legs if leg.settles_first}
    scope = {"merchant_id": posting.merchant_id, "livemode": posting.livemode, "currency": posting.currency}
    keys = {ref: (posting.merchant_id, posting.livemode, posting.currency, str(ref.code), ref.gateway) for ref in refs}
    known = {ref: _ACCOUNT_IDS.get(key) for ref, key in keys.items()}
    if all(known.values()):
        by_id = {row.pk: row for row in ACCOUNTS_LOCKED.get(known.values())}
        locked = {ref: by_id[pk] for ref, pk in known.items() if pk in by_id and _is(by_id[pk], keys[ref])}
        if len(locked) == len(refs):
            return {ref: _Totals.of(account) for ref, account in locked.items()}
        for ref in refs:
            _ACCOUNT_IDS.pop(keys[ref], None)
    existing = set(LedgerAccount.objects.filter(
        **scope, code__in={str(ref.code) for ref in refs}, gateway__in={ref.gateway for ref in refs},
    ).values_list("code", "gateway"))
    missing = sorted((ref for ref in refs if (str(ref.code), ref.gateway) not in existing), key=lambda r: (r.code, r.gateway))
    if missing:
        # A concurrent creator's row is kept (ON CONFLICT DO NOTHING): both lock that row below.
        LedgerAccount.objects.bulk_create([_new_account(scope, ref) for ref in missing], ignore_conflicts=True)
    locked = _select_for_update(scope, refs)
    found = {keys[ref]: account.pk for ref, account in locked.items()}
    transaction.on_commit(lambda: _remember_accounts(found))
    return {ref: _Totals.of(account) for ref, account in locked.items()}


def _remember_accounts(found: dict[tuple, int]) -> None:
    if len(_ACCOUNT_IDS) > _ACCOUNT_IDS_MAX:
        _ACCOUNT_IDS.clear()
    _ACCOUNT_IDS.update(found)


def _is(account: LedgerAccount, key: tuple) -> bool:
    return (account.merchant_id, account.livemode, account.currency, account.code, account.gateway) == key


def _select_for_update(scope: dict, refs: set[AccountRef]) -> dict[AccountRef, LedgerAccount]:
    # Only the wanted rows match: a gateway is set exactly on gateway_clearing accounts.
    wanted = {(str(ref.code), ref.gateway): ref for ref in refs}
    rows = LedgerAccount.objects.select_for_update().filter(
        **scope, code__in={code for code, _gateway in wanted}, gateway__in={gateway for _code, gateway in wanted},
    ).order_by("id")
    return {wanted[(a.code, a.gateway)]: a for a in rows if (a.code, a.gateway) in wanted}


def _new_account(scope: dict, ref: AccountRef) -> LedgerAccount:
    normal_side, no_overdraft, no_negative = ACCOUNT_RULES[ref.code]
    return LedgerAccount(**scope, code=ref.code, gateway=ref.gateway, normal_side=normal_side,
                         debits_must_not_exceed_credits=no_overdraft, credits_must_not_exceed_debits=no_negative)


def _resolve(legs: list[Leg], totals: dict[AccountRef, _Totals]) -> list[LedgerEntry]:
    """The entries of the legs, in order, against the running balances."""
    entries: list[LedgerEntry] = []

    def add(ref: AccountRef, side: str, phase: str, amount: int) -> None:
        if amount <= 0:
            return
        state = totals[ref]
        state.apply(side, phase, amount)
        posted, pending = state.balances()
        entries.append(LedgerEntry(
            account_id=state.account.pk, currency=state.account.currency, side=side, phase=phase, amount=amount,
            account_version=state.version, balance_after=posted, pending_after=pending,
        ))

    for leg in legs:
        if leg.side == Side.DEBIT and leg.overflow_to is not None:
            covered = min(leg.amount, max(0, totals[leg.account].spendable()))
            add(leg.account, leg.side, leg.phase, covered)
            add(leg.overflow_to, leg.side, leg.phase, leg.amount - covered)
        elif leg.side == Side.CREDIT and leg.settles_first is not None:
            settled = min(leg.amount, max(0, totals[leg.settles_first].spendable()))
            add(leg.settles_first, leg.side, leg.phase, settled)
            add(leg.account, leg.side, leg.phase, leg.amount - settled)
        else:
            add(leg.account, leg.side, leg.phase, leg.amount)
    return entries



def _update_accounts(states: list[_Totals]) -> None:
    params = [[s.account.pk for s in states]] + [[getattr(s, c) for s in states] for c in TOTALS_COLUMNS]
    with connection.cursor() as cursor:
        cursor.execute(_UPDATE_ACCOUNTS_SQL, params)
        if cursor.rowcount != len(states):
            raise RuntimeError(f"ledger accounts updated: {cursor.rowcount} of {len(states)}")


def _refusal_message(posting: Posting, ref: AccountRef, state: _Totals, broken: str) -> str:
    if ref.code == AccountCode.MERCHANT_AVAILABLE:
        before = state.account.credits_posted - state.account.debits_posted - state.account.debits_pending
        return (f"Insufficient funds: the available balance in {posting.currency} is {max(0, before)}, "
                f"less than this {posting.kind} needs.")
    return f"Refused: on the {ref} account in {posting.currency}, {broken}."
