"""Password login for an authorization request; the protocol resumes once it finishes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import Row, bindparam, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from idp.metrics import LOGINS
from idp.models import Client, School
from idp.people import accounts
from idp.sso import sessions
from idp.sso.signin import start_session
from idp.store import Batch, batch, interactions, limits
from idp.views.errors import sign_in_expired
from idp.views.locale import adopt_visitor_choice
from idp.views.typos import suggestion
from shared.db import get_db
from shared.security import check_csrf

bp = Blueprint("login", __name__)


def _interaction_or_error(ix: str) -> tuple[dict[str, Any] | None, Any]:
    data = interactions.load(ix)
    if data is None:
        return None, sign_in_expired()  # the login form names its school: restart there
    return data, None


def _school(data: dict[str, Any]) -> School | None:
    client = get_db().scalar(select(Client).where(Client.client_id == data["request"]["client_id"]))
    return client.school if client else None


# The asking client's school, for interactions stored before they carried it.
_CLIENT_SCHOOL = select(Client.school_id).where(Client.client_id == bindparam("client_id"))


def _school_id(data: dict[str, Any]) -> int | None:
    """The id of the school whose client started the interaction (stored at authorize)."""
    school_id = data["request"].get("school_id")
    if school_id is None:
        school_id = get_db().scalar(_CLIENT_SCHOOL, {"client_id": data["request"]["client_id"]})
    return int(school_id) if school_id is not None else None


def set_sso_cookie(resp: Response, secret: str) -> None:
    """Give the browser its session cookie: HttpOnly, SameSite=Lax, Secure behind https."""
    cfg = current_app.config
    resp.set_cookie(
        cfg["SSO_COOKIE_NAME"],
        secret,
        max_age=cfg["SESSION_MAX_SECONDS"],
        path="/",
        httponly=True,
        samesite="Lax",
        secure=cfg["ISSUER"].startswith("https://"),
    )


def password_login(
    db: Session, school_id: int | None, pipe: Batch
) -> tuple[str, Row[int, int, str | None] | None]:
    """Check the posted e-mail and password at one school (brute-force counted; the refund is
    queued on pipe); return the e-mail typed and the account, None when wrong."""
    email = request.form.get("email", "")[:320]
    password = request.form.get("password", "")  # never truncated: too long is wrong
    if school_id is None or not email or not password:
        return email, None
    return email, accounts.authenticate(
        db, school_id, email, password, request.remote_addr or "-", refund=pipe
    )


def wrong_password() -> str:
    """The one answer to a wrong, unknown or locked login."""
    return _("E-posti aadress või parool on vale.")


# After this many wrong answers on one login page it offers the other ways in (a login link,
# eID). The page counts only for itself (a form field); the brute-force guard stays the
# counters of store.counters, whose limits are unchanged.
OFFER_AFTER_FAILURES = 3


def _failures_so_far() -> int:
    try:
        return max(0, min(int(request.form.get("failures", "0")), 99))
    except ValueError:
        return 0


def wrong_login_page(ix: str, school: School | None, email: str) -> Any:
    """The login form again after a wrong answer: the same message whatever was wrong, a hint
    when the e-mail's domain looks mistyped, and after a few tries the other ways in."""
    failures = _failures_so_far() + 1
    return render_template(
        "login.html",
        ix=ix,
        school=school,
        email=email,
        error=wrong_password(),
        failures=failures,
        offer_other_ways=failures >= OFFER_AFTER_FAILURES,
        typo=suggestion(email),
    )


@bp.route("/login", methods=["GET", "POST"])
@limits.forms()
def login() -> Any:
    """Show the school-branded login form, and sign the person in on a right password."""
    ix = request.values.get("ix", "")
    data, failure = _interaction_or_error(ix)
    if data is None:
        return failure
    g.interaction = (ix, data)  # select_locale reads the page language from it
    hint = data["request"]["params"].get("login_hint") or ""
    # A step-up (acr above low) is reached only by eID: no password form, no password POST.
    eid_only = bool(data["request"].get("min_acr"))
    if request.method == "GET" or eid_only:
        if request.method == "POST":
            check_csrf()
        return render_template(
            "login.html", ix=ix, school=_school(data), email=hint, error=None, eid_only=eid_only
        )
    check_csrf()
    db = get_db()
    school_id = _school_id(data)
    # One Redis round trip after the session's SQL commit: the refund of the counted failure,
    # the session's hot copy and the interaction's result.
    pipe = batch()
    email, account = password_login(db, school_id, pipe)
    resp = None
    if account is not None:
        try:
            resp = finish_login(
                db,
                ix,
                data,
                account.person_id,
                account.id,
                ["pwd"],
                "low",
                pipe,
                relaxed=True,
                password_hash=account.password_hash,
            )
        except sessions.SessionRefused:
            pass  # disabled, moved or absorbed while the password was checked: as if wrong
        else:
            accounts.upgrade_hash(account, request.form["password"])
    LOGINS.labels("password", "ok" if resp is not None else "wrong").inc()
    if resp is None:
        school = db.get(School, school_id) if school_id is not None else None
        return wrong_login_page(ix, school, email), 200
    return resp


def finish_login(
    db: Session,
    ix: str,
    data: dict[str, Any],
    person_id: int,
    account_id: int,
    amr: list[str],
    acr: str,
    pipe: Batch,
    relaxed: bool = False,
    password_hash: str | None = None,
) -> Response:
    """Create or renew the browser's SSO session for an authenticated person, finish the
    interaction and resume the authorization request (pipe is executed here). relaxed and
    password_hash as for sessions.create, whose SessionRefused is raised before anything is
    stored or sent."""
    secret, live = start_session(
        db, person_id, account_id, amr, acr, pipe=pipe, relaxed=relaxed, password_hash=password_hash
    )
    interactions.finish(ix, live.sid, data, pipe=pipe)
    pipe.execute()
    resp = redirect(url_for("oidc.resume", ix=ix), 303)
    set_sso_cookie(resp, secret)
    adopt_visitor_choice(db, person_id, resp)
    return resp


@bp.get("/no-account")
def no_account() -> Any:
    """A signed-in person without an account at the asking school: the ways forward."""
    ix = request.args.get("ix", "")
    data, failure = _interaction_or_error(ix)
    if data is None:
        return failure
    return render_template("no_account.html", ix=ix, school=_school(data))
