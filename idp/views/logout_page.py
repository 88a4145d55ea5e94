"""RP-initiated logout's pages (the question, when the school's hint does not name this
browser's session) and the page after sessions end: the schools being signed out, their state,
front-channel frames, and the way onward — with a registered post_logout_redirect_uri, back to
the school by itself (static/logout_return.js) once the frames have loaded, at most ~2 s."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, make_response, render_template, request
from werkzeug.wrappers import Response

from idp.models import School
from idp.oidc import end_session as rp_logout
from idp.sso.logout import Ended, Scope, delivery_states, end_sessions, frontchannel_frames
from idp.sso.sessions import load as load_session
from idp.tenants.schools import origin
from idp.views.onward import Onward, onward, session_school
from shared import outage
from shared.db import get_db
from shared.security import check_csrf, content_security_policy


def logged_out_page(
    ended: Ended | None,
    *,
    clear_cookie: bool = True,
    continue_to: str | None = None,
    way: Onward | None = None,
    **texts: str | None,
) -> Response:
    """Render logged_out.html for ended sessions; texts may replace its heading and message and
    add a back link (heading, message, back_to). continue_to (a registered post-logout URI) is
    where the browser returns by itself; otherwise way is the page's way onward (by default
    the ended session's school, else the home)."""
    db = get_db()
    issuer = current_app.config["ISSUER"]
    try:
        frames = [
            f
            for sid in (ended.session_ids if ended else [])
            for f in frontchannel_frames(db, sid, issuer)
        ]
        schools = delivery_states(db, ended.delivery_ids) if ended else []
        if way is None:
            sid = ended.session_ids[0] if ended and ended.session_ids else None
            way = onward(session_school(db, sid), signed_in=not clear_cookie)
    except outage.FAILURES:
        # The sessions have ended (committed) and the worker tells the schools: the page says
        # so without the list it could not read.
        db.rollback()
        frames, schools, way = [], [], None
    resp = make_response(
        render_template(
            "logged_out.html",
            continue_to=continue_to,
            schools=schools,
            frames=frames,
            onward=way,
            **texts,
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
        # Not logging out is a way on too: back to the school this browser signed in to last.
        stay = onward(sid=session.sid if session else None)
        return render_template("logout_confirm.html", values=dict(values.items()), onward=stay)
    ended = None
    if session is not None:
        ended = end_sessions(get_db(), Scope(session_ids=(session.sid,)), "logout")
    # The way onward: the school whose valid hint asked (parse checked it), if still active.
    school = get_db().get(School, asked.school_id) if asked.school_id is not None else None
    active = school is not None and school.status == "active"
    way = onward(school, signed_in=False) if active else None
    return logged_out_page(ended, continue_to=asked.continue_to, way=way)
