"""The way onward from a page that ends a task: back to the school the person came from, when it
is known, else the Stuudium ID home.

The school is, in order: the one a page names (the `school` parameter, carried by the account
pages' links and forms and by the login form), the one given by the page itself (the
interaction's client, the logout hint's client), then the school this browser's session last
signed in to (its newest session_client row, else the account it signed in with)."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app, request, url_for
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from idp.models import Account, Client, School, SessionClient, SsoSession
from idp.sso import sessions
from idp.sso.signin import school_login_uri
from shared.db import get_db


@dataclass(frozen=True)
class Onward:
    """Where a page's main way onward leads: a school (its name) or the home (school None)."""

    url: str
    school: School | None = None


def home() -> Onward:
    """The Stuudium ID home."""
    return Onward(url_for("account.home"))


def named_school(db: Session) -> School | None:
    """The active school the request names in its `school` parameter (a slug)."""
    slug = request.values.get("school", "")[:64]
    if not slug:
        return None
    return db.scalar(select(School).where(School.slug == slug, School.status == "active"))


def session_school(db: Session, sid: str | None) -> School | None:
    """The active school a session signed in to last (else the one it signed in with)."""
    if not sid:
        return None
    latest = db.scalar(
        select(School)
        .join(Client, Client.school_id == School.id)
        .join(SessionClient, SessionClient.client_id == Client.id)
        .where(SessionClient.session_id == sid, School.status == "active")
        .order_by(SessionClient.first_at.desc())
        .limit(1)
    )
    if latest is not None:
        return latest
    return db.scalar(
        select(School)
        .join(Account, Account.school_id == School.id)
        .join(SsoSession, SsoSession.account_id == Account.id)
        .where(SsoSession.id == sid, School.status == "active")
    )


def browser_sid() -> str | None:
    """This browser's live session's sid, if any (None also when the storage is away)."""
    try:
        live = sessions.load(request.cookies.get(current_app.config["SSO_COOKIE_NAME"]))
    except (SQLAlchemyError, redis.RedisError):
        return None
    return live.sid if live is not None else None


def onward(
    school: School | None = None, *, sid: str | None = None, signed_in: bool = True
) -> Onward:
    """The way onward: the named school, else school, else the session's; a signed-in person
    goes back through the school's login initiation (signed in there silently), a signed-out
    one to the school's front page. With no school known (or the storage away), the home."""
    try:
        db = get_db()
        school = named_school(db) or school or session_school(db, sid)
        if school is None:
            return home()
        url = school_login_uri(db, school) if signed_in else school.base_url
    except (SQLAlchemyError, redis.RedisError):
        return home()
    return Onward(url, school)
