"""The catalogues of both apps, and the check that a rendering speaks only its own language."""

from __future__ import annotations

import re
from functools import cache
from html import unescape
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
APPS = ("idp", "school_instance")
LANGS = ("et", "ru", "en")
WORD = re.compile(r"[^\W\d_]{4,}")
# Names, not words of a language: they stay as they are in every language.
NAMES = {"stuudium", "smart", "mobiil", "example", "mari", "eesti", "русский", "english"}


def po_path(app: str, lang: str) -> Path:
    return ROOT / app / "translations" / lang / "LC_MESSAGES" / "messages.po"


@cache
def catalogue(app: str, lang: str) -> Catalog:
    with po_path(app, lang).open("rb") as f:
        return read_po(f, locale=lang)


def words(text: str) -> set[str]:
    """The words of a text (four letters or more, case-folded, placeholders dropped)."""
    return {w.casefold() for w in WORD.findall(re.sub(r"%\(\w+\)[sd]", " ", text))}


@cache
def texts(lang: str) -> tuple[str, ...]:
    """Every text of both apps in lang (Estonian: the msgids)."""
    found: list[str] = []
    for app in APPS:
        for message in catalogue(app, lang):
            if message.id:
                found.append(str(message.id) if lang == "et" else str(message.string))
    return tuple(found)


@cache
def only_in(lang: str) -> frozenset[str]:
    """Words only lang's texts use: seen in another rendering, they are a leak of lang."""
    own = set().union(*(words(t) for t in texts(lang)))
    others = set().union(*(words(t) for other in LANGS if other != lang for t in texts(other)))
    return frozenset(own - others - NAMES)


def visible_text(html: str) -> str:
    """What a person reads on a page: no tags, scripts, styles or the language switch (whose
    language names are meant to be in their own languages)."""
    html = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", html)
    html = re.sub(r'(?s)<form class="lang-switch".*?</form>', " ", html)
    attrs = " ".join(re.findall(r'(?:title|alt|placeholder|aria-label)="([^"]*)"', html))
    return unescape(re.sub(r"<[^>]+>", " ", html) + " " + attrs)


def leaks(
    text: str, lang: str, data_words: frozenset[str] | set[str] = frozenset()
) -> dict[str, set[str]]:
    """Words of the other languages' texts found in a rendering meant to be in lang."""
    found = words(text) - {w.casefold() for w in data_words}
    return {
        other: set(found & only_in(other))
        for other in LANGS
        if other != lang and found & only_in(other)
    }
