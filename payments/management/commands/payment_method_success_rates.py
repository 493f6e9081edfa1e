"""Runbook "High Error Rate": is the issue specific to a payment method?

Payment method family: a saved method's brand; "paypal" for PayPal payments; the brand named
by a card token (pm_card_visa, pm_card_visa_debit, tok_visa → visa); "card" for other card
tokens; "other" for anything else (payments.selectors.payment_method_family). Attempts are
payments created in the window with a final outcome: succeeded (authorized, captured,
refunded since) or failed; in-flight payments are listed apart, canceled ones not counted.
"""

from django.utils import timezone

from core.cli import Column, Report, RunbookCommand, format_duration, non_negative_float, parse_duration, positive_int
from payments.selectors import payment_success_counts


def _rate(row: dict) -> float | None:
    return round(row["succeeded"] * 100 / row["attempts"], 1) if row["attempts"] else None


class Command(RunbookCommand):
    help = (
        "Success rate per payment method family and per gateway. Exits 1 when a method's success rate is "
        "below --min-rate (90%, the runbook's critical threshold) with at least --min-volume attempts."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", type=parse_duration, default=parse_duration("24h"), metavar="DURATION",
                            help="window, e.g. 1h, 24h (default), 7d")
        parser.add_argument("--min-rate", type=non_negative_float, default=90.0, metavar="PERCENT",
                            help="a method below this success rate is a problem (90)")
        parser.add_argument("--min-volume", type=positive_int, default=10, metavar="N",
                            help="only methods with at least N attempts are judged (10)")

    def build_report(self, *, since, min_rate: float, min_volume: int, **options) -> Report:
        start = timezone.now() - since
        by_method = [{**row, "successRatePercent": _rate(row)} for row in payment_success_counts(since=start, by_gateway=False)]
        by_gateway = [{**row, "successRatePercent": _rate(row)} for row in payment_success_counts(since=start, by_gateway=True)]
        for row in [*by_method, *by_gateway]:
            row["inFlight"] = row.pop("in_flight")
        for row in by_method:
            row["belowThreshold"] = row["attempts"] >= min_volume and row["successRatePercent"] < min_rate

        counts = [Column("attempts", "ATTEMPTS"), Column("succeeded", "SUCCEEDED"), Column("failed", "FAILED"),
                  Column("successRatePercent", "SUCCESS %", align="right"), Column("inFlight", "IN FLIGHT")]
        report = Report(ok_message=f"OK: no payment method below {min_rate:g}% (with at least {min_volume} attempts).")
        report.add_field("windowSeconds", "Window", int(since.total_seconds()), format_duration(since))
        report.add_field("since", "Since", start)
        report.add_field("minRatePercent", "Threshold", min_rate, f"{min_rate:g}% with at least {min_volume} attempts")
        report.add_field("minVolume", "Minimum volume", min_volume)
        report.add_table("byMethod", "By payment method", [Column("method", "METHOD"), *counts,
                         Column("belowThreshold", "BELOW")], by_method, empty="(no payments in the window)")
        report.add_table("byMethodAndGateway", "By payment method and gateway",
                         [Column("method", "METHOD"), Column("gateway", "GATEWAY"), *counts], by_gateway,
                         empty="(no payments in the window)")
        for row in by_method:
            if row["belowThreshold"]:
                report.problem(
                    f"{row['method']}: success rate {row['successRatePercent']}% over {row['attempts']} attempts "
                    f"is below {min_rate:g}%"
                )
        return report
