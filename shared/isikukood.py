"""Estonian personal identification codes (isikukood): checksum and birth date."""

from __future__ import annotations

import datetime

from stdnum.ee import ik
from stdnum.exceptions import ValidationError


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
