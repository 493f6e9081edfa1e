"""Verify the audit log: every entry's MAC and the keyed hash chain of the seals, and
optionally the chain against an anchor kept outside the database.

    python manage.py verify_audit_log [--seal-first] [--anchor JSON | --anchor-file PATH] [--format table|json]

An anchor is the JSON log line the sealer writes (logger flowpay.audit.anchor) after each
seal: seal id, last entry id, entry count, hash, key id and a signature over them. Checking
against the last anchor detects what the database alone cannot show: the newest entries
removed with their seals (tail truncation), or the whole chain rewritten.

Each run appends its outcome to the log (`audit_log.verify`), which the back office's audit
log page shows as the chain's last verification.

Exit status (core.cli): 1 when tampering is found, 0 when the log verifies, 2 on a usage
error (an anchor that does not parse, a file that cannot be read).
"""

from django.core.management.base import CommandParser

from audit.sealing import audit_seal_pending
from audit.verification import audit_verify_recorded, last_anchor_in, parse_anchor
from core.actors import Actor
from core.cli import Column, Report, RunbookCommand


class Command(RunbookCommand):
    help = (
        "Verify the audit log: each entry's MAC (an entry altered before or after sealing), the keyed hash chain "
        "of the seals (entries altered, removed or inserted in a sealed range, seals edited, removed or recomputed) "
        "and, with --anchor or --anchor-file, the chain against an anchor: one of the JSON lines the sealer logs "
        "(logger flowpay.audit.anchor) after each seal, kept outside the database. The anchored seal must still be "
        "in the chain with the same hash and everything up to it must verify, so removing the newest entries with "
        "their seals (tail truncation) or rewriting the chain is detected against the last anchor. Entries and "
        "seals from before keys existed are verified the old way and counted as legacy. Exits 1 when anything "
        "was altered, removed or inserted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seal-first", action="store_true", help="seal the entries that are final before verifying")
        source = parser.add_mutually_exclusive_group()
        source.add_argument(
            "--anchor", metavar="JSON",
            help="an anchor: the JSON log line of logger flowpay.audit.anchor (or just its \"anchor\" object)",
        )
        source.add_argument(
            "--anchor-file", metavar="PATH",
            help="a file of JSON log lines (e.g. the shipped application log): the last anchor in it is checked",
        )

    def build_report(self, *, seal_first: bool, anchor: str | None = None, anchor_file: str | None = None,
                     **options) -> Report:
        checked_anchor = self._anchor(anchor, anchor_file)
        if seal_first:
            audit_seal_pending()
        result = audit_verify_recorded(actor=Actor.system("verify_audit_log"), anchor=checked_anchor)
        report = Report(ok_message="OK: the audit log's entries and hash chain verify.")
        report.add_field("sealsChecked", "Seals checked", result.seals_checked)
        report.add_field("entriesVerified", "Entries verified in sealed ranges", result.entries_verified)
        report.add_field("entriesUnsealed", "Entries not sealed yet (MAC checked)", result.entries_unsealed)
        report.add_field("entriesSigned", "Entries whose MAC matches", result.entries_signed)
        report.add_field("legacyEntries", "Legacy, unkeyed entries", result.legacy_entries)
        report.add_field("legacySeals", "Legacy, unkeyed seals", result.legacy_seals)
        report.add_field("developmentKey", "Made with the public development key", result.development_key)
        report.add_field("anchor", "Anchor", result.anchor, display=_anchor_display(result.anchor))
        report.add_table("tampering", "Tampering found", [Column("where", "WHERE"), Column("problem", "PROBLEM")],
                         result.problems, empty="(none)")
        for problem in result.problems:
            report.problem(f"{problem['where']}: {problem['problem']}")
        return report

    def _anchor(self, text: str | None, path: str | None) -> dict | None:
        try:
            if text is not None:
                return parse_anchor(text)
            if path is not None:
                with open(path, encoding="utf-8") as lines:
                    return last_anchor_in(lines)
        except OSError as exc:
            raise self.usage_error(f"--anchor-file {path!r}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise self.usage_error(f"{'--anchor' if text is not None else '--anchor-file'}: {exc}") from None
        return None


def _anchor_display(anchor: dict | None) -> str:
    if anchor is None:
        return "(none given)"
    verdict = "holds" if anchor["holds"] else "BROKEN"
    return f"seal {anchor['sealId']}, entries up to {anchor['lastEntryId']}: {verdict}"
