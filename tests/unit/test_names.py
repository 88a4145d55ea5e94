"""Comparing personal data for linking: names after NFC, whitespace and case folding; õ is not o."""

from __future__ import annotations

import datetime as dt
import unicodedata

import pytest

from idp.models import Person
from idp.people.linking import contact_choices, differences
from shared.names import normalise, same_name


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Jüri", "JÜRI"),
        ("  Mari   Liis ", "mari liis"),
        ("Õunapuu", unicodedata.normalize("NFD", "Õunapuu")),  # composed and decomposed õ
        ("Mari-Liis", "MARI-LIIS"),
        ("Straße", "STRASSE"),  # case folding, not lower-casing
    ],
)
def test_the_same_name_in_other_spellings(a: str, b: str) -> None:
    assert same_name(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Õunapuu", "Ounapuu"),
        ("Mägi", "Magi"),
        ("Šeremet", "Seremet"),
        ("Mari Liis", "Mari-Liis"),
        ("Mari", "Marii"),
    ],
)
def test_different_names_stay_different(a: str, b: str) -> None:
    assert not same_name(a, b)


def test_normalise_collapses_whitespace_and_keeps_letters() -> None:
    assert normalise(" Tiina\t\u00a0Õunapuu\n") == "tiina õunapuu"


def person(**data: object) -> Person:
    base: dict[str, object] = {
        "given_name": "Jüri",
        "family_name": "Mägi",
        "isikukood": "38001085718",
        "birth_date": dt.date(1980, 1, 8),
    }
    base.update(data)
    return Person(**base)


def test_matching_data_have_no_differences() -> None:
    assert differences(person(), person(given_name=" JÜRI", family_name="mägi")) == []


def test_a_missing_code_or_birth_date_is_not_a_difference() -> None:
    assert differences(person(isikukood=None, birth_date=None), person()) == []


def test_each_differing_field_is_named() -> None:
    assert differences(person(), person(isikukood="38001085729")) == ["isikukood"]
    assert differences(person(), person(given_name="Juri", family_name="Magi")) == [
        "given_name",
        "family_name",
    ]
    assert differences(person(), person(birth_date=dt.date(1980, 1, 9))) == ["birth_date"]


def test_only_contact_details_both_have_and_that_differ_are_a_choice() -> None:
    mine = person(email="Juri@Example.ee", phone="+372 5555 0000")
    assert contact_choices(mine, person(email="juri@example.ee", phone=None)) == {}
    assert contact_choices(mine, person(email="jyri@example.ee", phone="+372 5555 0001")) == {
        "email": ("Juri@Example.ee", "jyri@example.ee"),
        "phone": ("+372 5555 0000", "+372 5555 0001"),
    }
