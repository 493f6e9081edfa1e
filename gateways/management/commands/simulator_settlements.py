import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError

from core.models import new_public_id
from core.money import is_supported_currency
from gateways.simulator.settlements import (
    ExtraCharge,
    SettlementDiscrepancies,
    settlement_discrepancies_clear,
    settlement_discrepancies_get,
    settlement_discrepancies_set,
)


def _pairs(values: list[str], flag: str, cast) -> dict:
    pairs = {}
    for value in values:
        reference, sep, setting = value.partition("=")
        if not sep or not reference:
            raise CommandError(f"{flag} takes REFERENCE=VALUE, not {value!r}")
        try:
            pairs[reference] = cast(setting)
        except ValueError:
            raise CommandError(f"{flag}: invalid value {setting!r}") from None
    return pairs


def _currency(code: str) -> str:
    if not is_supported_currency(code.upper()):
        raise ValueError(code)
    return code.upper()


def _extra(value: str) -> ExtraCharge:
    amount, sep, currency = value.partition(":")
    try:
        if not sep or int(amount) <= 0:
            raise ValueError(value)
        return ExtraCharge(reference=new_public_id("sim_ch_extra"), amount=int(amount), currency=_currency(currency),
                           created=dt.datetime.now(dt.UTC))
    except ValueError:
        raise CommandError(f"--extra-charge takes AMOUNT:CURRENCY (minor units), not {value!r}") from None


class Command(BaseCommand):
    help = (
        "Show or inject discrepancies in the simulator's settlement report (reconciliation drills), shared by every "
        "process: rows left out, amounts or currencies changed, refunds FlowPay never asked for, fees changed, rows "
        "reported twice, charges FlowPay never made. Options add to what is in force; --clear removes it all."
    )

    def add_arguments(self, parser):
        parser.add_argument("--gateway", default="simulator", help="the simulator's name (default: simulator)")
        parser.add_argument("--missing", action="append", default=[], metavar="REF", help="leave the row out")
        parser.add_argument("--amount-off", action="append", default=[], metavar="REF=DELTA", help="add DELTA (minor units)")
        parser.add_argument("--currency", action="append", default=[], metavar="REF=CODE", help="report another currency")
        parser.add_argument("--refunded", action="append", default=[], metavar="REF", help="add a refund of the whole charge")
        parser.add_argument("--fee", action="append", default=[], metavar="REF=FEE", help="report this fee (minor units)")
        parser.add_argument("--duplicate", action="append", default=[], metavar="REF", help="report the row twice")
        parser.add_argument("--extra-charge", action="append", default=[], metavar="AMOUNT:CURRENCY",
                            help="a charge FlowPay never made, now")
        parser.add_argument("--clear", action="store_true", help="remove every discrepancy")

    def handle(self, *args, gateway, missing, amount_off, currency, refunded, fee, duplicate, extra_charge, clear, **options):
        if clear:
            settlement_discrepancies_clear(gateway)
        elif any((missing, amount_off, currency, refunded, fee, duplicate, extra_charge)):
            now = settlement_discrepancies_get(gateway)
            settlement_discrepancies_set(SettlementDiscrepancies(
                missing=(*now.missing, *missing), refunded=(*now.refunded, *refunded),
                duplicate=(*now.duplicate, *duplicate),
                amount_delta={**now.amount_delta, **_pairs(amount_off, "--amount-off", int)},
                currency={**now.currency, **_pairs(currency, "--currency", _currency)},
                fee={**now.fee, **_pairs(fee, "--fee", int)},
                extra_charges=(*now.extra_charges, *(_extra(value) for value in extra_charge)),
            ), gateway)
        shown = settlement_discrepancies_get(gateway)
        self.stdout.write(json.dumps({
            "gateway": gateway, "missing": list(shown.missing), "amountOff": shown.amount_delta, "currency": shown.currency,
            "refunded": list(shown.refunded), "fee": shown.fee, "duplicate": list(shown.duplicate),
            "extraCharges": [{"reference": e.reference, "amount": e.amount, "currency": e.currency,
                              "created": e.created.isoformat()} for e in shown.extra_charges],
        }))
