"""What someone with the database owner's privileges could do to the audit log, and how
verify_audit_log catches it: entries signed at insert with keys the database does not hold,
a keyed hash chain of seals, and signed anchors written outside the database. (Tampering
bypasses the append-only triggers the way the owner could: session_replication_role =
replica, as in test_audit_sealing.)"""

import base64
import json
import threading
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from prometheus_client import REGISTRY

from audit.actions import AuditAction
from audit.chain import entry_digest, legacy_entry_digest, seal_hash
from audit.models import AuditEntry, AuditSeal
from audit.sealing import GENESIS, audit_seal_pending
from audit.services import audit_record
from core.actors import Actor

pytestmark = pytest.mark.django_db

KEY_2025 = base64.b64encode(b"k2025b-" + b"\x01" * 32).decode()
KEY_2026 = base64.b64encode(b"k2026a-" + b"\x02" * 32).decode()


@pytest.fixture(autouse=True)
def chain_keys(settings):
    settings.FLOWPAY_AUDIT_CHAIN_KEYS = {"k2026a": KEY_2026, "k2025b": KEY_2025}
    settings.FLOWPAY_AUDIT_CHAIN_KEY_ID = "k2026a"
    settings.FLOWPAY_AUDIT_SEAL_MIN_AGE_SECONDS = 0
    return settings


def write_entries(count: int, batch: str = "first") -> list[AuditEntry]:
    return [audit_record(actor=Actor.system("test"), action=AuditAction.MERCHANT_CREATE, details={"n": i, "batch": batch})
            for i in range(count)]


def tamper(*statements: tuple[str, list]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        for sql, params in statements:
            cursor.execute(sql, params)


def verify_command(*args: str) -> tuple[int, dict]:
    out = StringIO()
    try:
        call_command("verify_audit_log", "--format", "json", *args, stdout=out)
        code = 0
    except SystemExit as exited:
        code = exited.code
    return code, json.loads(out.getvalue())


@pytest.fixture
def seal_and_anchor(json_log_lines, django_capture_on_commit_callbacks):
    """Seal (anchors are written once the seal commits) and return the anchor log lines."""
    lines = json_log_lines("flowpay.audit.anchor")

    def seal(**kwargs) -> list[str]:
        start = len(lines.getvalue())
        with django_capture_on_commit_callbacks(execute=True):
            audit_seal_pending(**kwargs)
        return [line for line in lines.getvalue()[start:].splitlines() if line]

    return seal


# --- (a) an entry altered before it is sealed -------------------------------------------
def test_a_an_entry_altered_before_sealing_is_detected_and_stays_detected_once_sealed():
    entries = write_entries(3)
    tamper(("UPDATE audit_entry SET details = %s, actor_id = 'mallory' WHERE id = %s", ['{"n": 99}', entries[1].pk]))

    code, report = verify_command()
    assert code == 1 and report["entriesUnsealed"] == 3
    assert report["problems"] == [f"entry {entries[1].pk}: altered: its MAC does not match its content"]

    # The sealer seals what it finds (the verification's own record too), but the altered
    # entry does not become the sealed truth.
    assert audit_seal_pending() == 4
    code, report = verify_command()
    assert code == 1 and report["entriesVerified"] == 4
    assert f"entry {entries[1].pk}: altered: its MAC does not match its content" in report["problems"]


# --- (b) a sealed entry altered, the newest seal removed and the entries sealed again ------
def test_b_a_sealed_entry_altered_then_resealed_is_detected(seal_and_anchor):
    entries = write_entries(4)
    anchors = seal_and_anchor(batch_size=2)
    newest = AuditSeal.objects.order_by("-last_entry_id").first()
    tamper(
        ("UPDATE audit_entry SET result = 'success', details = %s WHERE id = %s", ['{"n": -1}', entries[3].pk]),
        ("DELETE FROM audit_seal WHERE id = %s", [newest.pk]),
    )
    assert audit_seal_pending() == 2  # the sealer seals the altered entries again

    code, report = verify_command()
    assert code == 1
    assert f"entry {entries[3].pk}: altered: its MAC does not match its content" in report["problems"]
    # Against the anchor of the removed seal, the rewrite shows too.
    code, report = verify_command("--anchor", anchors[-1])
    assert code == 1 and report["anchor"]["holds"] is False
    assert any(p.startswith("anchor: the anchored seal") and "missing" in p for p in report["problems"])


# --- (c) the newest entries deleted with their seal (tail truncation) ----------------------
def test_c_tail_truncation_is_detected_against_the_last_anchor(seal_and_anchor):
    write_entries(3)
    seal_and_anchor()
    entries = write_entries(2, batch="late")
    last_anchor = seal_and_anchor()[-1]
    newest = AuditSeal.objects.order_by("-last_entry_id").first()
    tamper(
        ("DELETE FROM audit_entry WHERE id >= %s", [entries[0].pk]),
        ("DELETE FROM audit_seal WHERE id = %s", [newest.pk]),
    )

    # The database alone is consistent again: the anchors outside it are what remember.
    assert verify_command()[0] == 0
    code, report = verify_command("--anchor", last_anchor)
    assert code == 1 and (report["anchor"]["sealId"], report["anchor"]["holds"]) == (newest.pk, False)
    assert report["problems"] == [
        f"anchor: the anchored seal {newest.pk} (entries up to {entries[1].pk}) is missing and the chain now ends "
        f"at entry {entries[0].pk - 1}: its tail was cut off"
    ]
    # The sealer's gauge still shows how far the chain went.
    assert REGISTRY.get_sample_value("audit_chain_last_sealed_entry_id") >= entries[1].pk


# --- (d) the oldest entry altered and every seal recomputed --------------------------------
def _recompute_every_seal_without_the_key(*, strip_entry_macs: bool) -> None:
    """What the owner can do without the key: rebuild the chain with the legacy (unkeyed)
    formula, optionally stripping every entry's MAC first to pass them off as legacy."""
    if strip_entry_macs:
        tamper(("UPDATE audit_entry SET key_id = NULL, nonce = NULL, mac = NULL", []))
    previous_hash, after_id, statements = GENESIS, 0, []
    for seal in AuditSeal.objects.order_by("last_entry_id"):
        entries = AuditEntry.objects.filter(pk__gt=after_id, pk__lte=seal.last_entry_id).order_by("pk")
        digests = [entry_digest(e) for e in entries]
        forged = seal_hash(previous_hash=previous_hash, after_id=after_id, last_id=seal.last_entry_id, digests=digests,
                           key_id=None)
        statements.append(("UPDATE audit_seal SET previous_hash = %s, hash = %s, key_id = NULL WHERE id = %s",
                           [previous_hash, forged, seal.pk]))
        previous_hash, after_id = forged, seal.last_entry_id
    tamper(*statements)


def test_d_the_oldest_entry_altered_and_every_seal_recomputed_is_detected(seal_and_anchor):
    entries = write_entries(4)
    anchors = seal_and_anchor(batch_size=2)
    tamper(("UPDATE audit_entry SET actor_id = 'someone-else' WHERE id = %s", [entries[0].pk]))
    _recompute_every_seal_without_the_key(strip_entry_macs=False)

    code, report = verify_command()
    assert code == 1
    assert report["problems"][0].endswith("an unkeyed seal covers signed entries: the chain was recomputed without the key")
    assert f"entry {entries[0].pk}: altered: its MAC does not match its content" in report["problems"]
    code, report = verify_command("--anchor", anchors[-1])
    assert code == 1 and report["anchor"]["holds"] is False


def test_d_a_chain_passed_off_as_legacy_is_detected_against_the_last_anchor(seal_and_anchor):
    entries = write_entries(4)
    last_anchor = seal_and_anchor(batch_size=2)[-1]
    tamper(("UPDATE audit_entry SET actor_id = 'someone-else' WHERE id = %s", [entries[0].pk]))
    _recompute_every_seal_without_the_key(strip_entry_macs=True)

    code, report = verify_command("--anchor", last_anchor)
    assert code == 1 and report["legacyEntries"] == 4
    assert any("differs from its anchor (hash, keyId): the chain was rewritten" in p for p in report["problems"])


# --- keys, rotation, anchors -----------------------------------------------------------------
def test_entries_and_seals_made_with_a_retired_key_still_verify(chain_keys):
    chain_keys.FLOWPAY_AUDIT_CHAIN_KEY_ID = "k2025b"
    old = write_entries(3, batch="old")
    audit_seal_pending()
    chain_keys.FLOWPAY_AUDIT_CHAIN_KEY_ID = "k2026a"  # rotation: a new active key, the old one still listed
    new = write_entries(2, batch="new")
    audit_seal_pending()
    write_entries(1, batch="unsealed")

    code, report = verify_command()
    assert code == 0 and report["entriesSigned"] == 6 and report["entriesUnsealed"] == 1
    assert {AuditEntry.objects.get(pk=e.pk).key_id for e in old} == {"k2025b"}
    assert {AuditEntry.objects.get(pk=e.pk).key_id for e in new} == {"k2026a"}
    assert list(AuditSeal.objects.order_by("last_entry_id").values_list("key_id", flat=True)) == ["k2025b", "k2026a"]

    # A key dropped from the configuration leaves what it made unverifiable: reported.
    chain_keys.FLOWPAY_AUDIT_CHAIN_KEYS = {"k2026a": KEY_2026}
    code, report = verify_command()
    assert code == 1
    assert f"entry {old[0].pk}: signed with key 'k2025b', which is not configured " \
           "(retired keys stay in FLOWPAY_AUDIT_CHAIN_KEYS)" in report["problems"]


def test_each_seal_writes_a_signed_anchor_line_and_sets_the_gauges(seal_and_anchor, tmp_path):
    entries = write_entries(3)
    lines = seal_and_anchor(batch_size=2)
    seals = list(AuditSeal.objects.order_by("last_entry_id"))
    assert len(lines) == len(seals) == 2
    logged = json.loads(lines[-1])
    assert (logged["logger"], logged["level"], logged["message"]) == ("flowpay.audit.anchor", "INFO", "audit chain anchor")
    anchor = logged["anchor"]
    assert {k: anchor[k] for k in ("sealId", "lastEntryId", "entryCount", "hash", "keyId")} == {
        "sealId": seals[-1].pk, "lastEntryId": entries[-1].pk, "entryCount": 1, "hash": seals[-1].hash, "keyId": "k2026a"}
    assert len(anchor["signature"]) == 64
    assert REGISTRY.get_sample_value("audit_chain_last_seal_id") == seals[-1].pk
    assert REGISTRY.get_sample_value("audit_chain_last_sealed_entry_id") == entries[-1].pk

    code, report = verify_command("--anchor", lines[-1])
    assert code == 0 and report["anchor"]["holds"] is True
    log_file = tmp_path / "flowpay.log"
    log_file.write_text("plain text line\n" + "\n".join(lines) + '\n{"logger": "flowpay.request", "message": "x"}\n')
    code, report = verify_command("--anchor-file", str(log_file))
    assert code == 0 and report["anchor"]["sealId"] == seals[-1].pk

    forged = {**anchor, "lastEntryId": anchor["lastEntryId"] - 1}  # an edited anchor line
    code, report = verify_command("--anchor", json.dumps(forged))
    assert code == 1 and report["problems"] == [
        "anchor: the anchor's signature does not match: the anchor itself was forged or altered"]
    with pytest.raises(CommandError):
        call_command("verify_audit_log", "--anchor", '{"sealId": 1}')


def test_legacy_unkeyed_entries_and_seals_verify_the_old_way_and_are_counted():
    # As written before keys existed: no key id, nonce or MAC; a SHA-256 seal.
    with connection.cursor() as cursor:
        for i in range(2):
            cursor.execute(
                "INSERT INTO audit_entry (occurred_at, actor_type, actor_id, action, object_type, object_id, result, "
                "details, correlation_id) VALUES (now(), 'system', 'old', %s, '', '', 'success', '{}', '')", [f"legacy.{i}"])
    legacy = list(AuditEntry.objects.order_by("pk"))
    AuditSeal.objects.create(
        first_entry_id=legacy[0].pk, last_entry_id=legacy[-1].pk, entry_count=2, previous_hash=GENESIS, key_id=None,
        hash=seal_hash(previous_hash=GENESIS, after_id=0, last_id=legacy[-1].pk,
                       digests=[legacy_entry_digest(e) for e in legacy], key_id=None),
    )
    write_entries(2)
    audit_seal_pending()

    code, report = verify_command()
    assert code == 0, report["problems"]
    assert (report["legacyEntries"], report["legacySeals"], report["entriesSigned"]) == (2, 1, 2)

    # A legacy-looking entry after signed ones is not legacy: it was inserted (or stripped).
    tamper(("INSERT INTO audit_entry (occurred_at, actor_type, actor_id, action, object_type, object_id, result, "
            "details, correlation_id) VALUES (now(), 'staff', 'mallory', 'refund.approve', '', '', 'success', '{}', '')", []))
    code, report = verify_command()
    assert code == 1 and "inserted, or its MAC stripped" in report["problems"][0]


def test_a_copied_entry_is_detected_by_its_nonce():
    entries = write_entries(2)
    columns = ("occurred_at, actor_type, actor_id, merchant_id, action, object_type, object_id, result, details, "
               "correlation_id, origin_ip, key_id, nonce, mac")
    tamper(("DROP INDEX audit_entry_nonce_unique", []),
           (f"INSERT INTO audit_entry ({columns}) SELECT {columns} FROM audit_entry WHERE id = %s", [entries[0].pk]))
    code, report = verify_command()
    copy = AuditEntry.objects.exclude(action="audit_log.verify").order_by("-pk").first()
    assert code == 1
    assert report["problems"] == [f"entry {copy.pk}: copied: entries {entries[0].pk}, {copy.pk} share one nonce"]


def test_the_mac_survives_the_database_round_trip_of_awkward_values(merchant_a):
    details = {"big": 10**30, "float": 1e20, "zero": -0.0, "one": 1.0, "tiny": 1.5e-7, "text": "é\u2028\"'\\",
               "nested": {"b": [1, 2.5, None, True, {"z": "", "a": []}], "a": "x"}, "tuple": (1, "two")}
    audit_record(actor=Actor(type="api", id="fp_test_x", merchant_id=merchant_a.merchant.pk, ip="2001:0db8::0001"),
                 action=AuditAction.MERCHANT_CREATE, target=merchant_a.merchant, details=details)
    AuditEntry.objects.bulk_create([AuditEntry(actor_type="worker", actor_id="bulk", action=AuditAction.MERCHANT_CREATE.value) for i in range(2)])
    code, report = verify_command()
    assert code == 0, report["problems"]
    # every entry but the verification's own record, written after it
    signed = AuditEntry.objects.exclude(action="audit_log.verify").count()
    assert report["entriesSigned"] == signed and report["legacyEntries"] == 0


# --- sealing within seconds, without skipping a late commit -------------------------------------
@pytest.mark.django_db(transaction=True)
def test_an_entry_committed_after_a_higher_id_is_sealed_with_it_not_skipped():
    inserted, release = threading.Event(), threading.Event()

    def late_writer():
        try:
            with transaction.atomic():
                audit_record(actor=Actor.system("test"), action=AuditAction.MERCHANT_CREATE)
                inserted.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    writer = threading.Thread(target=late_writer)
    writer.start()
    try:
        assert inserted.wait(timeout=30)
        write_entries(1, batch="early")  # a higher id, committed first
        # The late transaction may still commit a lower id: nothing is sealed past it.
        assert audit_seal_pending() == 0
    finally:
        release.set()
        writer.join(timeout=30)
    # Seconds later, once that transaction has ended, both are sealed together.
    assert audit_seal_pending() == 2
    code, report = verify_command()
    assert code == 0 and report["entriesVerified"] == 2 and report["entriesUnsealed"] == 0
