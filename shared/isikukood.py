"""Estonian personal identification codes (isikukood): checksum and birth date."""

from __future__ import annotations

import datetime

from stdnum.ee import ik
from stdnum.exceptions import InvalidChecksum, InvalidLength, ValidationError


def is_valid(code: str) -> bool:
    """Tell whether the code has a valid checksum and a real birth date."""
    try:
        ik.validate(code)
    except ValidationError:
        return False
    return True


def birth_date(code: str) -> datetime.date:
    """Return the birth date the code carries."""
    return ik.get_birth_date(code)


def problem(code: str) -> str | None:
    """Why a typed code is not an isikukood: "characters" (only the digits 0–9), "length"
    (11 digits), "date" (no such birth date), "checksum"; None when it is one."""

    if not code or any(c not in "0123456789" for c in code):
        return "characters"  # str.isdigit would let Arabic-Indic and other digits through
    if len(code) != 11:
        return "length"
    try:
        ik.validate(code)
    except InvalidLength:
        return "length"
    except InvalidChecksum:
        return "checksum"
    except ValidationError:
        return "date"
    return None
