"""The language switch: a visitor's choice stays in the browser until they sign in, then it
becomes Person.locale, as a signed-in person's choice does at once; every school learns it
(the locale claim at sign-in and refresh, and a person-changed event for live sessions).

Two ways in, neither open to cross-site requests:
- the switch on the IdP's own pages: a form POST the browser marks as same-origin (Origin,
  Sec-Fetch-Site), with no token, since error pages carry the switch and set no cookie;
- a school's switch: the school's server calls POST /me/locale with the person's own access
  token (a bearer token, never a cookie, so another site cannot make a browser send it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from flask import Blueprint, current_app, g, jsonify, redirect, request
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from idp.models import Account, Person, School
from idp.oidc.resource import bearer_error, bearer_token, check_access_token
from idp.people.sync import record_person_change
from idp.sso import sessions
from idp.store import interactions
from shared import i18n
from shared.db import get_db

bp = Blueprint("locale", __name__)


def store_choice(db: Session, person: Person, locale: str) -> bool:
    """Make locale the person's language; their schools get the change. Tells if it changed."""
    if person.locale == locale:
        return False
    person.locale = locale
    record_person_change(db, person.id, ["locale"], "locale", f"person:{person.id}")
    return True


@bp.post("/locale")
def switch() -> Response:
    """The switch on every IdP page: remember the choice and go back to the page."""
    i18n.check_same_origin()
    locale = i18n.supported(request.form.get("locale")) or i18n.DEFAULT
    live = sessions.load(request.cookies.get(current_app.config["SSO_COOKIE_NAME"]))
    db = get_db()
    person = db.get(Person, live.person_id) if live is not None else None
    back = redirect(i18n.local_path(request.form.get("next")), 303)
    if person is None:
        return i18n.remember_choice(back, locale)
    store_choice(db, person, locale)
    g.person = person
    return back


def adopt_visitor_choice(db: Session, person_id: int, resp: Response) -> None:
    """At sign-in, a choice made on the login page becomes the person's; the browser's cookie
    is spent, so that it never overrides a choice the person makes later elsewhere."""
    chosen = i18n.visitor_choice()
    if chosen is None:
        return
    person = db.get(Person, person_id)
    if person is not None:
        store_choice(db, person, chosen)
    resp.delete_cookie(i18n.COOKIE)


@bp.post("/me/locale")
def from_school() -> Response:
    """A school passes on the choice its signed-in person made there (their access token)."""
    claims = check_access_token(bearer_token() or "")
    if claims is None:
        return bearer_error("invalid_token", 401)
    body = request.get_json(silent=True) if request.is_json else request.form
    locale = i18n.supported((body or {}).get("locale"))
    if locale is None:
        return bearer_error("invalid_request", 400, "locale must be one of et, ru, en.")
    db = get_db()
    person = db.scalar(
        select(Person)
        .join(Account, Account.person_id == Person.id)
        .where(Account.sub == claims["sub"], Account.status == "active")
    )
    if person is None:
        return bearer_error("invalid_token", 401)
    changed = store_choice(db, person, locale)
    resp = jsonify({"locale": locale, "changed": changed})
    resp.headers["Cache-Control"] = "no-store"
    return resp


def select_locale() -> str:
    """The page's language, in order: the signed-in person's choice (Person.locale), this
    browser's choice (the switch's cookie), ui_locales of the request (or of the authorization
    request a login page serves), the browser's Accept-Language (a first visit is in the
    browser's language), the school's default, Estonian. Each source is read only when the ones
    before it gave nothing."""
    sources: tuple[Callable[[], str | None], ...] = (
        _person_choice,
        i18n.visitor_choice,
        _ui_locales,
        i18n.browser_language,
        _school_default,
    )
    if g.get("page_locale"):  # a page whose language is known (the one applied in)
        sources = (_person_choice, i18n.visitor_choice, lambda: g.page_locale)
    return i18n.first(_quietly(source) for source in sources)


def _quietly(source: Callable[[], str | None]) -> str | None:
    # The page saying the storage is unavailable must render without it: a source that needs
    # SQL or Redis then gives nothing.
    try:
        return source()
    except (SQLAlchemyError, redis.RedisError):
        return None


def _person_choice() -> str | None:
    person = g.get("person")
    if person is None:
        live = sessions.load(request.cookies.get(current_app.config["SSO_COOKIE_NAME"]))
        person = get_db().get(Person, live.person_id) if live is not None else None
    return person.locale if person is not None else None


def _pending() -> dict[str, Any] | None:
    """The authorization request a login page serves (by its ix), if any."""
    try:
        ix = request.values.get("ix")
    except RequestEntityTooLarge:  # the 413 page itself must not parse the oversized body
        return None
    if not ix:
        return None
    cached = g.get("interaction")  # the login view's, already read in this request
    pending = cached[1] if cached is not None and cached[0] == ix else interactions.load(ix)
    return pending


def _ui_locales() -> str | None:
    try:
        requested = request.values.get("ui_locales")
    except RequestEntityTooLarge:
        requested = None
    if not requested:
        pending = _pending()
        requested = pending["request"]["params"].get("ui_locales") if pending else None
    return i18n.supported(requested)


def _school_default() -> str | None:
    """The default language of the school the page is for: /s/<slug>/… or the login's client."""
    slug = (request.view_args or {}).get("slug")
    if isinstance(slug, str):
        return get_db().scalar(select(School.default_locale).where(School.slug == slug))
    pending = _pending()
    school_id = pending["request"].get("school_id") if pending else None
    if school_id is not None:
        return get_db().scalar(select(School.default_locale).where(School.id == school_id))
    return None
