"""Password rules: length, popular passwords (the list and zxcvbn), the owner's own name,
e-mail and isikukood, each refused with its reason."""

from __future__ import annotations

import pytest

from idp.people.passwords import Owner, fold, reason, refusal

OWNER = Owner(
    given_name="Tiina-Mari",
    family_name="Õunapuu",
    email="tiina.oun@example.ee",
    isikukood="49001010007",
)


@pytest.mark.parametrize(
    "password",
    [
        "Kass jalutas mööda katust",
        "mets-kask-7f3a9c2e11",
        "Laagri kooli spordisaal avati 2019",
        "ühe-pika-lause-parool-ÕÄÖÜ",
    ],
)
def test_strong_passwords_pass(password):
    assert refusal(password, OWNER, 10) is None


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("lühike1", "too_short"),
        ("x" * 9, "too_short"),
        ("a" * 1025, "too_long"),
        # The Estonian and Russian favourites from the list, with digits and signs around them.
        ("parool12345", "popular"),
        ("Salasõna2024", "popular"),
        ("SALASONA!!!!", "popular"),
        ("Tallinn2024!", "popular"),
        ("qwerty123456", "popular"),
        ("пароль12345", "popular"),
        ("йцукенгшщзхъ", "popular"),
        ("ЙЦУКЕН-2024", "popular"),
        # zxcvbn's own list of leaked passwords.
        ("password1234", "popular"),
        ("1q2w3e4r5t6y", "popular"),
        # Not from a list, but guessed at once.
        ("aaaaaaaaaaaa", "weak"),
        ("abcdefghijkl", "weak"),
    ],
)
def test_popular_and_weak_passwords_are_refused(password, code):
    assert refusal(password, OWNER, 10) == code


@pytest.mark.parametrize(
    "password",
    [
        "Õunapuu kasvab aias",  # as written
        "ÕUNAPUU kasvab aias",  # upper case
        "ounapuu kasvab aias",  # without the diacritic
        "OUNAPUU-on-perenimi",  # both
        "minu nimi on tiina!!",  # the first part of a double given name
        "Mari armastab matemaatikat",
    ],
)
def test_own_name_is_refused_in_any_case_and_without_diacritics(password):
    assert refusal(password, OWNER, 10) == "name"


def test_email_and_isikukood_are_refused():
    owner = Owner("Jaan", "Tamm", "postkast.kodus@example.ee", "39001010008")
    assert refusal("postkast.kodus@example.ee", owner, 10) == "email"
    assert refusal("POSTKAST.KODUS-2024", owner, 10) == "email"
    assert refusal("x39001010008y", owner, 10) == "isikukood"
    assert refusal("390-0101-0008-abc", owner, 10) == "isikukood"


def test_short_name_parts_do_not_refuse_ordinary_words():
    owner = Owner("Ly", "Oja", None, None)
    assert refusal("Lyhike jutt Ojast ei ole", owner, 10) == "name"  # "oja" is three letters
    assert refusal("Lyyriline luuletus sügisest", owner, 10) is None


def test_the_minimum_length_is_the_configured_one():
    assert refusal("Kass jalutas", OWNER, 20) == "too_short"
    assert refusal("Kass jalutas", OWNER, 10) is None


def test_folding_drops_diacritics_and_case():
    assert fold("ÕÄÖÜŠŽ õäöüšž") == "oaousz oaousz"
    assert fold("Õunapuu") == "ounapuu"
    assert fold("ŠOKOLAAD Žürii") == "sokolaad zurii"


def test_every_refusal_has_an_estonian_reason(idp_app):
    codes = ["too_short", "too_long", "name", "email", "isikukood", "popular", "weak"]
    with idp_app.test_request_context(headers={"Accept-Language": "et"}):
        texts = {code: reason(code, 10) for code in codes}
    assert texts["too_short"] == "Parool peab olema vähemalt 10 märki pikk."
    assert texts["name"] == "Parool ei tohi sisaldada sinu ees- ega perekonnanime."
    assert texts["email"] == "Parool ei tohi sisaldada sinu e-posti aadressi."
    assert texts["isikukood"] == "Parool ei tohi sisaldada sinu isikukoodi."
    assert "levinud parool" in texts["popular"]
    assert "liiga lihtne ära arvata" in texts["weak"]
    assert len(set(texts.values())) == len(codes)


RUSSIAN = Owner(given_name="Жанна", family_name="Хрущёва", email="zhanna@example.ee")
ESTONIAN = Owner(given_name="Žanna", family_name="Šmidt-Männik", email="z@example.ee")


@pytest.mark.parametrize(
    ("owner", "password"),
    [
        # A Cyrillic name, in Cyrillic or in either Latin transliteration, any case.
        (RUSSIAN, "жанна любит весну"),
        (RUSSIAN, "Zhanna armastab kevadet"),
        (RUSSIAN, "ZANNA armastab kevadet"),
        (RUSSIAN, "kevad-khrushchyova-aias"),
        (RUSSIAN, "kevad-hrustsjova-aias"),
        # A Latin name with š/ž/ä, written with or without them, or in Cyrillic.
        (ESTONIAN, "zanna armastab kevadet"),
        (ESTONIAN, "SMIDT armastab kevadet"),
        (ESTONIAN, "kevadine mannik metsas"),
        (ESTONIAN, "кевад шмидт аиас 2026"),
    ],
)
def test_own_names_refused_in_any_script(owner, password):
    assert refusal(password, owner, 10) == "name"


def test_a_4000_character_password_is_refused_fast():
    import time

    started = time.perf_counter()
    assert refusal("Kass jalutas " * 308, OWNER, 10) == "too_long"
    assert time.perf_counter() - started < 0.05  # no estimating, no hashing


def test_argon2_takes_the_whole_password():
    from idp.people.accounts import HASHER, MAX_PASSWORD_LENGTH

    assert MAX_PASSWORD_LENGTH >= 256
    base = "õ" * 40  # 80 bytes in UTF-8: bcrypt would cut at 72 and see equal passwords
    stored = HASHER.hash(base + "A")
    assert HASHER.verify(stored, base + "A")
    with pytest.raises(Exception, match="not match"):
        HASHER.verify(stored, base + "B")
