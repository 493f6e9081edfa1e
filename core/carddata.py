"""Detection of card numbers (PANs) in untrusted input.

FlowPay accepts payment-method tokens only. Anything that looks like a card number, i.e.
13 to 19 digits, optionally grouped with spaces or dashes, that passes the Luhn check, is
refused wherever it appears. Callers must never echo or log the matched text.
"""

import re
from typing import Any

# A run of digit groups joined by single spaces or dashes ("4242 4242-4242 4242").
_DIGIT_RUN = re.compile(r"(?<!\d)\d+(?:[ \-]\d+)*(?!\d)")


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


def _card_spans(text: str):
    """(start, end) of every 13-19 digit group sequence in `text` that passes Luhn."""
    for match in _DIGIT_RUN.finditer(text):
        groups = re.split(r"[ \-]", match.group())
        offsets, position = [], match.start()
        for group in groups:
            offsets.append(position)
            position += len(group) + 1
        for first in range(len(groups)):
            digits = ""
            for last in range(first, len(groups)):
                digits += groups[last]
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and luhn_valid(digits):
                    yield offsets[first], offsets[last] + len(groups[last])
                    break


def mask_card_numbers(text: str, replacement: str = "[card number removed]") -> str:
    spans = list(_card_spans(text))
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def contains_card_number(text: str) -> bool:
    # Any contiguous sequence of groups holding 13-19 digits is a candidate, so a PAN
    # followed by an expiry ("4242 4242 4242 4242 12/25") is still caught, while one
    # unbroken run of 20+ digits (an order number) is not a card number.
    for match in _DIGIT_RUN.finditer(text):
        groups = re.split(r"[ \-]", match.group())
        for first in range(len(groups)):
            digits = ""
            for group in groups[first:]:
                digits += group
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and luhn_valid(digits):
                    return True
    return False


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
        return None
    if isinstance(data, bool) or data is None:
        return None
    if isinstance(data, (int, float, str)) and contains_card_number(str(data)):
        return path
    return None
