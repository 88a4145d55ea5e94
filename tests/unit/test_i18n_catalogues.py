"""The catalogues: every text of the sources is in them, Russian and English translate every
message (none fuzzy, the same placeholders), and the compiled .mo files are the .po files."""

from __future__ import annotations

import re

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo

from tests.i18n_support import APPS, LANGS, ROOT, catalogue, only_in, po_path

METHODS = [
    ("**/templates/**.html", "jinja2"),
    ("**/templates/mail/**.txt", "jinja2"),
    ("**.py", "python"),
]
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def _source_ids(app: str) -> set[str]:
    found: set[str] = set()
    for folder in (app, "shared"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / folder, METHODS, keywords={"_": None, "gettext": None}
        ):
            if isinstance(message, str) and message:
                found.add(message)
    return found


@pytest.mark.parametrize("app", APPS)
def test_every_text_of_the_sources_is_in_every_catalogue(app):
    sources = _source_ids(app)
    assert len(sources) > 100
    for lang in LANGS:
        ids = {str(m.id) for m in catalogue(app, lang) if m.id}
        assert not sources - ids, f"{app}/{lang}: run `make messages`: {sorted(sources - ids)[:5]}"


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_russian_and_english_translate_every_message(app, lang):
    messages = [m for m in catalogue(app, lang) if m.id]
    untranslated = [m.id for m in messages if not m.string]
    fuzzy = [m.id for m in messages if m.fuzzy]
    assert not untranslated and not fuzzy, (untranslated[:5], fuzzy[:5])
    for m in messages:
        assert sorted(PLACEHOLDER.findall(str(m.id))) == sorted(
            PLACEHOLDER.findall(str(m.string))
        ), (lang, m.id, m.string)
        assert m.string != m.id or len(str(m.id).split()) == 1, (lang, m.id)


def test_russian_speaks_to_parents_politely():
    """As the guide for parents does: «Вы», never «ты»."""
    for app in APPS:
        for m in catalogue(app, "ru"):
            assert not re.search(
                r"\b(ты|тебя|тебе|твой|твоя|твои|твоё)\b", str(m.string), re.IGNORECASE
            ), m.string


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("lang", LANGS)
def test_the_compiled_catalogues_are_the_po_files(app, lang):
    with po_path(app, lang).with_suffix(".mo").open("rb") as f:
        compiled = {str(m.id): str(m.string) for m in read_mo(f) if m.id}
    written = {str(m.id): str(m.string) for m in catalogue(app, lang) if m.id and m.string}
    assert compiled == written, "run `make messages` (it compiles the .mo files)"


def test_each_language_has_words_of_its_own_to_tell_a_leak_by():
    assert {"parool", "kool"} <= only_in("et")
    assert {"пароль", "школа"} & only_in("ru") and {"password", "school"} <= only_in("en")
