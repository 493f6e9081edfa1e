"""Redaction of audit details: secrets and anything that looks like card data never
reach the log."""

from typing import Any

from core.carddata import contains_card_number
from core.storable import storable_text

SECRET_KEY_FRAGMENTS = ("password", "secret", "token", "api_key", "apikey", "cvc", "cvv", "card_number", "pan")
REDACTED = "[redacted]"


def _storable(text: str) -> str:
    # PostgreSQL cannot store NUL characters in text or jsonb, nor UTF-8 a lone surrogate.
    return storable_text(text)


def redact(value: Any, *, key: str | None = None) -> Any:
    if key is not None and any(fragment in key.lower() for fragment in SECRET_KEY_FRAGMENTS):
        return REDACTED
    if isinstance(value, dict):
        return {_storable(str(k)): redact(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str) and contains_card_number(value):
        return REDACTED
    if isinstance(value, str):
        return _storable(value)
    if isinstance(value, int) and not isinstance(value, bool) and contains_card_number(str(value)):
        return REDACTED
    return value
