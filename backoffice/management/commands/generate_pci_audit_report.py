"""Runbook "Compliance and Auditing": the monthly PCI audit report.

    python manage.py generate_pci_audit_report --month=2026-10 [--format table|json]

What a PCI DSS assessor asks about, for the month, from the audit log: that the log is
intact (hash chain), attempts to send card data (refused, never stored), credential
lifecycle (merchant API keys, staff tokens, gateway key rotation), staff authentication
events (sign-ins and their failures, lockouts, MFA enrolments, resets and recovery codes,
password and role changes: PCI DSS 10.2.1.4, 10.2.1.5), who holds which staff role,
privileged operator actions, four-eyes refund approvals, and staff activity.
Exit status (core.cli): 1 when the audit chain is broken or a gateway key is overdue.
"""

import calendar
import datetime as dt

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db.models import Count
from django.utils import timezone

from audit.actions import AuditAction
from audit.models import AuditEntry
from audit.sealing import audit_verify
from core.cli import Column, Report, RunbookCommand
from core.db_routing import replica_reads
from core.permissions import STAFF_ROLES
from gateways.rotation import gateway_key_rotation

COUNTED_ACTIONS = {
    AuditAction.SECURITY_CARD_DATA_REJECTED: "Requests refused for carrying card data",
    AuditAction.API_KEY_CREATE: "Merchant API keys issued",
    AuditAction.API_KEY_REVOKE: "Merchant API keys revoked",
    AuditAction.STAFF_TOKEN_CREATE: "Staff tokens issued",
    AuditAction.STAFF_TOKEN_REVOKE: "Staff tokens revoked",
    AuditAction.REFUND_APPROVE: "Refunds approved (four-eyes)",
    AuditAction.REFUND_REJECT: "Refunds rejected (four-eyes)",
    AuditAction.TRANSACTION_RESOLVED_FORCED: "Payments force-resolved by operators",
    AuditAction.TRANSACTION_RECOVERED_FORCED: "Payments force-recovered by operators",
}

# Staff authentication events (PCI DSS 10.2.1.4, 10.2.1.5), counted by result.
AUTHENTICATION_ACTIONS = {
    AuditAction.STAFF_USER_SIGN_IN: "Staff sign-ins",
    AuditAction.STAFF_USER_SIGN_OUT: "Staff sign-outs",
    AuditAction.STAFF_USER_LOCKED: "Staff lockouts",
    AuditAction.STAFF_USER_UNLOCKED: "Staff lockouts released",
    AuditAction.STAFF_USER_MFA_ENROL: "MFA enrolments",
    AuditAction.STAFF_USER_MFA_RESET: "MFA resets (by an admin, with a reason)",
    AuditAction.STAFF_USER_RECOVERY_CODE_USED: "Recovery codes used",
    AuditAction.STAFF_USER_PASSWORD_CHANGE: "Staff password changes",
    AuditAction.STAFF_USER_ROLES_CHANGE: "Staff role and privilege changes",
    AuditAction.STAFF_TOKEN_CREATE: "Staff tokens issued",
    AuditAction.STAFF_TOKEN_REVOKE: "Staff tokens revoked",
    AuditAction.STAFF_TOKEN_REFUSED: "Expired or revoked staff tokens refused",
}


def _authentication_rows(entries) -> list[dict]:
    counts: dict[tuple[str, str], int] = {}
    for action, result, n in entries.filter(action__in=AUTHENTICATION_ACTIONS).values_list("action", "result").annotate(n=Count("id")):
        counts[(action, result)] = n
    rows = []
    for action, label in AUTHENTICATION_ACTIONS.items():
        by_result = {result: counts.get((action.value, result), 0) for result in AuditEntry.Result.values}
        rows.append({"action": action.value, "label": label, **by_result, "total": sum(by_result.values())})
    return rows


def _month(text: str) -> tuple[dt.datetime, dt.datetime]:
    try:
        year, month = (int(part) for part in text.split("-"))
        first = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    except ValueError:
        raise CommandError(f"--month must be YYYY-MM, got {text!r}") from None
    last_day = calendar.monthrange(year, month)[1]
    return first, first + dt.timedelta(days=last_day)


class Command(RunbookCommand):
    help = "Monthly PCI audit report from the audit log (exits 1 when the audit chain is broken or a gateway key is overdue)."

    def add_arguments(self, parser):
        parser.add_argument("--month", required=True, help="the month to report, YYYY-MM")

    def build_report(self, *, month: str, **options) -> Report:
        start, end = _month(month)
        entries = AuditEntry.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
        report = Report(ok_message="OK: the audit log is intact and no gateway key is overdue.")
        report.add_field("month", "Month", month)
        report.add_field("generatedAt", "Generated at", timezone.now())
        # The month's figures are a report: read from the replica when there is one. The chain
        # is verified on the primary, where the newest entries and seals are.
        with replica_reads():
            report.add_field("auditEntries", "Audit entries in the month", entries.count())

        chain = audit_verify()
        report.add_field("auditChainIntact", "Audit hash chain intact", chain.ok)
        report.add_field("auditSealsChecked", "Seals verified", chain.seals_checked)
        report.add_field("auditEntriesUnsealed", "Entries not sealed yet", chain.entries_unsealed)
        for problem in chain.problems:
            report.problem(f"audit log tampering: {problem['where']}: {problem['problem']}")

        with replica_reads():
            counts = dict(entries.filter(action__in=COUNTED_ACTIONS).values_list("action").annotate(n=Count("id")))
            report.add_table("controls", "Controls in the month", [Column("label", "CONTROL"), Column("count", "COUNT")],
                             [{"action": action, "label": label, "count": counts.get(action, 0)} for action, label in COUNTED_ACTIONS.items()])
            report.add_table(
                "authentication", "Staff authentication events in the month",
                [Column("label", "EVENT"), Column("success", "SUCCESS"), Column("failure", "FAILURE"), Column("denied", "DENIED"),
                 Column("total", "TOTAL")],
                _authentication_rows(entries),
            )
            runtime_changes = list(
                entries.filter(action__startswith="runtime.").order_by("occurred_at")
                .values("occurred_at", "actor_id", "action", "details__reason")
            )
            report.add_table("operatorActions", "Operator switches (runbook internal endpoints)",
                             [Column("occurred_at", "WHEN"), Column("actor_id", "BY"), Column("action", "ACTION"),
                              Column("details__reason", "REASON")], runtime_changes)

            users = get_user_model().objects.filter(is_active=True).prefetch_related("groups")
            staff_rows = []
            for user in users:
                roles = sorted({g.name for g in user.groups.all()} & set(STAFF_ROLES))
                if roles or user.is_superuser or user.is_staff:
                    staff_rows.append({"username": user.get_username(), "roles": roles, "superuser": user.is_superuser,
                                       "lastLogin": user.last_login})
            report.add_table("staff", "Active staff and their roles",
                             [Column("username", "USER"), Column("roles", "ROLES"), Column("superuser", "SUPERUSER"),
                              Column("lastLogin", "LAST LOGIN")], staff_rows)
            activity = list(entries.filter(actor_type="staff").values("actor_id").annotate(actions=Count("id")).order_by("-actions"))
            report.add_table("staffActivity", "Staff actions in the month", [Column("actor_id", "USER"), Column("actions", "ACTIONS")],
                             activity)

        rotation = gateway_key_rotation(today=timezone.localdate())
        report.add_table("gatewayKeys", "Gateway API keys (last 4 characters only)",
                         [Column("gateway", "GATEWAY"), Column("key", "KEY"), Column("createdAt", "CREATED"),
                          Column("ageDays", "AGE (DAYS)"), Column("status", "STATUS")], rotation.rows)
        for problem in rotation.problems:
            report.problem(problem)
        return report
