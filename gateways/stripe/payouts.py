"""Payouts through Stripe's Payouts API (gateways.base.PayoutGateway): from the Stripe
balance to the bank account on file, under FlowPay's idempotency key, with FlowPay's payout
id and key in the metadata so that a payout whose answer was lost can be found again.

localstripe implements the Payouts API (create, retrieve, list, cancel) for EUR only and
never moves a payout on by itself (it stays `pending`, which FlowPay reads as in transit):
the tests move it to `paid` or `failed` as Stripe would, by updating it at localstripe.
"""

from __future__ import annotations

import stripe

from gateways.base import PayoutResult
from gateways.credentials import GatewayCredentials
from gateways.stripe.client import is_missing, stripe_error
from gateways.stripe.mapping import METADATA_IDEMPOTENCY_KEY, METADATA_PAYOUT, payout_result, plain

# How many recent payouts the look-up by idempotency key reads.
PAYOUT_SCAN_LIMIT = 200


def create_payout(client: stripe.StripeClient, creds: GatewayCredentials, *, amount: int, currency: str,
                  flowpay_reference: str, description: str, idempotency_key: str) -> PayoutResult:
    params: dict = {
        "amount": amount, "currency": currency.lower(),
        "metadata": {METADATA_PAYOUT: flowpay_reference, METADATA_IDEMPOTENCY_KEY: idempotency_key},
    }
    if description:
        params["description"] = description[:500]
    try:
        payout = client.v1.payouts.create(params=params, options={"idempotency_key": idempotency_key})
    except stripe.StripeError as exc:
        raise stripe_error(exc, operation="payout", creds=creds, money_moving=True, idempotency_key=idempotency_key) from exc
    return payout_result(plain(payout))


def find_payout(client: stripe.StripeClient, creds: GatewayCredentials, *, reference: str | None,
                idempotency_key: str | None) -> PayoutResult | None:
    try:
        if reference:
            try:
                return payout_result(plain(client.v1.payouts.retrieve(reference)))
            except stripe.InvalidRequestError as exc:
                if is_missing(exc):
                    return None
                raise
        if not idempotency_key:
            return None
        listed = client.v1.payouts.list(params={"limit": 100})
        for scanned, item in enumerate(listed.auto_paging_iter(), start=1):
            payout = plain(item)
            if (payout.get("metadata") or {}).get(METADATA_IDEMPOTENCY_KEY) == idempotency_key:
                return payout_result(payout)
            if scanned >= PAYOUT_SCAN_LIMIT:
                break
    except stripe.StripeError as exc:
        raise stripe_error(exc, operation="fetch_payout", creds=creds, money_moving=False) from exc
    return None
