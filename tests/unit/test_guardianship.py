"""Matching an applicant to a child's known guardians: only the confirmed e-mail against the
school's record of it; a name alone is a name-only warning; look-alike letters never fold."""

from __future__ import annotations

import pytest

from school_instance.diary.guardianship import Match, comparable_address, match_guardian
from school_instance.models import Member


def _guardian(given: str, family: str, email: str | None) -> Member:
    return Member(given_name=given, family_name=family, email=email, roles=["parent"])


def _applicant(email: str, given: str = "Olga", family: str = "Šmidt") -> dict[str, str]:
    return {"email": email, "given_name": given, "family_name": family}


@pytest.mark.parametrize("recorded", ["olga@example.ee", " OLGA@Example.EE ", "Olga@example.ee"])
def test_the_same_address_as_recorded_is_verified(recorded: str) -> None:
    found = match_guardian([_guardian("O.", "S.", recorded)], _applicant("olga@example.ee"))
    assert found.match is Match.VERIFIED and found.named == []


def test_a_known_guardians_name_with_another_address_is_name_only() -> None:
    real = _guardian("Olga", "ŠMIDT", "olga.real@example.ee")
    other = _guardian("Igor", "Šmidt", "igor@example.ee")
    found = match_guardian([real, other], _applicant("impostor@example.ee", " olga ", "šmidt"))
    assert found.match is Match.NAME_ONLY and found.named == [real]


@pytest.mark.parametrize(
    ("guardians", "applicant"),
    [
        ([], _applicant("olga@example.ee")),
        ([_guardian("Igor", "Šmidt", "igor@example.ee")], _applicant("olga@example.ee")),
        ([_guardian("Olga", "Smidt", None)], _applicant("olga@example.ee")),  # Šmidt ≠ Smidt
        ([_guardian("Olga", "Šmidt", None)], _applicant("", "Igor")),  # no address is no match
        ([_guardian("Olga", "Šmidt", "")], _applicant("  ", "Igor")),
    ],
)
def test_anything_else_is_not_a_known_guardian(
    guardians: list[Member], applicant: dict[str, str]
) -> None:
    assert match_guardian(guardians, applicant).match is Match.NONE


def test_a_look_alike_letter_does_not_fold_onto_a_recorded_address() -> None:
    # KELVIN SIGN lower-cases to "k" with str.lower(): it must not match kati@….
    assert comparable_address("\u212aati@example.ee") != comparable_address("kati@example.ee")
    found = match_guardian(
        [_guardian("Kati", "Kask", "kati@example.ee")],
        _applicant("\u212aati@example.ee", "Mari", "Maasikas"),
    )
    assert found.match is Match.NONE
