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

from flask import Blueprint, current_app, g, jsonify, redirect, request
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from idp import sessions
from idp.models import Account, Person
from idp.oidc.resource import bearer_error, bearer_token, check_access_token
from idp.sync import record_person_change
from shared import i18n
from shared.db import get_db

bp = Blueprint("locale", __name__)


def store_choice(db: Session, person: Person, locale: str) -> bool:
    """Make locale the person's language; their schools get the change. Tells if it changed."""
    if person.locale == locale:
        return False
    person.locale = locale
    record_person_change(db, person.id, ["locale"], "locale", f"person:{person.id}")
    db.commit()
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
    person = db.scalar(select(Person).join(Account, Account.person_id == Person.id)
                       .where(Account.sub == claims["sub"], Account.status == "active"))
    if person is None:
        return bearer_error("invalid_token", 401)
    changed = store_choice(db, person, locale)
    resp = jsonify({"locale": locale, "changed": changed})
    resp.headers["Cache-Control"] = "no-store"
    return resp

