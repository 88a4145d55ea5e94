"""The page after sessions end: the schools being signed out, their state, front-channel frames."""

from __future__ import annotations

from flask import current_app, make_response, render_template
from werkzeug.wrappers import Response

from idp.logout import Ended, delivery_states, frontchannel_frames
from idp.schools import origin
from shared.db import get_db
from shared.security import content_security_policy


def logged_out_page(ended: Ended | None, *, clear_cookie: bool = True,
                    continue_to: str | None = None, **texts: str | None) -> Response:
    """Render logged_out.html for ended sessions; texts may replace its heading and message and
    add a back link (heading, message, back_to)."""
    db = get_db()
    issuer = current_app.config["ISSUER"]
    frames = [f for sid in (ended.session_ids if ended else [])
              for f in frontchannel_frames(db, sid, issuer)]
    schools = delivery_states(db, ended.delivery_ids) if ended else []
    resp = make_response(render_template("logged_out.html", continue_to=continue_to,
                                         schools=schools, frames=frames, **texts))
    if frames:
        resp.headers["Content-Security-Policy"] = content_security_policy(
            frames=tuple(sorted({origin(f) for f in frames})))
    if clear_cookie:
        # Browsers ignore a __Host- cookie (the https name) set without Secure, deletion too.
        resp.delete_cookie(current_app.config["SSO_COOKIE_NAME"], path="/",
                           secure=issuer.startswith("https://"), httponly=True, samesite="Lax")
    return resp
