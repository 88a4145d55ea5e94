"""Reading what a person typed into a form, with messages in plain Estonian."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from flask_babel import gettext as _


class Form:
    """The values of a submitted form (kept for re-rendering) and the problems found."""

    def __init__(self, data: Mapping[str, str] | None = None) -> None:
        self.values: dict[str, str] = {k: (v or "").strip() for k, v in (data or {}).items()}
        self.errors: dict[str, str] = {}

    def get(self, name: str, default: str = "") -> str:
        """What was typed in a field."""
        return self.values.get(name, default)

    @property
    def ok(self) -> bool:
        """Whether no problems were found."""
        return not self.errors

    def text(self, name: str, missing: str, max_len: int, required: bool = True) -> str:
        """A text field; empty is an error when required."""
        value = self.get(name)
        if required and not value:
            self.errors[name] = missing
        elif len(value) > max_len:
            self.errors[name] = _("Liiga pikk: kuni %(n)s märki.", n=max_len)
        return value

    def date(self, name: str, required: bool = True) -> dt.date | None:
        """A date field, as 2026-03-05 (the date picker) or 05.03.2026 (typed)."""
        value = self.get(name)
        if not value:
            if required:
                self.errors[name] = _("Kirjuta kuupäev.")
            return None
        parsed = parse_date(value)
        if parsed is None:
            self.errors[name] = _(
                "Kuupäev ei ole korrektne. Kirjuta see kujul pp.kk.aaaa, näiteks 05.03.2026."
            )
        return parsed

    def choice(self, name: str, allowed: Mapping[int, object], missing: str) -> int | None:
        """An id chosen from a list; anything not on the list is an error."""
        value = self.get(name)
        if value.isdigit() and int(value) in allowed:
            return int(value)
        self.errors[name] = missing
        return None


def parse_date(value: str) -> dt.date | None:
    """Read an ISO or Estonian date; None when it is not a real date."""
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            parsed = dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
        return parsed if 1990 <= parsed.year <= 2100 else None
    return None
