"""Phone numbers as people type them: digits, an optional leading +, spaces, dashes, brackets."""

from __future__ import annotations

import re

_PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()-]{4,38}$")


def is_phone(value: str) -> bool:
    """Whether value looks like a phone number (checked loosely: schools correct typos)."""
    return bool(_PHONE_RE.match(value))
