"""The baselines: bare Flask endpoints doing only the least work of each measured path.

Served by the same gunicorn configuration as the IdP, they show what the framework, the WSGI
server, the load generator and the path's unavoidable work cost on this machine, so the IdP's
figures can be read as ratios against them:

- ``/token``: parse a form and sign one ES256 JWT (joserfc): the framework and one signature.
- ``/floor/token``: what the design's budget for a token request allows at the least (one
  Redis script, one SQL transaction with a statement, two ES256 JWTs): the floor of a code
  exchange or a refresh with this stack, without any of the checks.
- ``/floor/login``: one argon2id verify with the IdP's parameters and a redirect: the floor of a
  password login's credential POST.
"""

from __future__ import annotations

import functools
import gc
import os
import secrets
import time
from typing import Any

import psycopg
import redis
from argon2.exceptions import VerificationError
from flask import Flask, Response, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import ECKey
from werkzeug.wrappers import Response as WerkzeugResponse

from idp.people.accounts import HASHER

ISSUER = "http://127.0.0.1"
VERIFY_PASSWORD = "mets-kask-baseline"
FLOOR_SCRIPT = "return redis.call('GET', KEYS[1])"


def _claims(sub: str, scope: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": ISSUER,
        "sub": sub,
        "client_id": "baseline",
        "scope": scope,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(16),
    }


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    return resp


def create_app() -> Flask:
    """Build the baseline app with one process-local P-256 key; the floor endpoints connect
    to DATABASE_URL and REDIS_URL on first use."""
    app = Flask(__name__)
    key = ECKey.generate_key("P-256", private=True)
    kid = "baseline-" + secrets.token_hex(4)
    header = {"alg": "ES256", "kid": kid, "typ": "at+jwt"}
    stored = HASHER.hash(VERIFY_PASSWORD)

    @functools.cache
    def _links() -> tuple[psycopg.Connection[Any], redis.Redis]:
        url = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        return psycopg.connect(url), redis.Redis.from_url(os.environ["REDIS_URL"])

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    @app.post("/token")
    def token() -> Response:
        claims = _claims(request.form.get("sub", "bench"), request.form.get("scope", "openid"))
        signed = jwt.encode(header, claims, key)
        return _no_store(
            jsonify({"access_token": signed, "token_type": "Bearer", "expires_in": 300})
        )

    @app.post("/floor/token")
    def floor_token() -> Response:
        pg, r = _links()
        code = request.form.get("code", "")
        r.eval(FLOOR_SCRIPT, 1, "bench:floor:" + code)
        with pg.transaction():
            pg.execute("SELECT %s::text", (code,)).fetchone()
        claims = _claims("bench", "openid")
        access = jwt.encode(header, claims, key)
        id_token = jwt.encode({**header, "typ": "JWT"}, {**claims, "nonce": "n"}, key)
        return _no_store(
            jsonify(
                {
                    "access_token": access,
                    "id_token": id_token,
                    "token_type": "Bearer",
                    "expires_in": 300,
                }
            )
        )

    @app.post("/floor/login")
    def floor_login() -> WerkzeugResponse:
        try:
            HASHER.verify(stored, request.form.get("password", ""))
        except VerificationError:
            return Response("wrong", 200)
        return redirect("/done", 303)

    return app


app = create_app()
gc.freeze()  # as deploy/gunicorn.conf.py's post_worker_init does for the apps
