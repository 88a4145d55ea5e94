"""Name normalisation for comparing personal data: Unicode NFC, whitespace and case folding."""

from __future__ import annotations

import unicodedata


def normalise(name: str) -> str:
    """Return the comparable form of a name; õ stays õ (no accent stripping)."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def same_name(a: str, b: str) -> bool:
    """Tell whether two spellings are the same name after normalisation (Mägi ≠ Magi)."""
    return normalise(a) == normalise(b)
