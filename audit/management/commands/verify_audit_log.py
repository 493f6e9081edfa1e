"""Verify the audit log's hash chain: any altered, removed or inserted entry in a sealed
range, and any edited or missing seal, is reported.

    python manage.py verify_audit_log [--seal-first] [--format table|json]

Exit status (core.cli): 1 when tampering is found, 0 when the chain holds.
"""

from audit.sealing import audit_seal_pending, audit_verify
from core.cli import Column, Report, RunbookCommand


class Command(RunbookCommand):
    help = "Verify the audit log's hash chain (exits 1 when an entry or seal was altered, removed or inserted)."

    def add_arguments(self, parser):
        parser.add_argument("--seal-first", action="store_true", help="seal the entries old enough before verifying")

    def build_report(self, *, seal_first: bool, **options) -> Report:
        if seal_first:
            audit_seal_pending()
        result = audit_verify()
        report = Report(ok_message="OK: the audit log's hash chain holds.")
        report.add_field("sealsChecked", "Seals checked", result.seals_checked)
        report.add_field("entriesVerified", "Entries verified", result.entries_verified)
        report.add_field("entriesUnsealed", "Entries not sealed yet", result.entries_unsealed)
        report.add_table("brokenSeals", "Broken seals", [Column("seal", "SEAL"), Column("lastEntryId", "LAST ENTRY"),
                                                  Column("problem", "PROBLEM")], result.problems, empty="(none)")
        for problem in result.problems:
            report.problem(f"seal {problem['seal']}: {problem['problem']}")
        return report
