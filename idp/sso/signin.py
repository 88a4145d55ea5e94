"""Starting the SSO session of a sign-in (password, eID or a one-time link), and the way on
to a school: its login initiation URI."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import current_app, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.models import Client, School
from idp.sso import sessions
from idp.sso.logout import Scope, end_sessions
from idp.store import Batch

# RFC 8176: a one-time code sent to the person (here: the link's secret, by e-mail).
LINK_AMR = ["otp"]


def start_session(
    db: Session,
    person_id: int,
    account_id: int,
    amr: list[str],
    acr: str,
    pipe: Batch | None = None,
    relaxed: bool = False,
    password_hash: str | None = None,
) -> tuple[str, sessions.LiveSession]:
    """Sign the person in on this browser: the same person's session is renewed (a new cookie
    secret), another person's ends first; return the cookie secret and the session. pipe,
    relaxed and password_hash as for sessions.create (SessionRefused likewise)."""
    previous = sessions.load(request.cookies.get(current_app.config["SSO_COOKIE_NAME"]))
    if previous is not None and previous.person_id == person_id:
        try:
            return sessions.renew(db, previous, amr, acr)
        except LookupError:
            previous = None  # ended in SQL: its Redis copy was revived, so start afresh
    if previous is not None:
        end_sessions(db, Scope(session_ids=(previous.sid,)), "switch_person")
    return sessions.create(
        db,
        person_id,
        account_id,
        amr,
        acr,
        request.headers.get("User-Agent"),
        pipe=pipe,
        relaxed=relaxed,
        password_hash=password_hash,
    )


def school_login_uri(db: Session, school: School, path: str = "/") -> str:
    """The school's login initiation URI (OIDC Core §4) with target_link_uri on its own origin:
    the school starts an authorization request, which the new session answers at once."""
    return school_login_uris(db, [school], path)[school.id]


def school_login_uris(db: Session, schools: list[School], path: str = "/") -> dict[int, str]:
    """school_login_uri of several schools at once (one query), by school id; a school without
    a login initiation URI gets its base URL."""
    rows = db.execute(
        select(Client.school_id, Client.initiate_login_uri)
        .where(
            Client.school_id.in_([s.id for s in schools]),
            Client.initiate_login_uri.is_not(None),
            Client.status == "active",
        )
        .order_by(Client.id)
    ).all()
    login_uris: dict[int, str] = {}
    for school_id, uri in rows:
        if uri:
            login_uris.setdefault(school_id, uri)  # a school's first client, as before
    issuer = current_app.config["ISSUER"]
    found = {}
    for school in schools:
        login_uri = login_uris.get(school.id)
        if not login_uri:
            found[school.id] = school.base_url
            continue
        query = urlencode({"iss": issuer, "target_link_uri": school.base_url.rstrip("/") + path})
        found[school.id] = f"{login_uri}{'&' if '?' in login_uri else '?'}{query}"
    return found
