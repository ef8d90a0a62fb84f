"""Numbers read from what a caller sends (query values, headers): ASCII digits only.

`str.isdigit` is true of superscripts (`²`), and `int()` takes other scripts' digits, underscores,
spaces and signs: a check with one and a conversion with the other answered 500. One parser, used
wherever a number comes from outside.
"""

from __future__ import annotations

import re
from typing import Any, Final

#: How deep arrays and objects may nest in what a caller sends (and so in what is shown of it).
MAX_DEPTH: Final = 64

_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")  # `[0-9]`, not `\d`: `\d` is any script's digit


def ascii_integer(text: str | None, lowest: int = 0, highest: int = 2**63 - 1) -> int | None:
    """The integer `text` spells in ASCII digits, if it is one within [lowest, highest]; else None."""
    if text is None or not _ASCII_DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if lowest <= value <= highest else None


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels (level by level, not recursing)."""
    level, depth = [value], 0
    while containers := [item for item in level if isinstance(item, (dict, list))]:
        depth += 1
        if depth > limit:
            return True
        level = [inner for c in containers for inner in (c.values() if isinstance(c, dict) else c)]
    return False
