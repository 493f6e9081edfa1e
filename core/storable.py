"""Text that cannot be stored: NUL characters (PostgreSQL's text and jsonb refuse them) and
lone surrogates (U+D800-U+DFFF; JSON can spell them as escapes, UTF-8 cannot encode them).

Input that carries them is refused at the edge with a 400 (a view never gets to a database
write that would fail with a 500); text FlowPay writes itself about refused input (audit
details) has them replaced."""

import re
from typing import Any

NUL_OR_SURROGATE = re.compile("[\x00\ud800-\udfff]")
SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def storable_text(text: str) -> str:
    return NUL_OR_SURROGATE.sub(REPLACEMENT, text)


def unstorable_path(data: Any, *, pattern: re.Pattern = NUL_OR_SURROGATE, path: str = "") -> str | None:
    """The dotted path of the first string (or key) in parsed JSON that `pattern` matches:
    '' for the top level (or a key at the top level), None when there is none. Keys are named
    only when they are storable themselves (the path is echoed in errors)."""
    if isinstance(data, str):
        return path if pattern.search(data) else None
    if isinstance(data, dict):
        for key, value in data.items():
            key = str(key)
            if pattern.search(key):
                return path
            found = unstorable_path(value, pattern=pattern, path=f"{path}.{key}" if path else key)
            if found is not None:
                return found
    elif isinstance(data, (list, tuple)):
        for index, value in enumerate(data):
            found = unstorable_path(value, pattern=pattern, path=f"{path}[{index}]")
            if found is not None:
                return found
    return None
