"""RP-initiated logout's pages (the question, when the school's hint does not name this
browser's session) and the page after sessions end: the schools being signed out, their state,
front-channel frames."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, make_response, render_template, request
from werkzeug.wrappers import Response

from idp.oidc import end_session as rp_logout
from idp.sso.logout import Ended, Scope, delivery_states, end_sessions, frontchannel_frames
from idp.sso.sessions import load as load_session
from idp.tenants.schools import origin
from shared import outage
from shared.db import get_db
from shared.security import check_csrf, content_security_policy


def logged_out_page(
    ended: Ended | None,
    *,
    clear_cookie: bool = True,
    continue_to: str | None = None,
    **texts: str | None,
) -> Response:
    """Render logged_out.html for ended sessions; texts may replace its heading and message and
    add a back link (heading, message, back_to)."""
    db = get_db()
    issuer = current_app.config["ISSUER"]
    try:
        frames = [
            f
            for sid in (ended.session_ids if ended else [])
            for f in frontchannel_frames(db, sid, issuer)
        ]
        schools = delivery_states(db, ended.delivery_ids) if ended else []
    except outage.FAILURES:
        # The sessions have ended (committed) and the worker tells the schools: the page says
        # so without the list it could not read.
        db.rollback()
        frames, schools = [], []
    resp = make_response(
        render_template(
            "logged_out.html", continue_to=continue_to, schools=schools, frames=frames, **texts
        )
    )
    if frames:
        resp.headers["Content-Security-Policy"] = content_security_policy(
            frames=tuple(sorted({origin(f) for f in frames}))
        )
    if clear_cookie:
        # Browsers ignore a __Host- cookie (the https name) set without Secure, deletion too.
        resp.delete_cookie(
            current_app.config["SSO_COOKIE_NAME"],
            path="/",
            secure=issuer.startswith("https://"),
            httponly=True,
            samesite="Lax",
        )
    return resp


bp = Blueprint("logout", __name__)


@bp.route("/logout", methods=["GET", "POST"])
def end_session() -> Any:
    """RP-initiated logout: redirect only to an exact registered URI, and only with a valid hint;
    a session the hint does not name ends only when the person confirms."""
    values = request.form if request.method == "POST" else request.args
    asked = rp_logout.parse(values)
    session = load_session(request.cookies.get(current_app.config["SSO_COOKIE_NAME"]))
    confirmed = request.method == "POST" and values.get("confirm") == "yes"
    if confirmed:
        check_csrf()
    if asked.needs_confirmation(session.sid if session else None, confirmed):
        return render_template("logout_confirm.html", values=dict(values.items()))
    ended = None
    if session is not None:
        ended = end_sessions(get_db(), Scope(session_ids=(session.sid,)), "logout")
    return logged_out_page(ended, continue_to=asked.continue_to)
