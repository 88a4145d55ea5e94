"""Security headers; CSRF tokens for every form (made and checked by Flask-WTF); the hash under
which secrets are stored.

Every form of ours carries the token of this browser's session (the field csrf_token, from
csrf_token() in the templates), and the view that takes it calls check_csrf() where it decides to
act on it — after its own checks that answer first (a browser that is not signed in is told so,
not that a form expired). Nothing runs on requests that are not our forms (the protocol's, the
APIs', the back-channel): Flask-WTF's CSRFProtect, whose hook runs before every request, is not
installed. A refused token answers 400 with description "csrf", which each app renders as its
"the form expired" page.
"""

from __future__ import annotations

import hashlib

from flask import Flask, Response, abort, request
from flask_wtf.csrf import generate_csrf, validate_csrf
from wtforms import ValidationError

CSRF_FIELD = "csrf_token"


def sha256_hex(value: str) -> str:
    """The SHA-256 (hex) under which a random secret, token or cookie value is stored."""
    return hashlib.sha256(value.encode()).hexdigest()


def csrf_token() -> str:
    """Return the CSRF token of this browser's session (for a form), creating it on first use."""
    return str(generate_csrf())


def check_csrf() -> None:
    """Check the posted form's token; 400 "csrf" when it is missing or wrong."""
    try:
        validate_csrf(request.form.get(CSRF_FIELD, ""))
    except ValidationError:
        abort(400, description="csrf")


def init_app(app: Flask) -> None:
    """Install security headers and the CSRF token for the templates."""
    # The token lives as long as the browser's session (a form may stay open long, as before).
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.after_request
    def _headers(response: Response) -> Response:
        # One pass over the headers a view set, then appends: werkzeug's setdefault and
        # item assignment each scan every header (lower-casing both names) — a few dozen
        # string operations per request on every answer of both apps.
        headers = response.headers
        present = {key.lower(): value for key, value in headers.items()}
        if "x-content-type-options" not in present:
            headers.add("X-Content-Type-Options", "nosniff")
        if "referrer-policy" not in present:
            headers.add("Referrer-Policy", "no-referrer")
        policy = present.get("content-security-policy")
        if policy is None:
            policy = DEFAULT_POLICY
            headers.add("Content-Security-Policy", policy)
        # Framing is refused unless a view's policy names who may frame it (front-channel).
        if "frame-ancestors 'none'" in policy:
            if "x-frame-options" in present:
                headers["X-Frame-Options"] = "DENY"
            else:
                headers.add("X-Frame-Options", "DENY")
        return response


def content_security_policy(
    *image_sources: str, frames: tuple[str, ...] = (), ancestors: str = "'none'"
) -> str:
    """The pages' policy; image_sources adds origins images may come from (the IdP's logos),
    frames the origins a page may embed (front-channel logout), ancestors who may embed it."""
    images = " ".join(("'self'", "data:", *image_sources))
    frame_src = f"frame-src {' '.join(frames)}; " if frames else ""
    return (
        f"default-src 'self'; img-src {images}; style-src 'self' 'unsafe-inline'; "
        f"{frame_src}frame-ancestors {ancestors}; form-action 'self' http: https:"
    )


# The policy of every page that sets none of its own.
DEFAULT_POLICY = content_security_policy()
# The same headers as a list, for an answer made outside Flask (idp/oidc/token_lane.py).
ANSWER_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", DEFAULT_POLICY),
    ("X-Frame-Options", "DENY"),
]
