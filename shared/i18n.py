"""Languages of both apps: the person's choice (a cookie for a visitor), dates in Tallinn time."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable
from urllib.parse import urlsplit

from flask import Flask, abort, request
from flask_babel import format_date, format_datetime, get_locale
from werkzeug.datastructures import LanguageAccept
from werkzeug.wrappers import Response

LOCALES = ("et", "ru", "en")
DEFAULT = "et"
COOKIE = "stuudium_lang"
COOKIE_SECONDS = 365 * 86400
TIMEZONE = "Europe/Tallinn"
# Each language's own name: a person looks for the language they can read.
NAMES = {"et": "Eesti", "ru": "Русский", "en": "English"}
# How each language writes a date: Estonians and Russians 05.03.2026; in English the month's
# name, so that 05/03 is never read the American way.
DATE_PATTERNS = {"et": "dd.MM.yyyy", "ru": "dd.MM.yyyy", "en": "d MMM yyyy"}
TIME_PATTERN = "HH:mm"


def supported(*candidates: str | None) -> str | None:
    """The first candidate (a language tag or a space-separated list, as ui_locales) we have."""
    for value in candidates:
        for tag in (value or "").split():
            base = tag.replace("_", "-").split("-")[0].lower()
            if base in LOCALES:
                return base
    return None


def visitor_choice() -> str | None:
    """The language this browser chose with the switch, if any."""
    return supported(request.cookies.get(COOKIE))


def browser_language() -> str | None:
    """The best of ours by the browser's Accept-Language; a bare "*" names no language (the
    next source decides, as when the header is missing)."""
    named = LanguageAccept([(tag, q) for tag, q in request.accept_languages if tag != "*"])
    return named.best_match(LOCALES)


def remember_choice(resp: Response, locale: str) -> Response:
    """Keep a visitor's choice in this browser (not secret: readable, long-lived, Lax)."""
    resp.set_cookie(
        COOKIE,
        locale,
        max_age=COOKIE_SECONDS,
        samesite="Lax",
        httponly=True,
        secure=request.is_secure,
    )
    return resp


def check_same_origin() -> None:
    """The switch's CSRF defence without a token (its form is on every page, error pages too,
    which must not set cookies): the browser must say the POST came from this origin."""
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    ours = request.host_url.rstrip("/")
    if site == "same-origin" or (site is None and origin == ours):
        return
    abort(400, description="csrf")


def _browser_would_rewrite(char: str) -> bool:
    # Browsers drop tab, CR and LF anywhere in a URL, trim spaces and controls at its ends and
    # read a backslash as "/": "/<tab>/evil.com" becomes "//evil.com", another site.
    return char == "\\" or char.isspace() or unicodedata.category(char) in ("Cc", "Cf")


def local_path(target: str | None) -> str:
    """Only a path on this same origin may be where the switch returns to, else "/"; a value a
    browser would read differently from how it is checked here is refused, not cleaned."""
    if not target or any(_browser_would_rewrite(char) for char in target):
        return "/"
    parts = urlsplit(target)
    if target[:1] != "/" or target[1:2] == "/" or parts.scheme or parts.netloc:
        return "/"
    return target


def current() -> str:
    """The language of this request's page."""
    return str(get_locale() or DEFAULT)


def date_text(value: dt.date | dt.datetime | None) -> str:
    """A date (a moment in Tallinn time) as the page's language writes it."""
    if value is None:
        return ""
    pattern = DATE_PATTERNS.get(current(), DATE_PATTERNS[DEFAULT])
    if isinstance(value, dt.datetime):
        return format_datetime(_aware(value), pattern)
    return format_date(value, pattern)


def moment_text(value: dt.datetime | None) -> str:
    """A date and time in Tallinn time as the page's language writes it: 29.11.2026 14:05."""
    if value is None:
        return ""
    pattern = DATE_PATTERNS.get(current(), DATE_PATTERNS[DEFAULT])
    return format_datetime(_aware(value), f"{pattern} {TIME_PATTERN}")


def _aware(value: dt.datetime) -> dt.datetime:
    # Stored moments are UTC; Flask-Babel shows them in BABEL_DEFAULT_TIMEZONE.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def init_app(app: Flask) -> None:
    """Tallinn time for every date; the switch's languages and the date filters in templates."""
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", TIMEZONE)
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    app.jinja_env.globals["current_locale"] = current
    app.jinja_env.globals["language_names"] = NAMES
    app.jinja_env.filters["date_text"] = date_text
    app.jinja_env.filters["moment_text"] = moment_text


def first(options: Iterable[str | None]) -> str:
    """The first supported language of options, else Estonian."""
    return supported(*options) or DEFAULT
