"""The baseline: a bare Flask endpoint that parses a form and signs one ES256 JWT with joserfc.

Served by the same gunicorn configuration as the IdP, it shows what the framework, the WSGI
server, the load generator and one signature cost on this machine, so the token endpoint's
figures can be read as a ratio against it.
"""

from __future__ import annotations

import secrets
import time

from flask import Flask, Response, jsonify, request
from joserfc import jwt
from joserfc.jwk import ECKey

ISSUER = "http://127.0.0.1"


def create_app() -> Flask:
    """Build the baseline app with one process-local P-256 key."""
    app = Flask(__name__)
    key = ECKey.generate_key("P-256", private=True)
    kid = "baseline-" + secrets.token_hex(4)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    @app.post("/token")
    def token() -> Response:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": ISSUER, "sub": request.form.get("sub", "bench"),
                  "client_id": "baseline", "scope": request.form.get("scope", "openid"),
                  "iat": now, "nbf": now, "exp": now + 300, "jti": secrets.token_urlsafe(16)}
        signed = jwt.encode({"alg": "ES256", "kid": kid, "typ": "at+jwt"}, claims, key)
        resp = jsonify({"access_token": signed, "token_type": "Bearer", "expires_in": 300})
        resp.headers["Cache-Control"] = "no-store"
        return resp

    return app


app = create_app()
