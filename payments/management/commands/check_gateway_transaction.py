"""Runbook "Failed Transactions Recovery": check transaction status with the payment gateway.

Asks the transaction's gateway (by its reference, else by the idempotency key of the last
authorization attempt) and prints FlowPay's record next to the gateway's, then a verdict:
consistent, MISMATCH, gateway unreachable, or no record at gateway. A gateway with no record
of a payment FlowPay failed is consistent (nothing was charged)."""

from core.cli import Column, Report, RunbookCommand
from core.errors import NotFound
from core.money import format_minor_units
from core.selectors import UNSCOPED
from payments.models import TransactionStatus
from payments.selectors import transaction_get
from payments.services.stuck import transaction_gateway_view

S = TransactionStatus
RESOLVABLE = {S.COMPLETED, S.FAILED}


class Command(RunbookCommand):
    help = (
        "Compare a transaction (FlowPay public id txn_…) with what its gateway says. Exits 1 on a mismatch, "
        "when the gateway cannot be asked, or when the gateway has no record of a payment FlowPay did not fail."
    )

    def add_arguments(self, parser):
        parser.add_argument("--transaction-id", required=True, metavar="ID", help="FlowPay transaction id (txn_…)")

    def build_report(self, *, transaction_id: str, **options) -> Report:
        try:
            txn = transaction_get(public_id=transaction_id.strip(), scope=UNSCOPED)
        except NotFound as exc:
            raise self.usage_error(exc.message) from None
        view = transaction_gateway_view(transaction_id=txn.pk)
        txn, found, attempt = view.transaction, view.gateway_payment, view.attempt

        def money(amount):
            return format_minor_units(amount, txn.currency) if amount is not None else None

        flowpay = {
            "status": txn.status, "amount": txn.amount, "amountCaptured": txn.amount_captured, "currency": txn.currency,
            "reference": txn.gateway_reference or None, "failureCode": txn.failure_code or None,
        }
        gateway = None if found is None else {
            "status": found.status, "impliedStatus": view.implied_status, "amount": found.amount,
            "amountCaptured": found.amount_captured, "currency": found.currency.upper(), "reference": found.reference,
            "flowpayReference": found.flowpay_reference,
        }
        verdict, text = _verdict(view, flowpay=flowpay, gateway=gateway)

        def pair(label, ours, theirs, *, display=lambda v: v):
            return {"field": label, "flowpay": display(ours), "gateway": display(theirs) if gateway is not None else None,
                    "same": (ours == theirs) if gateway is not None else None}

        rows = [
            {"field": "status", "flowpay": txn.status,
             "gateway": f"{found.status} (→ {view.implied_status or '?'})" if found else None,
             "same": view.consistent if found else None},
            pair("amount", txn.amount, gateway and gateway["amount"], display=money),
            pair("captured", txn.amount_captured, gateway and gateway["amountCaptured"], display=money),
            pair("currency", txn.currency, gateway and gateway["currency"]),
            pair("reference", txn.gateway_reference or None, gateway and gateway["reference"]),
        ]
        report = Report(ok_message="OK: nothing to resolve.")
        report.add_field("transactionId", "Transaction", txn.public_id)
        report.add_field("merchant", "Merchant", txn.merchant.public_id, f"{txn.merchant.public_id} ({txn.merchant.name})")
        report.add_field("gateway", "Gateway", txn.gateway or None)
        report.add_field("lastAttempt", "Last attempt", {
            "number": attempt.number, "outcome": attempt.outcome, "idempotencyKey": attempt.idempotency_key,
            "errorCode": attempt.error_code or None,
        } if attempt else None, (f"#{attempt.number} {attempt.outcome}" + (f" (error: {attempt.error_code})" if attempt.error_code else ""))
            if attempt else "none")
        report.add_field("flowpay", "FlowPay", flowpay, txn.status)
        report.add_field("atGateway", "Gateway says", gateway,
                         found.status if found else ("(could not ask)" if view.error else "(no record)"))
        report.add_field("verdict", "Verdict", verdict, text)
        report.add_table("comparison", "FlowPay vs gateway",
                         [Column("field", "FIELD"), Column("flowpay", "FLOWPAY"), Column("gateway", "GATEWAY"),
                          Column("same", "SAME")], rows)
        if verdict != "consistent":
            report.problem(text)
            if txn.status == S.PROCESSING and view.implied_status in RESOLVABLE:
                report.note(
                    f"Resolve: manage.py resolve_stuck_transaction --transaction-id={txn.public_id} --status={view.implied_status}"
                )
        return report


def _verdict(view, *, flowpay: dict, gateway: dict | None) -> tuple[str, str]:
    """(verdict, sentence) comparing FlowPay's record with the gateway's."""
    txn, found = view.transaction, view.gateway_payment
    differences = []
    if gateway is not None:
        if not view.consistent:
            differences.append(f"FlowPay says {txn.status}, the gateway says {found.status}"
                               + (f" (= {view.implied_status} in FlowPay)" if view.implied_status else ""))
        for key, label in (("amount", "amount"), ("amountCaptured", "captured amount"), ("currency", "currency")):
            if flowpay[key] != gateway[key] and view.consistent:
                differences.append(f"{label}: FlowPay {flowpay[key]}, gateway {gateway[key]}")
    if view.error:
        return "gateway_unreachable", f"gateway unreachable: {view.error}"
    if found is None and txn.status in (S.FAILED, S.CANCELED):
        return "consistent", f"consistent: the gateway has no record of it and FlowPay {txn.status} it"
    if found is None:
        return "no_record_at_gateway", f"no record at gateway: FlowPay says {txn.status}, the gateway knows no such payment"
    if differences:
        return "mismatch", "MISMATCH: " + "; ".join(differences)
    return "consistent", f"consistent: FlowPay and the gateway agree ({txn.status} / {found.status})"
