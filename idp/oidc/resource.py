"""Checking access tokens presented to the IdP's own resources (userinfo, introspection, the
tenant admin API), and the RFC 6750 answers to a bad one."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request
from sqlalchemy import select

from idp.models import SsoSession, utcnow
from idp.oidc import tokens
from idp.oidc.client_credentials import ADMIN_SCOPE, admin_audience
from idp.oidc.clients import find_client
from idp.sso.sessions import idle_floor
from idp.store.grants import access_token_state, token_denied
from shared.db import get_db


def bearer_token() -> str | None:
    """RFC 6750 §2.1 and §2.2: the token from the Authorization header or a form body."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        return request.form.get("access_token")
    return None


def bearer_error(error: str, status: int, description: str | None = None) -> Response:
    """RFC 6750 §3: an error answer with its WWW-Authenticate challenge, never cached."""
    body = {"error": error}
    if description:
        body["error_description"] = description
    resp = jsonify(body)
    resp.status_code = status
    resp.headers["WWW-Authenticate"] = f'Bearer error="{error}"'
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    return resp


def _signed_access_token(token: str, audience: str) -> dict[str, Any] | None:
    """The claims of one of our unexpired access tokens (at+jwt, ES256) for audience."""
    cfg = current_app.config
    ring = current_app.extensions["keys"].ring(get_db)
    try:
        claims = tokens.verify(
            ring.public,
            token,
            typ=tokens.ACCESS_TOKEN_TYP,
            issuer=cfg["ISSUER"],
            algorithms=["ES256"],
        )
    except tokens.TokenInvalid:
        return None
    return claims if claims.get("aud") == audience else None


def check_access_token(token: str) -> dict[str, Any] | None:
    """Return the claims of a live access token: ours, unexpired, not revoked, session live."""
    claims = _signed_access_token(token, current_app.config["ISSUER"])
    if claims is None:
        return None
    denied_jti, denied_grant, alive = access_token_state(
        str(claims.get("jti")), str(claims.get("grant_id")), str(claims.get("sid"))
    )
    if denied_jti or denied_grant:
        return None
    # SQL has the last word: a Redis copy revived by a restart or failover of Redis must not
    # bring an ended session back, and a sid key lost in one does not end a session SQL saw
    # within the idle time.
    session = (
        get_db()
        .execute(
            select(SsoSession.ended_at, SsoSession.last_seen).where(
                SsoSession.id == str(claims.get("sid"))
            )
        )
        .first()
    )
    if session is None or session.ended_at is not None:
        return None
    if not alive and session.last_seen <= idle_floor(utcnow()):
        return None
    return claims


def check_client_token(token: str) -> int | None:
    """Return the school of a live client credentials token for the tenant admin API."""
    found = client_token_claims(token)
    return found[1] if found is not None else None


def client_token_claims(token: str) -> tuple[dict[str, Any], int] | None:
    """Return the claims and the school of a live client credentials token for the tenant admin
    API: ours, unexpired, not revoked, scope admin, its client still active."""

    claims = _signed_access_token(token, admin_audience())
    if claims is None or ADMIN_SCOPE not in str(claims.get("scope", "")).split() or "sid" in claims:
        return None
    client = find_client(claims.get("client_id"))
    if client is None or client.client_id != claims.get("sub"):
        return None
    if token_denied(str(claims.get("jti"))):
        return None
    return claims, client.row.school_id


def check_id_token_hint(hint: str | None) -> dict[str, Any] | None:
    """Return the claims of an id_token_hint if it is one of our ID tokens (expiry may have
    passed: a hint names a session, it grants nothing)."""
    if not hint:
        return None
    ring = current_app.extensions["keys"].ring(get_db)
    try:
        claims = tokens.verify(
            ring.public,
            hint,
            typ=tokens.ID_TOKEN_TYP,
            issuer=current_app.config["ISSUER"],
            algorithms=["RS256", "ES256"],
            check_exp=False,
        )
    except tokens.TokenInvalid:
        return None
    return claims if isinstance(claims.get("aud"), str) else None
