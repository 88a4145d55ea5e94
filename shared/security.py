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
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Content-Security-Policy", content_security_policy())
        return response


def content_security_policy(*image_sources: str) -> str:
    """The pages' policy; image_sources adds origins images may come from (the IdP's logos)."""
    images = " ".join(("'self'", "data:", *image_sources))
    return (f"default-src 'self'; img-src {images}; style-src 'self' 'unsafe-inline'; "
            "frame-ancestors 'none'; form-action 'self' http: https:")
