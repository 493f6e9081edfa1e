"""The simulator gateway: deterministic, in-process, with its records in the database so
every web and worker process sees one gateway.

It accepts Stripe's test payment-method ids:
- pm_card_visa (and the other plain pm_card_<brand> / tok_<brand> ids) succeed;
- pm_card_visa_chargeDeclined, pm_card_chargeCustomerFail → card_declined;
  pm_card_chargeDeclinedInsufficientFunds → insufficient_funds; other chargeDeclined* ids
  → their Stripe decline codes;
- pm_card_threeDSecure2Required, pm_card_authenticationRequired → requires_action, and so
  does any succeeding card when the charge asks for 3-D Secure (`three_d_secure`).
Like a real PSP it honours idempotency keys: a repeated key returns the first result.
describe_payment_method tells each test card's brand, funding, issuer country and a
fingerprint (the same token, the same card), as Stripe's test cards do.

Faults can be injected at runtime, shared by every process through the cache
(`simulator_faults_set`, or `manage.py simulator_faults`): added latency, a share of calls
failing with "unavailable" (nothing happened) or timing out before reaching the gateway,
`timeout_after_charge` (the charge is made, then the response is lost) and
`lost_responses` (the capture or void is made, then its response is lost), for demos,
fault tests and load tests; `payout_failure` (a code such as `account_closed`) makes the
bank return every payout in transit.

It reports no fees (FlowPay applies the merchant's fee schedule). Payouts are answered in
transit and paid the first time their status is asked (the beat task that follows payouts
up), as if the bank settled at once.

Its look-up is authoritative: a charge is recorded before the call answers, so once a call
is older than it could take, "no record" means it never reached the simulator.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from django.core.cache import cache
from django.db import transaction
from django.db.models import F

from core.models import new_public_id
from gateways.base import (
    ChargeRequest,
    ChargeResult,
    GatewayPayment,
    GatewayRequestError,
    GatewayTimeout,
    GatewayUnavailableError,
    HealthStatus,
    OperationResult,
    Outcome,
    PaymentMethodDetails,
    PayoutResult,
    PayoutState,
    SettlementRecord,
    WebhookEvent,
    WebhookVerificationError,
)
from gateways.models import SimulatorCharge
from gateways.models import SimulatorChargeStatus as ChargeStatus
from gateways.simulator.settlements import SETTLEMENT_REPORT, settlement_report

SUCCEEDING_TOKENS = {
    "pm_card_visa",
    "pm_card_visa_debit",
    "pm_card_mastercard",
    "pm_card_mastercard_debit",
    "pm_card_amex",
    "pm_card_discover",
    "pm_card_diners",
    "pm_card_jcb",
    "pm_card_unionpay",
    "pm_card_us",
    "pm_card_gb",
    "pm_card_de",
    "pm_card_fr",
    "pm_card_jp",
    "tok_visa",
    "tok_mastercard",
    "tok_amex",
}
DECLINING_TOKENS = {
    "pm_card_visa_chargeDeclined": ("card_declined", "Your card was declined."),
    "pm_card_chargeCustomerFail": ("card_declined", "Your card was declined."),
    "pm_card_chargeDeclined": ("card_declined", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": ("insufficient_funds", "Your card has insufficient funds."),
    "pm_card_chargeDeclinedFraudulent": ("fraudulent", "Your card was declined."),
    "pm_card_chargeDeclinedIncorrectCvc": ("incorrect_cvc", "Your card's security code is incorrect."),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", "Your card has expired."),
    "pm_card_chargeDeclinedLostCard": ("lost_card", "Your card was declined."),
    "pm_card_chargeDeclinedStolenCard": ("stolen_card", "Your card was declined."),
    "pm_card_chargeDeclinedProcessingError": ("processing_error", "An error occurred while processing your card."),
}
ACTION_TOKENS = {"pm_card_threeDSecure2Required", "pm_card_authenticationRequired", "pm_card_threeDSecureRequired"}
# The issuer country of the country test cards (pm_card_gb, ...); the others are US cards.
CARD_COUNTRIES = {"pm_card_us": "US", "pm_card_gb": "GB", "pm_card_de": "DE", "pm_card_fr": "FR", "pm_card_jp": "JP"}
CARD_BRANDS = ("visa", "mastercard", "amex", "discover", "diners", "jcb", "unionpay")


FAULTS_CACHE_KEY = "flowpay:simulator:faults"
PAYOUT_STATUSES = (ChargeStatus.PAYOUT_IN_TRANSIT, ChargeStatus.PAYOUT_PAID, ChargeStatus.PAYOUT_FAILED)
# Operations whose response `lost_responses` can lose after the simulator acted.
LOSABLE_RESPONSES = ("capture", "void")


@dataclass(frozen=True)
class SimulatorFaults:
    latency_ms: int = 0
    error_rate: float = 0.0  # share of calls answered "unavailable" (nothing happened)
    timeout_rate: float = 0.0  # share of calls timing out before reaching the gateway
    timeout_after_charge: bool = False  # authorize: charge made, response lost
    lost_responses: tuple[str, ...] = ()  # of LOSABLE_RESPONSES: operation made, response lost
    payout_failure: str = ""  # a failure code: payouts in transit are returned by the bank

    @property
    def active(self) -> bool:
        return bool(self.latency_ms or self.error_rate or self.timeout_rate or self.timeout_after_charge
                    or self.lost_responses or self.payout_failure)


def simulator_faults_get(name: str = "simulator") -> SimulatorFaults:
    stored = cache.get(f"{FAULTS_CACHE_KEY}:{name}")
    if not stored:
        return SimulatorFaults()
    return SimulatorFaults(**{**stored, "lost_responses": tuple(stored.get("lost_responses") or ())})


def simulator_faults_set(faults: SimulatorFaults, name: str = "simulator") -> SimulatorFaults:
    if not (0 <= faults.error_rate <= 1 and 0 <= faults.timeout_rate <= 1 and faults.latency_ms >= 0):
        raise ValueError("rates must be between 0 and 1 and latency must not be negative")
    if set(faults.lost_responses) - set(LOSABLE_RESPONSES):
        raise ValueError(f"lost responses can only be of: {', '.join(LOSABLE_RESPONSES)}")
    cache.set(f"{FAULTS_CACHE_KEY}:{name}", asdict(faults), timeout=None)
    return faults


def simulator_faults_clear(name: str = "simulator") -> None:
    cache.delete(f"{FAULTS_CACHE_KEY}:{name}")


def _apply_faults(operation: str, name: str) -> SimulatorFaults:
    faults = simulator_faults_get(name)
    if faults.latency_ms:
        time.sleep(faults.latency_ms / 1000)
    if faults.error_rate and random.random() < faults.error_rate:
        raise GatewayUnavailableError(f"simulator: injected outage on {operation}")
    if faults.timeout_rate and random.random() < faults.timeout_rate:
        raise GatewayTimeout(f"simulator: injected timeout on {operation}")
    return faults


class SimulatorGateway:
    """`name` lets tests and demos run a second, independent simulator (own faults and
    breaker) to show failover; both share the simulator's records."""

    # fetch() sees every charge as soon as it is made (see the module's docstring).
    lookup_is_authoritative = True
    settlement_file_format = SETTLEMENT_REPORT

    def __init__(self, name: str = "simulator"):
        self.name = name

    def supports_payment_method(self, token: str) -> bool:
        return token in SUCCEEDING_TOKENS or token in DECLINING_TOKENS or token in ACTION_TOKENS

    def authorize(self, *, payment: ChargeRequest, idempotency_key: str) -> ChargeResult:
        faults = _apply_faults("authorize", self.name)
        token = payment.payment_method
        if token not in SUCCEEDING_TOKENS and token not in DECLINING_TOKENS and token not in ACTION_TOKENS:
            raise GatewayRequestError(f"No such payment method: '{token[:60]}'", code="resource_missing")
        decline_code, message = DECLINING_TOKENS.get(token, ("", ""))
        if decline_code:
            status = ChargeStatus.DECLINED
        elif token in ACTION_TOKENS or payment.three_d_secure:
            status = ChargeStatus.REQUIRES_ACTION
        elif payment.capture:
            status = ChargeStatus.SUCCEEDED
        else:
            status = ChargeStatus.AUTHORIZED
        charge = SimulatorCharge.create_once(
            idempotency_key=idempotency_key,
            defaults={
                "reference": new_public_id("sim_ch"),
                "flowpay_reference": payment.flowpay_reference,
                "payment_method": token,
                "amount": payment.amount,
                "amount_captured": payment.amount if status == ChargeStatus.SUCCEEDED else 0,
                "currency": payment.currency,
                "status": status,
                "decline_code": decline_code,
            },
        )
        if faults.timeout_after_charge:
            raise GatewayTimeout("simulator: injected lost response after the charge was made")
        return self._charge_result(charge, message)

    def capture(self, *, reference: str, amount: int, idempotency_key: str) -> OperationResult:
        faults = _apply_faults("capture", self.name)
        result = self._capture(reference=reference, amount=amount)
        if "capture" in faults.lost_responses:
            raise GatewayTimeout("simulator: injected lost response after the capture was made")
        return result

    def _capture(self, *, reference: str, amount: int) -> OperationResult:
        with transaction.atomic():
            charge = SimulatorCharge.objects.select_for_update().filter(reference=reference).first()
            if charge is None:
                raise GatewayRequestError(f"No such charge: '{reference}'", code="resource_missing")
            if charge.status == ChargeStatus.SUCCEEDED:
                return OperationResult(succeeded=True, reference=reference, amount=charge.amount_captured)
            if charge.status != ChargeStatus.AUTHORIZED:
                return OperationResult(
                    succeeded=False, reference=reference, error_code="charge_not_capturable",
                    message=f"This charge is {charge.status} and cannot be captured.",
                )
            if amount > charge.amount:
                raise GatewayRequestError("Capture amount exceeds the authorized amount.", code="amount_too_large")
            charge.status = ChargeStatus.SUCCEEDED
            charge.amount_captured = amount
            charge.save(update_fields=["status", "amount_captured"])
            return OperationResult(succeeded=True, reference=reference, amount=amount)

    def void(self, *, reference: str, idempotency_key: str) -> OperationResult:
        faults = _apply_faults("void", self.name)
        result = self._void(reference=reference)
        if "void" in faults.lost_responses:
            raise GatewayTimeout("simulator: injected lost response after the void was made")
        return result

    def _void(self, *, reference: str) -> OperationResult:
        with transaction.atomic():
            charge = SimulatorCharge.objects.select_for_update().filter(reference=reference).first()
            if charge is None:
                raise GatewayRequestError(f"No such charge: '{reference}'", code="resource_missing")
            if charge.status == ChargeStatus.CANCELED:
                return OperationResult(succeeded=True, reference=reference)
            if charge.status not in (ChargeStatus.AUTHORIZED, ChargeStatus.REQUIRES_ACTION):
                return OperationResult(
                    succeeded=False, reference=reference, error_code="charge_not_voidable",
                    message=f"This charge is {charge.status} and cannot be voided.",
                )
            charge.status = ChargeStatus.CANCELED
            charge.save(update_fields=["status"])
            return OperationResult(succeeded=True, reference=reference)

    def refund(self, *, reference: str, amount: int, idempotency_key: str) -> OperationResult:
        """A refund is its own record (status "refund") under the refund's idempotency key,
        so the same refund sent twice refunds once, as at a real PSP."""
        _apply_faults("refund", self.name)
        with transaction.atomic():
            charge = SimulatorCharge.objects.select_for_update().filter(reference=reference).first()
            if charge is None:
                raise GatewayRequestError(f"No such charge: '{reference}'", code="resource_missing")
            existing = SimulatorCharge.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                SimulatorCharge.objects.filter(pk=existing.pk).update(call_count=F("call_count") + 1)
                return OperationResult(succeeded=True, reference=existing.reference, amount=existing.amount)
            if charge.amount_refunded + amount > charge.amount_captured:
                raise GatewayRequestError("Refund exceeds the captured amount.", code="amount_too_large")
            refund = SimulatorCharge.objects.create(
                reference=new_public_id("sim_re"), idempotency_key=idempotency_key, flowpay_reference=charge.reference,
                payment_method=charge.payment_method, amount=amount, currency=charge.currency, status=ChargeStatus.REFUND,
            )
            charge.amount_refunded = F("amount_refunded") + amount
            charge.save(update_fields=["amount_refunded"])
            return OperationResult(succeeded=True, reference=refund.reference, amount=amount)

    # --- payouts (gateways.base.PayoutGateway) -------------------------------------------
    def payout(self, *, amount: int, currency: str, flowpay_reference: str, description: str,
               idempotency_key: str) -> PayoutResult:
        """Accepted at once and in transit; the same key again answers the same payout."""
        _apply_faults("payout", self.name)
        record = SimulatorCharge.create_once(
            idempotency_key=idempotency_key,
            defaults={
                "reference": new_public_id("sim_po"), "flowpay_reference": flowpay_reference, "payment_method": "bank_account",
                "amount": amount, "currency": currency, "status": ChargeStatus.PAYOUT_IN_TRANSIT,
            },
        )
        return self._payout_result(record)

    def fetch_payout(self, *, reference: str | None = None, idempotency_key: str | None = None) -> PayoutResult | None:
        """The payout's state; one in transit settles now: paid, or failed with the
        payout_failure fault (a read otherwise: no other fault applies)."""
        lookup = {"reference": reference} if reference else {"idempotency_key": idempotency_key} if idempotency_key else None
        if lookup is None:
            return None
        with transaction.atomic():
            record = SimulatorCharge.objects.select_for_update().filter(
                **lookup, status__in=PAYOUT_STATUSES).first()
            if record is None:
                return None
            if record.status == ChargeStatus.PAYOUT_IN_TRANSIT:
                failure = simulator_faults_get(self.name).payout_failure
                record.status = ChargeStatus.PAYOUT_FAILED if failure else ChargeStatus.PAYOUT_PAID
                record.decline_code = failure[:50]
                record.save(update_fields=["status", "decline_code"])
        return self._payout_result(record)

    @staticmethod
    def _payout_result(record: SimulatorCharge) -> PayoutResult:
        state = {ChargeStatus.PAYOUT_IN_TRANSIT: PayoutState.IN_TRANSIT, ChargeStatus.PAYOUT_PAID: PayoutState.PAID,
                 ChargeStatus.PAYOUT_FAILED: PayoutState.FAILED}[record.status]
        return PayoutResult(
            reference=record.reference, state=state, amount=record.amount, currency=record.currency,
            arrival_date=record.created_at.date(), failure_code=record.decline_code or None,
            failure_message="The bank returned the payout." if state == PayoutState.FAILED else "",
        )

    def find_refund(self, *, reference: str, idempotency_key: str) -> OperationResult | None:
        """The refund made on charge `reference` under `idempotency_key`, without making one;
        None when there is none (a read: no faults, no call counted)."""
        record = SimulatorCharge.objects.filter(
            status=ChargeStatus.REFUND, flowpay_reference=reference, idempotency_key=idempotency_key
        ).first()
        if record is None:
            return None
        return OperationResult(succeeded=True, reference=record.reference, amount=record.amount)

    def fetch(self, *, reference: str | None = None, idempotency_key: str | None = None) -> GatewayPayment | None:
        query = SimulatorCharge.objects.all()
        if reference:
            query = query.filter(reference=reference)
        elif idempotency_key:
            query = query.filter(idempotency_key=idempotency_key)
        else:
            return None
        charge = query.first()
        if charge is None:
            return None
        return GatewayPayment(
            reference=charge.reference, status=charge.status, amount=charge.amount,
            amount_captured=charge.amount_captured, currency=charge.currency,
            flowpay_reference=charge.flowpay_reference,
        )

    def describe_payment_method(self, *, token: str) -> PaymentMethodDetails | None:
        """A test card's details, from its token alone (no faults: a read that moves nothing)."""
        if not self.supports_payment_method(token):
            return None
        name = token.removeprefix("pm_card_").removeprefix("tok_").lower()
        brand = next((brand for brand in CARD_BRANDS if name.startswith(brand)), "visa")
        funding = "debit" if name.endswith("_debit") else "credit"
        # One fingerprint per card number: a token and its declining or 3-D Secure variants
        # are different test cards, hence different fingerprints.
        fingerprint = hashlib.sha256(f"simulator-card:{token}".encode()).hexdigest()[:16]
        return PaymentMethodDetails(fingerprint=fingerprint, brand=brand, funding=funding,
                                    country=CARD_COUNTRIES.get(token, "US"))

    def settlement_records(self, *, start: dt.datetime, end: dt.datetime) -> Iterator[SettlementRecord]:
        """Its settlement report, with any injected discrepancies (gateways.simulator.settlements);
        the injected faults apply as to any call (an outage makes the report unavailable)."""
        _apply_faults("settlement_records", self.name)
        return settlement_report(start=start, end=end, name=self.name)

    def verify_credentials(self) -> bool:
        return True

    def health_check(self) -> HealthStatus:
        started = time.perf_counter()
        faults = simulator_faults_get(self.name)
        SimulatorCharge.objects.exists()
        if faults.error_rate >= 1 or faults.timeout_rate >= 1:
            return HealthStatus(healthy=False, latency_ms=(time.perf_counter() - started) * 1000, detail="injected outage")
        return HealthStatus(healthy=True, latency_ms=(time.perf_counter() - started) * 1000 + faults.latency_ms)

    def parse_webhook(self, *, payload: bytes, headers) -> "WebhookEvent":
        raise WebhookVerificationError("the simulator gateway sends no webhooks")

    # --- internals ----------------------------------------------------------------
    @staticmethod
    def _charge_result(charge: SimulatorCharge, message: str) -> ChargeResult:
        if charge.status == ChargeStatus.DECLINED:
            return ChargeResult(
                outcome=Outcome.DECLINED, reference=charge.reference, amount=charge.amount,
                decline_code=charge.decline_code, message=message or "Your card was declined.",
            )
        if charge.status == ChargeStatus.REQUIRES_ACTION:
            return ChargeResult(
                outcome=Outcome.REQUIRES_ACTION, reference=charge.reference, amount=charge.amount,
                next_action={"type": "redirect_to_url", "url": f"https://simulator.invalid/3ds/{charge.reference}"},
            )
        return ChargeResult(
            outcome=Outcome.SUCCEEDED, reference=charge.reference, amount=charge.amount,
            amount_captured=charge.amount_captured,
        )
