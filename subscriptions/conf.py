"""Subscription settings with their defaults (flowpay/settings.py reads them from the
environment; these functions read them at call time so tests can override them)."""

import datetime as dt

from django.conf import settings

DEFAULT_HARD_DECLINE_CODES = (
    "card_declined", "expired_card", "fraudulent", "incorrect_number", "incorrect_cvc", "invalid_account",
    "lost_card", "stolen_card", "pickup_card", "restricted_card", "do_not_honor", "account_closed",
    "card_not_supported", "currency_not_supported", "transaction_not_allowed", "new_account_information_available",
)


def _setting(name: str, default):
    return getattr(settings, name, default)


def dunning_schedule_days() -> list[int]:
    """Days after the first failed charge of an invoice at which it is retried."""
    raw = _setting("FLOWPAY_DUNNING_SCHEDULE_DAYS", "1,3,5,7")
    values = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    days = sorted(int(str(v).strip()) for v in values if str(v).strip())
    if not days or days[0] < 0:
        raise ValueError("FLOWPAY_DUNNING_SCHEDULE_DAYS must list non-negative days, e.g. 1,3,5,7")
    return days


def hard_decline_codes() -> frozenset[str]:
    return frozenset(_setting("FLOWPAY_DUNNING_HARD_DECLINE_CODES", DEFAULT_HARD_DECLINE_CODES))


def lease_duration() -> dt.timedelta:
    return dt.timedelta(seconds=float(_setting("FLOWPAY_REBILL_LEASE_SECONDS", 60)))


def heartbeat_interval() -> float:
    return float(_setting("FLOWPAY_REBILL_HEARTBEAT_SECONDS", 10))


def batch_size() -> int:
    return max(1, int(_setting("FLOWPAY_REBILL_BATCH_SIZE", 100)))


def max_attempts() -> int:
    """Non-payment failures (exceptions, bad data, stale leases) before a job is dead."""
    return max(1, int(_setting("FLOWPAY_REBILL_MAX_ATTEMPTS", 5)))


def error_retry_delay(error_count: int) -> dt.timedelta:
    """Backoff after the n-th non-payment failure: base·2^(n-1), at most an hour."""
    base = float(_setting("FLOWPAY_REBILL_RETRY_SECONDS", 60))
    return dt.timedelta(seconds=min(3600.0, base * 2 ** max(0, error_count - 1)))


def queue_prefix() -> str:
    """Prepended to the rebill queue names when dispatching (tests use a private queue)."""
    return str(_setting("FLOWPAY_REBILL_QUEUE_PREFIX", ""))


def max_parallel_per_shard() -> int:
    """Drain messages sent at most per (queue, merchant) shard in one dispatch."""
    return max(1, int(_setting("FLOWPAY_REBILL_MAX_PARALLEL_PER_SHARD", 4)))
