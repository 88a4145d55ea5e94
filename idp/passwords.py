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

MAX_LENGTH = 1024  # the login form reads no more than this
MIN_SCORE = 3  # zxcvbn: at least 10^8 guesses
_ESTIMATED_LENGTH = 72  # zxcvbn's own limit; a longer passphrase is judged by its start
_LIST = Path(__file__).with_name("data") / "popular_passwords.txt"
_AROUND = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_WORDS = re.compile(r"[^\W\d_]+")


def fold(text: str) -> str:
    """Case-fold and drop diacritics (õ→o, ä→a, š→s, й→и), for comparing what a person typed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _load_popular() -> frozenset[str]:
    """The Estonian and Russian favourites, folded; also given to zxcvbn as a dictionary."""
    lines = [line.strip() for line in _LIST.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    # zxcvbn compares lower-cased text: it gets each word as written and folded.
    add_frequency_lists({"popular_et_ru": list(dict.fromkeys(
        form for line in lines for form in (line.casefold(), fold(line))))})
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


def _own_words(owner: Owner) -> list[str]:
    # Parts shorter than three letters would refuse half the dictionary ("Li", "Ly").
    return [w for w in _WORDS.findall(fold(f"{owner.given_name} {owner.family_name}"))
            if len(w) >= 3]


def refusal(password: str, owner: Owner, min_length: int) -> str | None:
    """Return why a new password is refused (a code for reason()), or None when it is fine."""
    if len(password) < min_length:
        return "too_short"
    if len(password) > MAX_LENGTH:
        return "too_long"
    folded = fold(password)
    if any(word in folded for word in _own_words(owner)):
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
    listed = any(m.get("dictionary_name") in ("passwords", "popular_et_ru")
                 for m in estimate["sequence"])
    return "popular" if listed else "weak"


def reason(code: str, min_length: int) -> str:
    """The person-facing sentence for a refusal code."""
    reasons = {
        "too_short": _("Parool peab olema vähemalt %(n)d märki pikk.", n=min_length),
        "too_long": _("Parool on liiga pikk: kõige rohkem %(n)d märki.", n=MAX_LENGTH),
        "name": _("Parool ei tohi sisaldada sinu ees- ega perekonnanime."),
        "email": _("Parool ei tohi sisaldada sinu e-posti aadressi."),
        "isikukood": _("Parool ei tohi sisaldada sinu isikukoodi."),
        "popular": _("See on levinud parool, mida arvatakse kergesti ära. Vali parool, mida "
                     "teised ei kasuta."),
        "weak": _("Seda parooli on liiga lihtne ära arvata. Hea parool on näiteks mitmest "
                  "sõnast koosnev lause, mida on lihtne meelde jätta."),
    }
    return reasons[code]
