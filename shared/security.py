"""Security headers and CSRF protection for every form."""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, Response, abort, request, session

CSRF_FIELD = "csrf_token"


def csrf_token() -> str:
    """Return the CSRF token bound to this browser's Flask session, creating it on first use."""
    token = session.get("_csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["_csrf"] = token
    return str(token)


def check_csrf() -> None:
    """Abort with 400 unless the form carries the session's CSRF token."""
    expected = session.get("_csrf")
    given = request.form.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(str(expected), given):
        abort(400, description="csrf")


def init_app(app: Flask) -> None:
    """Install security headers and expose csrf_token() to templates."""
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Content-Security-Policy", content_security_policy())
        # Framing is refused unless a view's policy names who may frame it (front-channel).
        if "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]:
            response.headers["X-Frame-Options"] = "DENY"
        return response


def content_security_policy(*image_sources: str, frames: tuple[str, ...] = (),
                            ancestors: str = "'none'") -> str:
    """The pages' policy; image_sources adds origins images may come from (the IdP's logos),
    frames the origins a page may embed (front-channel logout), ancestors who may embed it."""
    images = " ".join(("'self'", "data:", *image_sources))
    frame_src = f"frame-src {' '.join(frames)}; " if frames else ""
    return (f"default-src 'self'; img-src {images}; style-src 'self' 'unsafe-inline'; "
            f"{frame_src}frame-ancestors {ancestors}; form-action 'self' http: https:")
