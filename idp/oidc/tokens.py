"""Minting and checking the tokens we sign: ID (JWT), access (at+jwt), logout (logout+jwt),
security events (secevent+jwt)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.oidc.keys import KeyRing
from shared.messages import (
    ACCESS_TOKEN_TYP,
    BACKCHANNEL_EVENT,
    ID_TOKEN_TYP,
    LOGOUT_TOKEN_TYP,
    PERSON_CHANGED_EVENT,
    SET_TYP,
)

__all__ = [
    "ACCESS_TOKEN_TYP",
    "BACKCHANNEL_EVENT",
    "ID_TOKEN_TYP",
    "LOGOUT_TOKEN_TYP",
    "PERSON_CHANGED_EVENT",
    "SET_TYP",
]


def sign(ring: KeyRing, alg: str, typ: str, claims: dict[str, Any]) -> str:
    """Sign claims with the active key of alg; the kid always goes in the header."""
    key = ring.signing[alg]
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": typ}, claims, key)


def left_hash(value: str, alg: str) -> str:
    """Return the OIDC at_hash of a token for an RS256/ES256-signed ID token."""
    digest = hashlib.sha256(value.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def access_token(
    ring: KeyRing,
    issuer: str,
    ttl: int,
    *,
    sub: str,
    client_id: str,
    scope: str,
    sid: str,
    grant_id: str,
    auth_time: int,
    acr: str,
    amr: list[str],
) -> tuple[str, dict[str, Any]]:
    """Return an RFC 9068 access token for the IdP's own resources, and its claims."""
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": issuer,
        "sub": sub,
        "client_id": client_id,
        "scope": scope,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
        "sid": sid,
        "grant_id": grant_id,
        "auth_time": auth_time,
        "acr": acr,
        "amr": amr,
    }
    return sign(ring, "ES256", ACCESS_TOKEN_TYP, claims), claims


def id_token(
    ring: KeyRing,
    issuer: str,
    ttl: int,
    alg: str,
    *,
    sub: str,
    client_id: str,
    sid: str,
    auth_time: int,
    acr: str,
    amr: list[str],
    nonce: str | None,
    access: str | None,
    extra: dict[str, Any],
) -> str:
    """Return an ID token for one client."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": sub,
        "aud": client_id,
        "iat": now,
        "exp": now + ttl,
        "auth_time": auth_time,
        "sid": sid,
        "acr": acr,
        "amr": amr,
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if access is not None:
        claims["at_hash"] = left_hash(access, alg)
    claims.update(extra)
    return sign(ring, alg, ID_TOKEN_TYP, claims)


def logout_token(
    ring: KeyRing, issuer: str, *, client_id: str, sub: str | None, sid: str | None
) -> str:
    """Return a Back-Channel Logout 1.0 token for one client (never a nonce)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(16),
        "events": {BACKCHANNEL_EVENT: {}},
    }
    if sub:
        claims["sub"] = sub
    if sid:
        claims["sid"] = sid
    return sign(ring, "ES256", LOGOUT_TOKEN_TYP, claims)


def security_event_token(
    ring: KeyRing, issuer: str, *, client_id: str, sub: str, events: dict[str, Any]
) -> str:
    """Return a Security Event Token (RFC 8417) for one client; the subject is an RFC 9493
    iss_sub identifier (also as sub) of that school's account."""
    claims = {
        "iss": issuer,
        "aud": client_id,
        "iat": int(time.time()),
        "jti": secrets.token_urlsafe(16),
        "sub": sub,
        "sub_id": {"format": "iss_sub", "iss": issuer, "sub": sub},
        "events": events,
    }
    return sign(ring, "ES256", SET_TYP, claims)


def client_access_token(
    ring: KeyRing, issuer: str, ttl: int, *, client_id: str, audience: str, scope: str
) -> tuple[str, dict[str, Any]]:
    """Return an RFC 9068 access token of the client credentials grant (the client is the
    subject, RFC 9068 §2.2), for one resource of ours."""
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": client_id,
        "client_id": client_id,
        "scope": scope,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
    }
    return sign(ring, "ES256", ACCESS_TOKEN_TYP, claims), claims


class TokenInvalid(Exception):
    """A token that is not one of ours, of the wrong type, or expired."""


def verify(
    keys: KeySet,
    token: str,
    *,
    typ: str,
    issuer: str,
    algorithms: list[str],
    check_exp: bool = True,
    leeway: int = 0,
) -> dict[str, Any]:
    """Verify signature, type and issuer of one of our tokens and return its claims."""
    if not token or len(token) > 8192:
        raise TokenInvalid("missing or oversized token")
    try:
        decoded = jwt.decode(token, keys, algorithms=algorithms)
    except (JoseError, ValueError) as exc:
        raise TokenInvalid(str(exc)) from exc
    header = decoded.header
    if header.get("typ") != typ:
        raise TokenInvalid("wrong token type")
    claims = decoded.claims
    if claims.get("iss") != issuer:
        raise TokenInvalid("wrong issuer")
    if check_exp:
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp + leeway < time.time():
            raise TokenInvalid("expired")
    return dict(claims)
