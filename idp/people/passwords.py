"""Password rules: long enough, not popular (a list and zxcvbn's estimate), not the person's
own name, e-mail or isikukood."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from flask_babel import gettext as _
from zxcvbn import zxcvbn
from zxcvbn.matching import add_frequency_lists

from idp.people.accounts import MAX_PASSWORD_LENGTH

MAX_LENGTH = MAX_PASSWORD_LENGTH  # no upper limit below it, and nothing is ever truncated
MIN_SCORE = 3  # zxcvbn: at least 10^8 guesses
_ESTIMATED_LENGTH = 72  # zxcvbn's own limit; a longer passphrase is judged by its start
_LIST = Path(__file__).parent.parent / "data" / "popular_passwords.txt"
_AROUND = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_WORDS = re.compile(r"[^\W\d_]+")


def fold(text: str) -> str:
    """Case-fold and drop diacritics (õ→o, ä→a, š→s, й→и), for comparing what a person typed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _load_popular() -> frozenset[str]:
    """The Estonian and Russian favourites, folded; also given to zxcvbn as a dictionary."""
    lines = [
        line.strip()
        for line in _LIST.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # zxcvbn compares lower-cased text: it gets each word as written and folded.
    add_frequency_lists(
        {
            "popular_et_ru": list(
                dict.fromkeys(form for line in lines for form in (line.casefold(), fold(line)))
            )
        }
    )
    return frozenset(fold(line) for line in lines)


# zxcvbn keeps its dictionaries in a module global and adds "user_inputs" on its first call:
# both happen here, at import, so that request threads only ever read (or replace) entries.
POPULAR = _load_popular()
zxcvbn("warm-up")


@dataclass(frozen=True)
class Owner:
    """What a password must not contain about its owner."""

    given_name: str
    family_name: str
    email: str | None = None
    isikukood: str | None = None


# Russian Cyrillic in Latin letters, as Estonian passports (Šmidt, Žanna) and as English (Shmidt,
# Zhanna) write it; the rest of the letters are the same in both.
_CYRILLIC = dict(zip("абвгдезиклмнопрстуфэ", "abvgdeziklmnoprstufe", strict=True)) | {
    "ё": "jo",
    "й": "i",
    "ц": "ts",
    "ъ": "",
    "ы": "õ",
    "ь": "",
    "ю": "ju",
    "я": "ja",
}
_ESTONIAN = _CYRILLIC | {"ж": "ž", "х": "h", "ч": "tš", "ш": "š", "щ": "štš"}
_ENGLISH = _CYRILLIC | {
    "ё": "yo",
    "й": "y",
    "ж": "zh",
    "х": "kh",
    "ч": "ch",
    "ш": "sh",
    "щ": "shch",
    "ы": "y",
    "ю": "yu",
    "я": "ya",
}
_SCHEMES = [str.maketrans(_ESTONIAN), str.maketrans(_ENGLISH), str.maketrans(_ENGLISH | {"х": "h"})]


def spellings(text: str) -> set[str]:
    """The folded text, and if it has Cyrillic letters, its Latin transliterations (folded)."""
    lowered = text.casefold()
    forms = {fold(lowered)}
    if any(c in _CYRILLIC or c in _ESTONIAN for c in lowered):
        forms |= {fold(lowered.translate(scheme)) for scheme in _SCHEMES}
    return forms


def _own_words(owner: Owner) -> set[str]:
    # Parts shorter than three letters would refuse half the dictionary ("Li", "Ly").
    return {
        w
        for form in spellings(f"{owner.given_name} {owner.family_name}")
        for w in _WORDS.findall(form)
        if len(w) >= 3
    }


def refusal(password: str, owner: Owner, min_length: int) -> str | None:
    """Return why a new password is refused (a code for reason()), or None when it is fine."""
    if len(password) < min_length:
        return "too_short"
    if len(password) > MAX_LENGTH:
        return "too_long"
    folded = fold(password)
    written = spellings(password)  # a Cyrillic password is compared in Latin letters too
    if any(word in form for word in _own_words(owner) for form in written):
        return "name"
    email = fold(owner.email or "")
    local = email.partition("@")[0]
    if email and (email in folded or (len(local) >= 3 and local in folded)):
        return "email"
    if owner.isikukood and owner.isikukood in re.sub(r"\D", "", password):
        return "isikukood"
    if _AROUND.sub("", folded) in POPULAR:
        return "popular"
    # No user_inputs: zxcvbn stores them in a module global, which threads would share.
    estimate = zxcvbn(password[:_ESTIMATED_LENGTH])
    if estimate["score"] >= MIN_SCORE:
        return None
    listed = any(
        m.get("dictionary_name") in ("passwords", "popular_et_ru") for m in estimate["sequence"]
    )
    return "popular" if listed else "weak"


def reason(code: str, min_length: int) -> str:
    """The person-facing sentence for a refusal code."""
    reasons = {
        "too_short": _("Parool peab olema vähemalt %(n)d märki pikk.", n=min_length),
        "too_long": _("Parool on liiga pikk: kõige rohkem %(n)d märki.", n=MAX_LENGTH),
        "name": _("Parool ei tohi sisaldada sinu ees- ega perekonnanime."),
        "email": _("Parool ei tohi sisaldada sinu e-posti aadressi."),
        "isikukood": _("Parool ei tohi sisaldada sinu isikukoodi."),
        "popular": _(
            "See on levinud parool, mida arvatakse kergesti ära. Vali parool, mida "
            "teised ei kasuta."
        ),
        "weak": _(
            "Seda parooli on liiga lihtne ära arvata. Hea parool on näiteks mitmest "
            "sõnast koosnev lause, mida on lihtne meelde jätta."
        ),
    }
    return reasons[code]
