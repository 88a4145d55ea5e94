"""Password login for an authorization request; the protocol resumes once it finishes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from idp import accounts, sessions
from idp.logout import Scope, end_sessions
from idp.models import Client, School
from idp.oidc import interactions
from idp.views.errors import error_page
from shared.db import get_db
from shared.security import check_csrf

bp = Blueprint("login", __name__)


def _interaction_or_error(ix: str) -> tuple[dict[str, Any] | None, Any]:
    data = interactions.load(ix)
    if data is None:
        return None, error_page(_("Sisselogimine aegus"), _(
            "Sisselogimise aeg sai läbi. Mine tagasi oma kooli Stuudiumi lehele ja logi uuesti "
            "sisse."), 400)
    return data, None


def _school(data: dict[str, Any]) -> School | None:
    from sqlalchemy import select

    client = get_db().scalar(select(Client).where(
        Client.client_id == data["request"]["client_id"]))
    return client.school if client else None


def set_sso_cookie(resp: Response, secret: str) -> None:
    """Give the browser its session cookie: HttpOnly, SameSite=Lax, Secure behind https."""
    cfg = current_app.config
    resp.set_cookie(cfg["SSO_COOKIE_NAME"], secret, max_age=cfg["SESSION_MAX_SECONDS"],
                    path="/", httponly=True, samesite="Lax",
                    secure=cfg["ISSUER"].startswith("https://"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Show the school-branded login form, and sign the person in on a right password."""
    ix = request.values.get("ix", "")
    data, failure = _interaction_or_error(ix)
    if data is None:
        return failure
    school = _school(data)
    hint = data["request"]["params"].get("login_hint") or ""
    if request.method == "GET":
        return render_template("login.html", ix=ix, school=school, email=hint, error=None)
    check_csrf()
    email = request.form.get("email", "")[:320]
    password = request.form.get("password", "")[:1024]
    db = get_db()
    account = None
    if school is not None and email and password:
        account = accounts.authenticate(db, school.id, email, password,
                                        request.remote_addr or "-")
    if account is None:
        return render_template("login.html", ix=ix, school=school, email=email, error=_(
            "E-posti aadress või parool on vale.")), 200
    cookie_name = current_app.config["SSO_COOKIE_NAME"]
    previous = sessions.load(request.cookies.get(cookie_name))
    if previous is not None and previous.person_id == account.person_id:
        secret, live = sessions.renew(db, previous, ["pwd"], "low")
    else:
        if previous is not None:
            # Another person was signed in on this browser: their session ends first.
            end_sessions(db, Scope(session_ids=(previous.sid,)), "switch_person")
        secret, live = sessions.create(db, account.person_id, account.id, ["pwd"], "low",
                                       request.headers.get("User-Agent"))
    interactions.finish(ix, live.sid)
    resp = redirect(url_for("oidc.resume", ix=ix), 303)
    set_sso_cookie(resp, secret)
    return resp


@bp.get("/no-account")
def no_account() -> Any:
    """A signed-in person without an account at the asking school: the ways forward."""
    ix = request.args.get("ix", "")
    data, failure = _interaction_or_error(ix)
    if data is None:
        return failure
    return render_template("no_account.html", ix=ix, school=_school(data))
