"""The ledger's own proof that its books balance, from its tables alone (verify_ledger adds
the check that every payment, refund and chargeback has its postings: backoffice.ledger).

- Σ debits = Σ credits per currency and phase over every entry;
- every ledger transaction balances per phase and has two entries or more;
- every account's stored totals and version equal the replay of its entries, and each
  entry's balances after it equal the running sum of the entries before it;
- no account breaks its rule (no overdraft, no negative receivable);
- every ledger transaction's `net` is what its entries move on the merchant's funds.

The database already refuses each of these at write time (CHECK constraints, triggers);
the verifier finds what got past them (a trigger dropped, rows edited with triggers off).
Set-based SQL: a constant number of queries, whatever the size of the ledger.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection

from ledger.models import MERCHANT_FUNDS_CODES

# At most this many problems of each kind are listed (the counts are complete).
LISTED = 20


@dataclass
class BooksCheck:
    # Per currency: Σ over phases of |Σ debits - Σ credits| (0 when the books balance).
    imbalance: dict[str, int] = field(default_factory=dict)
    # Per currency: Σ debits and Σ credits of posted entries (for the report).
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    accounts: int = 0
    entries: int = 0
    transactions: int = 0


def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _merchant_filter(alias: str, merchant_id: int | None) -> tuple[str, list]:
    return (f" AND {alias}.merchant_id = %s", [merchant_id]) if merchant_id is not None else ("", [])


def ledger_verify_books(*, merchant_id: int | None = None) -> BooksCheck:
    check = BooksCheck()
    where, params = _merchant_filter("a", merchant_id)
    _sums(check, where, params)
    _unbalanced_transactions(check, merchant_id)
    _replay(check, where, params)
    _running_balances(check, where, params)
    _net_effects(check, merchant_id)
    return check


def _sums(check: BooksCheck, where: str, params: list) -> None:
    rows = _rows(
        "SELECT e.currency, e.phase, SUM(CASE WHEN e.side = 'debit' THEN e.amount ELSE 0 END), "
        "SUM(CASE WHEN e.side = 'credit' THEN e.amount ELSE 0 END), COUNT(*) "
        "FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id WHERE 1 = 1" + where +
        " GROUP BY e.currency, e.phase ORDER BY e.currency, e.phase", params,
    )
    imbalance: dict[str, int] = defaultdict(int)
    for currency, phase, debits, credits, count in rows:
        debits, credits = int(debits or 0), int(credits or 0)
        imbalance[currency] += abs(debits - credits)
        check.entries += count
        if phase == "posted":
            check.totals[currency] = {"debits": debits, "credits": credits}
        if debits != credits:
            check.problems.append(f"{currency} {phase} entries do not balance: debits {debits} != credits {credits}")
    check.imbalance = dict(imbalance)
    check.accounts = _rows("SELECT COUNT(*) FROM ledger_account a WHERE 1 = 1" + where, params)[0][0]


def _unbalanced_transactions(check: BooksCheck, merchant_id: int | None) -> None:
    where, params = _merchant_filter("t", merchant_id)
    check.transactions = _rows("SELECT COUNT(*) FROM ledger_transaction t WHERE 1 = 1" + where, params)[0][0]
    rows = _rows(
        "SELECT t.public_id, e.phase, SUM(CASE WHEN e.side = 'debit' THEN e.amount ELSE -e.amount END) "
        "FROM ledger_transaction t JOIN ledger_entry e ON e.ledger_transaction_id = t.id WHERE 1 = 1" + where +
        " GROUP BY t.public_id, e.phase HAVING SUM(CASE WHEN e.side = 'debit' THEN e.amount ELSE -e.amount END) <> 0"
        " ORDER BY t.public_id", params,
    )
    for public_id, phase, difference in rows[:LISTED]:
        check.problems.append(f"ledger transaction {public_id} does not balance in its {phase} entries (off by {difference})")
    if len(rows) > LISTED:
        check.problems.append(f"... and {len(rows) - LISTED} more unbalanced ledger transactions")
    thin = _rows(
        "SELECT t.public_id FROM ledger_transaction t LEFT JOIN ledger_entry e ON e.ledger_transaction_id = t.id "
        "WHERE 1 = 1" + where + " GROUP BY t.public_id HAVING COUNT(e.id) < 2 ORDER BY t.public_id", params,
    )
    check.problems += [f"ledger transaction {public_id} has fewer than two entries" for (public_id,) in thin[:LISTED]]


def _replay(check: BooksCheck, where: str, params: list) -> None:
    signed_pending = "CASE WHEN e.phase = 'pending' THEN e.amount WHEN e.phase = 'released' THEN -e.amount ELSE 0 END"
    rows = _rows(
        "SELECT a.id, a.code, a.gateway, a.currency, a.debits_posted, a.credits_posted, a.debits_pending, "
        "a.credits_pending, a.version, a.debits_must_not_exceed_credits, a.credits_must_not_exceed_debits, "
        "COALESCE(SUM(CASE WHEN e.side = 'debit' AND e.phase = 'posted' THEN e.amount END), 0), "
        "COALESCE(SUM(CASE WHEN e.side = 'credit' AND e.phase = 'posted' THEN e.amount END), 0), "
        f"COALESCE(SUM(CASE WHEN e.side = 'debit' THEN {signed_pending} END), 0), "
        f"COALESCE(SUM(CASE WHEN e.side = 'credit' THEN {signed_pending} END), 0), "
        "COUNT(e.id), COALESCE(MAX(e.account_version), 0) "
        "FROM ledger_account a LEFT JOIN ledger_entry e ON e.account_id = a.id WHERE 1 = 1" + where +
        " GROUP BY a.id, a.code, a.gateway, a.currency, a.debits_posted, a.credits_posted, a.debits_pending,"
        " a.credits_pending, a.version, a.debits_must_not_exceed_credits, a.credits_must_not_exceed_debits ORDER BY a.id",
        params,
    )
    listed = 0
    for (account_id, code, gateway, currency, dp, cp, dpe, cpe, version, no_overdraft, no_negative,
         rdp, rcp, rdpe, rcpe, count, max_version) in rows:
        name = f"account {account_id} ({code}{':' + gateway if gateway else ''} {currency})"
        found = []
        if (dp, cp, dpe, cpe) != (rdp, rcp, rdpe, rcpe):
            found.append(f"{name}: stored totals {(dp, cp, dpe, cpe)} != replay of its entries {(rdp, rcp, rdpe, rcpe)} "
                         "(debits posted, credits posted, debits pending, credits pending)")
        if not version == count == max_version:
            found.append(f"{name}: version {version}, but {count} entries numbered up to {max_version}")
        if no_overdraft and dp + dpe > cp:
            found.append(f"{name}: overdrawn (debits {dp} + pending {dpe} > credits {cp})")
        if no_negative and cp + cpe > dp:
            found.append(f"{name}: negative (credits {cp} + pending {cpe} > debits {dp})")
        for message in found:
            listed += 1
            if listed <= LISTED:
                check.problems.append(message)
    if listed > LISTED:
        check.problems.append(f"... and {listed - LISTED} more account problems")


def _running_balances(check: BooksCheck, where: str, params: list) -> None:
    toward = "CASE WHEN e.side = a.normal_side THEN e.amount ELSE -e.amount END"
    rows = _rows(
        "SELECT account_id, account_version, balance_after, running_posted, pending_after, running_pending FROM ("
        " SELECT e.account_id, e.account_version, e.balance_after, e.pending_after,"
        f" SUM(CASE WHEN e.phase = 'posted' THEN {toward} ELSE 0 END)"
        "  OVER (PARTITION BY e.account_id ORDER BY e.account_version) AS running_posted,"
        f" SUM(CASE WHEN e.phase = 'pending' THEN {toward} WHEN e.phase = 'released' THEN -({toward}) ELSE 0 END)"
        "  OVER (PARTITION BY e.account_id ORDER BY e.account_version) AS running_pending"
        " FROM ledger_entry e JOIN ledger_account a ON a.id = e.account_id WHERE 1 = 1" + where +
        ") replay WHERE balance_after <> running_posted OR pending_after <> running_pending"
        " ORDER BY account_id, account_version", params,
    )
    for account_id, version, balance_after, running, pending_after, running_pending in rows[:LISTED]:
        check.problems.append(
            f"account {account_id}, entry {version}: recorded balance after {balance_after} (pending {pending_after}) "
            f"but its entries add up to {running} (pending {running_pending})"
        )
    if len(rows) > LISTED:
        check.problems.append(f"... and {len(rows) - LISTED} more entries whose recorded balance is wrong")


def _net_effects(check: BooksCheck, merchant_id: int | None) -> None:
    where, params = _merchant_filter("t", merchant_id)
    funds = ", ".join(f"'{code}'" for code in MERCHANT_FUNDS_CODES)
    effect = (f"COALESCE(SUM(CASE WHEN a.code IN ({funds}) THEN (CASE WHEN e.phase = 'released' THEN -1 ELSE 1 END)"
              " * (CASE WHEN e.side = 'credit' THEN e.amount ELSE -e.amount END) ELSE 0 END), 0)")
    rows = _rows(
        f"SELECT t.public_id, t.net, {effect} FROM ledger_transaction t"
        " JOIN ledger_entry e ON e.ledger_transaction_id = t.id JOIN ledger_account a ON a.id = e.account_id"
        " WHERE 1 = 1" + where + f" GROUP BY t.public_id, t.net HAVING t.net <> {effect} ORDER BY t.public_id", params,
    )
    for public_id, net, moved in rows[:LISTED]:
        check.problems.append(f"ledger transaction {public_id} shows the merchant a net of {net} but moves {moved} on its funds")
    if len(rows) > LISTED:
        check.problems.append(f"... and {len(rows) - LISTED} more ledger transactions whose net is wrong")
