"""Verifying the audit log: every entry's MAC, the hash chain of the seals and, given an
anchor kept outside the database, the chain against it.

Reported as problems (verify_audit_log exits 1):
- an entry whose MAC does not match its content (altered, sealed yet or not), made with a
  key that is not configured, or without a MAC after signed entries began (inserted, or
  its MAC stripped); two entries with one nonce (an entry copied);
- a seal whose entries do not match it (altered, removed or inserted), that does not follow
  the previous seal, whose key is not configured, that has no key after keyed seals began,
  or that covers signed entries without a key (the chain recomputed without the key);
- an anchor whose signature does not match, whose seal is gone or differs from it, or with
  the chain broken at or before it (truncated, rewritten).
Entries and seals from before keys existed ("legacy, unkeyed") are verified the old way
(the seals' SHA-256 chain) and counted, not reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count

from audit.actions import AuditAction
from audit.chain import (
    ANCHOR_FIELDS,
    DEV_KEY_ID,
    GENESIS,
    UnknownChainKey,
    anchor_signature,
    entry_digest,
    entry_mac_matches,
    seal_hash,
)
from audit.models import AuditEntry, AuditSeal
from audit.services import audit_record
from core.actors import Actor

ANCHOR_LOGGER = "flowpay.audit.anchor"


@dataclass
class VerificationReport:
    seals_checked: int = 0
    entries_verified: int = 0  # in sealed ranges
    entries_unsealed: int = 0
    entries_signed: int = 0  # whose MAC matched
    legacy_entries: int = 0
    legacy_seals: int = 0
    development_key: int = 0  # entries and seals made with the public development key
    anchor: dict | None = None  # the anchor checked and whether it held
    problems: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _problem(where: str, problem: str, *, seal: int | None = None, entry: int | None = None,
             last_entry_id: int | None = None) -> dict:
    return {"where": where, "seal": seal, "entry": entry, "lastEntryId": last_entry_id, "problem": problem}


@dataclass
class _Walk:
    report: VerificationReport
    first_signed_entry: int | None = None
    keyed_seal_seen: bool = False


def _check_entry(entry: AuditEntry, walk: _Walk, problems: list[dict]) -> None:
    report = walk.report
    where = f"entry {entry.pk}"
    if entry.key_id is None:
        if walk.first_signed_entry is None:
            report.legacy_entries += 1
        else:
            problems.append(_problem(where, f"inserted, or its MAC stripped: no MAC although entry "
                                            f"{walk.first_signed_entry} before it is signed", entry=entry.pk))
        return
    if walk.first_signed_entry is None:
        walk.first_signed_entry = entry.pk
    if entry.key_id == DEV_KEY_ID:
        report.development_key += 1
    try:
        matches = entry_mac_matches(entry)
    except UnknownChainKey:
        problems.append(_problem(where, f"signed with key {entry.key_id!r}, which is not configured "
                                        "(retired keys stay in FLOWPAY_AUDIT_CHAIN_KEYS)", entry=entry.pk))
        return
    if matches:
        report.entries_signed += 1
    else:
        problems.append(_problem(where, "altered: its MAC does not match its content", entry=entry.pk))


def _seal_key_problem(seal: AuditSeal, walk: _Walk, covers_signed: bool) -> str | None:
    if seal.key_id is not None:
        walk.keyed_seal_seen = True
        if seal.key_id == DEV_KEY_ID:
            walk.report.development_key += 1
        return None
    if walk.keyed_seal_seen:
        return "an unkeyed seal after keyed seals: downgraded or forged"
    if covers_signed:
        return "an unkeyed seal covers signed entries: the chain was recomputed without the key"
    walk.report.legacy_seals += 1
    return None


def _check_seal(seal: AuditSeal, *, after_id: int, previous_hash: str, walk: _Walk) -> None:
    digests, entry_problems, covers_signed = [], [], False
    for entry in AuditEntry.objects.filter(pk__gt=after_id, pk__lte=seal.last_entry_id).order_by("pk").iterator(chunk_size=2000):
        digests.append(entry_digest(entry))
        covers_signed = covers_signed or entry.key_id is not None
        _check_entry(entry, walk, entry_problems)
    ids = f"ids {after_id + 1}..{seal.last_entry_id}"
    where, found = f"seal {seal.pk}", []
    if seal.previous_hash != previous_hash:
        found.append("chain broken: the seal does not follow the previous one (a seal was edited or removed)")
    key_problem = _seal_key_problem(seal, walk, covers_signed)
    if key_problem:
        found.append(key_problem)
    try:
        expected = seal_hash(previous_hash=seal.previous_hash, after_id=after_id, last_id=seal.last_entry_id,
                             digests=digests, key_id=seal.key_id)
    except UnknownChainKey:
        expected = None
        found.append(f"made with key {seal.key_id!r}, which is not configured (retired keys stay in FLOWPAY_AUDIT_CHAIN_KEYS)")
    if len(digests) != seal.entry_count:
        kind = "removed" if len(digests) < seal.entry_count else "inserted"
        found.append(f"entries {kind}: {seal.entry_count} sealed, {len(digests)} present in {ids}")
    elif expected is not None and expected != seal.hash:
        found.append(f"entries altered in {ids}" if entry_problems else
                     f"seal altered: its hash does not match the entries in {ids}")
    walk.report.problems.extend(_problem(where, p, seal=seal.pk, last_entry_id=seal.last_entry_id) for p in found)
    walk.report.problems.extend(entry_problems)
    walk.report.entries_verified += len(digests)


def _duplicated_nonces(report: VerificationReport) -> None:
    repeated = (AuditEntry.objects.filter(nonce__isnull=False).values("nonce").annotate(n=Count("id"))
                .filter(n__gt=1).values_list("nonce", flat=True))
    for nonce in repeated:
        ids = list(AuditEntry.objects.filter(nonce=nonce).order_by("pk").values_list("pk", flat=True))
        report.problems.append(_problem(f"entry {ids[-1]}", f"copied: entries {', '.join(map(str, ids))} share one nonce",
                                        entry=ids[-1]))


def audit_verify(*, anchor: dict | None = None) -> VerificationReport:
    """Check every entry's MAC and recompute the chain from the first seal; with an anchor,
    check that the chain still holds its seal unchanged and verifies up to it."""
    report = VerificationReport()
    walk = _Walk(report)
    previous_hash, after_id = GENESIS, 0
    anchored: AuditSeal | None = None
    problems_up_to_anchor = 0
    for seal in AuditSeal.objects.order_by("last_entry_id").iterator():
        report.seals_checked += 1
        _check_seal(seal, after_id=after_id, previous_hash=previous_hash, walk=walk)
        if anchor is not None and seal.pk == anchor.get("sealId"):
            anchored, problems_up_to_anchor = seal, len(report.problems)
        previous_hash, after_id = seal.hash, seal.last_entry_id
    for entry in AuditEntry.objects.filter(pk__gt=after_id).order_by("pk").iterator(chunk_size=2000):
        report.entries_unsealed += 1
        _check_entry(entry, walk, report.problems)
    _duplicated_nonces(report)
    if anchor is not None:
        _check_anchor(report, anchor, anchored, problems_up_to_anchor, last_sealed_id=after_id)
    return report


def audit_verify_recorded(*, actor: Actor, anchor: dict | None = None) -> VerificationReport:
    """audit_verify, then its outcome appended to the log (`audit_log.verify`, result success
    or failure): the back office shows the last verification, who ran it and what it found,
    from the log itself. The entry is written after the walk, so it never counts itself."""
    report = audit_verify(anchor=anchor)
    with transaction.atomic():
        audit_record(
            actor=actor, action=AuditAction.AUDIT_LOG_VERIFY,
            result=AuditEntry.Result.SUCCESS if report.ok else AuditEntry.Result.FAILURE,
            details={
                "seals_checked": report.seals_checked, "entries_verified": report.entries_verified,
                "entries_unsealed": report.entries_unsealed, "problems": len(report.problems),
                "first_problems": [f"{p['where']}: {p['problem']}" for p in report.problems[:5]],
                "anchor_holds": None if report.anchor is None else report.anchor["holds"],
            },
        )
    return report


def _check_anchor(report: VerificationReport, anchor: dict, seal: AuditSeal | None, problems_before: int,
                  *, last_sealed_id: int) -> None:
    found = _anchor_problems(anchor, seal, problems_before, last_sealed_id)
    report.anchor = {**{name: anchor[name] for name in ANCHOR_FIELDS}, "holds": not found}
    report.problems.extend(_problem("anchor", p, seal=anchor["sealId"], last_entry_id=anchor["lastEntryId"]) for p in found)


def _anchor_problems(anchor: dict, seal: AuditSeal | None, problems_before: int, last_sealed_id: int) -> list[str]:
    try:
        signed = anchor_signature(anchor) == anchor["signature"]
    except UnknownChainKey:
        return [f"the anchor is signed with key {anchor['keyId']!r}, which is not configured"]
    if not signed:
        return ["the anchor's signature does not match: the anchor itself was forged or altered"]
    label = f"anchored seal {anchor['sealId']} (entries up to {anchor['lastEntryId']})"
    if seal is None:
        if last_sealed_id < anchor["lastEntryId"]:
            return [f"the {label} is missing and the chain now ends at entry {last_sealed_id}: its tail was cut off"]
        return [f"the {label} is missing: the chain was rewritten"]
    differs = [name for name, value in (("lastEntryId", seal.last_entry_id), ("entryCount", seal.entry_count),
                                         ("hash", seal.hash), ("keyId", seal.key_id)) if anchor[name] != value]
    if differs:
        return [f"the {label} differs from its anchor ({', '.join(differs)}): the chain was rewritten"]
    if problems_before:
        return [f"the chain does not verify up to the {label}: it changed before the anchor"]
    return []


def parse_anchor(text: str) -> dict:
    """An anchor from its log line (the JSON line of logger flowpay.audit.anchor) or from
    the anchor object alone. Raises ValueError when it is neither."""
    try:
        document = json.loads(text)
    except ValueError:
        raise ValueError("not a JSON document") from None
    if isinstance(document, dict) and isinstance(document.get("anchor"), dict):
        document = document["anchor"]
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    expected = {"sealId": int, "lastEntryId": int, "entryCount": int, "hash": str, "keyId": str, "signature": str}
    wrong = [name for name, kind in expected.items()
             if not isinstance(document.get(name), kind) or isinstance(document.get(name), bool)]
    if wrong:
        raise ValueError(f"not an audit chain anchor: {', '.join(wrong)} missing or of the wrong type")
    return {name: document[name] for name in expected}


def last_anchor_in(lines) -> dict:
    """The last anchor among log lines (other lines are skipped). Raises ValueError if none."""
    last = None
    for line in lines:
        line = line.strip()
        if not line.startswith("{") or ('"anchor"' not in line and '"signature"' not in line):
            continue
        try:
            last = parse_anchor(line)
        except ValueError:
            continue
    if last is None:
        raise ValueError("no audit chain anchor found")
    return last
