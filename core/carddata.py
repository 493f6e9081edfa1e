"""Detection of card numbers (PANs) in untrusted input.

FlowPay accepts payment-method tokens only. Anything that looks like a card number is
refused wherever it appears. Callers must never echo or log the matched text.

Rules, applied to text after normalisation:
- Normalisation: Unicode NFKC (fullwidth, mathematical and circled digits become ASCII),
  every other Unicode decimal digit (Arabic-Indic, Devanagari, ...) folded to its ASCII
  digit, and format characters (zero-width spaces and joiners, BOM, soft hyphen) removed.
- A card number is 13 to 19 digits (leading zeros aside: PANs never start with 0, and
  zeros in front do not change the Luhn check) passing the Luhn check, written as one run
  or as digit groups joined by separators: any run of one to three characters that are neither letters
  nor digits (spaces, dashes of any kind, dots, slashes, underscores, commas, tabs,
  newlines, non-breaking spaces...). Any contiguous sequence of groups is a candidate, so a
  PAN followed by an expiry ("4242 4242 4242 4242 12/25") is still caught, while one
  unbroken run of 20 or more digits (an order number) is not a card number.
- A calendar date, with or without a time of day ("2025-01-31", "2025-01-31 12:00:00.5"),
  is not part of a card number: its digits join no candidate (dates are common in metadata
  and would otherwise pass the Luhn check one time in ten).
- In parsed JSON a number is a card number when its integer value is one (a PAN sent as
  4242424242424242 or as 4.242424242424242e15), or when its significant digits are
  (4.242424242424242). The digit runs of a number are not searched otherwise: a float
  with a long mantissa that fails the Luhn check is an ordinary number.
"""

import functools
import re
import unicodedata
from decimal import Decimal
from typing import Any

MIN_DIGITS, MAX_DIGITS = 13, 19

# Digit groups joined by separators of one to three non-alphanumeric characters.
_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9]+(?:[\W_]{1,3}[0-9]+)*")
_DIGIT_GROUP = re.compile(r"[0-9]+")
_DATE_TIME = re.compile(
    r"(?<![0-9])(?:19|20)[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.,][0-9]{1,9})?)?)?(?![0-9])"
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def is_card_digits(digits: str) -> bool:
    """A string of ASCII digits that is a card number by length and Luhn check."""
    digits = digits.lstrip("0")
    return MIN_DIGITS <= len(digits) <= MAX_DIGITS and luhn_valid(digits)


@functools.lru_cache(maxsize=4096)
def _fold(char: str) -> str:
    """One non-ASCII character as the detector reads it."""
    if unicodedata.category(char) == "Cf":
        return ""
    folded = unicodedata.normalize("NFKC", char)
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() and not c.isascii() else c for c in folded)


def _normalised(text: str) -> tuple[str, list[int] | None]:
    """The text as the detector reads it, and for each of its characters the index of the
    original character it comes from (None when they are the same)."""
    if text.isascii():
        return text, None  # ASCII is already in NFKC with ASCII digits
    pieces, origin = [], []
    for index, char in enumerate(text):
        piece = char if char.isascii() else _fold(char)
        pieces.append(piece)
        origin.extend([index] * len(piece))
    return "".join(pieces), origin


def _without_dates(text: str) -> str:
    # Same length, so offsets still match: the letters break any digit run.
    return _DATE_TIME.sub(lambda match: "d" * len(match.group()), text) if "-" in text else text


def _card_spans(text: str):
    """(start, end) in `text`, already normalised, of each card number, not overlapping."""
    for run in _DIGIT_RUN.finditer(_without_dates(text)):
        groups = [(g.start() + run.start(), g.end() + run.start()) for g in _DIGIT_GROUP.finditer(run.group())]
        first = 0
        while first < len(groups):
            digits, found = "", None
            for last in range(first, len(groups)):
                start, end = groups[last]
                digits += text[start:end]
                if len(digits.lstrip("0")) > MAX_DIGITS:
                    break
                if is_card_digits(digits):
                    found = last
                    break
            if found is None:
                first += 1
                continue
            yield groups[first][0], groups[found][1]
            first = found + 1


def contains_card_number(text: str) -> bool:
    normalised, _ = _normalised(text)
    return next(_card_spans(normalised), None) is not None


def mask_card_numbers(text: str, replacement: str = "[card number removed]") -> str:
    normalised, origin = _normalised(text)
    spans = list(_card_spans(normalised))
    if origin is not None:
        spans = [(origin[start], origin[end - 1] + 1) for start, end in spans]
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def number_is_card_number(value: int | float | Decimal) -> bool:
    """A JSON number that is a card number: see the module's rules."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return is_card_digits(str(abs(value)))
    number = Decimal(repr(value)) if isinstance(value, float) else value
    if not number.is_finite():
        return False
    if abs(number) < 10**MAX_DIGITS and number == number.to_integral_value() and is_card_digits(str(abs(int(number)))):
        return True
    significant = "".join(map(str, number.as_tuple().digits)).strip("0")
    return is_card_digits(significant)


def find_card_number_path(data: Any, path: str = "") -> str | None:
    """The dotted path of the first value (or key) in parsed JSON that carries a card
    number, '' for the top level, None when there is none."""
    if isinstance(data, dict):
        for key, value in data.items():
            child = f"{path}.{key}" if path else str(key)
            if contains_card_number(str(key)):
                return path or ""
            found = find_card_number_path(value, child)
            if found is not None:
                return found
        return None
    if isinstance(data, list):
        for index, value in enumerate(data):
            found = find_card_number_path(value, f"{path}[{index}]")
            if found is not None:
                return found
        # A PAN split across the items of a list (["4242", "4242", ...] or [4242, 4242, ...]).
        joined = " ".join(str(v) for v in data if isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)))
        return path if joined and contains_card_number(joined) else None
    if isinstance(data, str):
        return path if contains_card_number(data) else None
    if isinstance(data, (int, float, Decimal)) and number_is_card_number(data):
        return path
    return None
