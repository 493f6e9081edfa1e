import json

from django.core.management.base import BaseCommand, CommandError

from gateways.simulator.adapter import (
    LOSABLE_RESPONSES,
    SimulatorFaults,
    simulator_faults_clear,
    simulator_faults_get,
    simulator_faults_set,
)


class Command(BaseCommand):
    help = (
        "Show or inject faults in the simulator gateway, shared by every process (demos and drills): "
        "added latency, a share of calls unavailable or timing out, or lost responses after the charge, "
        "the capture or the void."
    )

    def add_arguments(self, parser):
        parser.add_argument("--gateway", default="simulator", help="the simulator's name (default: simulator)")
        parser.add_argument("--latency-ms", type=int)
        parser.add_argument("--error-rate", type=float, help="0..1: share of calls answered 'unavailable'")
        parser.add_argument("--timeout-rate", type=float, help="0..1: share of calls timing out before the gateway")
        parser.add_argument("--timeout-after-charge", choices=["on", "off"], help="charge, then lose the response")
        parser.add_argument("--lost-responses", metavar="OPERATIONS",
                            help=f"comma-separated, of {', '.join(LOSABLE_RESPONSES)}: make it, then lose the response "
                                 "('' for none)")
        parser.add_argument("--payout-failure", metavar="CODE",
                            help="the bank returns payouts in transit with this failure code, e.g. account_closed ('' for none)")
        parser.add_argument("--clear", action="store_true", help="remove every fault")

    def handle(self, *args, gateway, latency_ms, error_rate, timeout_rate, timeout_after_charge, lost_responses, payout_failure,
               clear, **options):
        if clear:
            simulator_faults_clear(gateway)
        elif any(v is not None for v in (latency_ms, error_rate, timeout_rate, timeout_after_charge, lost_responses,
                                         payout_failure)):
            current = simulator_faults_get(gateway)
            try:
                simulator_faults_set(
                    SimulatorFaults(
                        latency_ms=current.latency_ms if latency_ms is None else latency_ms,
                        error_rate=current.error_rate if error_rate is None else error_rate,
                        timeout_rate=current.timeout_rate if timeout_rate is None else timeout_rate,
                        timeout_after_charge=current.timeout_after_charge
                        if timeout_after_charge is None else timeout_after_charge == "on",
                        lost_responses=current.lost_responses if lost_responses is None
                        else tuple(op.strip() for op in lost_responses.split(",") if op.strip()),
                        payout_failure=current.payout_failure if payout_failure is None else payout_failure.strip(),
                    ),
                    gateway,
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        faults = simulator_faults_get(gateway)
        self.stdout.write(json.dumps({"gateway": gateway, **faults.__dict__}))
