"""The Stuudium ID home at /: for a visitor, what Stuudium ID is and the schools to sign in at;
for a signed-in person, "Minu koolid" (each opens the school signed in), the account pages and
logging out. Its route is on the account pages' blueprint (views/account.py: account.home)."""

from __future__ import annotations

from typing import Any

from flask import current_app, make_response, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.models import Person, School, SsoSession
from idp.people.linking import linked_accounts
from idp.sso import sessions
from idp.sso.sessions import LiveSession
from idp.sso.signin import school_login_uris
from shared.db import get_db


def active_schools(db: Session) -> list[tuple[School, str]]:
    """Every active school by name, with the address that starts signing in there."""
    schools = list(
        db.scalars(select(School).where(School.status == "active").order_by(School.name))
    )
    uris = school_login_uris(db, schools)
    return [(school, uris[school.id]) for school in schools]


def signed_in_person(db: Session) -> tuple[LiveSession, Person] | None:
    """This browser's live session and its person, if any. SQL has the last word: a Redis copy
    revived after the session ended opens nothing."""
    live = sessions.load(request.cookies.get(current_app.config["SSO_COOKIE_NAME"]))
    record = db.get(SsoSession, live.sid) if live is not None else None
    if live is None or record is None or record.ended_at is not None:
        return None
    person = db.get(Person, live.person_id)
    return (live, person) if person is not None else None


def home() -> Any:
    """The home: the person's schools when signed in, else what Stuudium ID is and where to
    sign in."""
    db = get_db()
    signed_in = signed_in_person(db)
    person = signed_in[1] if signed_in is not None else None
    if person is None:
        resp = make_response(render_template("home.html", person=None, schools=active_schools(db)))
    else:
        accounts = linked_accounts(db, person.id)
        uris = school_login_uris(db, [a.school for a in accounts])
        mine = [(a.school, uris[a.school_id]) for a in accounts]
        resp = make_response(render_template("home.html", person=person, schools=mine))
    resp.headers["Cache-Control"] = "no-store"
    return resp
