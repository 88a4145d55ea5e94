"""The upstream eID provider with TARA's profile: authorization URL, code exchange and full
ID-token validation (OIDC Core §3.1.3.7, with TARA's deviations).

TARA selects the method by scope (`openid idcard`, `openid mid`, `openid smartid`) and says
that a restricted scope must be verified by the client, so `amr` is checked against the method
asked for. Its `at_hash` is not standard Base64, so the ID token is validated without the
access token. Its ID tokens live 40 seconds: a small clock-skew allowance applies.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from flask import current_app

from idp.oidc.assurance import ACR_LEVELS
from shared import isikukood as ik
from shared import oidc_rp
from shared.oidc_rp import HTTP, IdTokenInvalid, Provider, provider

# Method (button) → the scope that selects it, and the amr TARA reports for it.
METHODS = {"idcard": ("idcard", "idcard"), "mid": ("mid", "mID"), "smartid": ("smartid", "smartid")}


class EidError(Exception):
    """An upstream answer we refuse; the reason is for the log, never for the page."""


@dataclass(frozen=True)
class EidIdentity:
    """Who the upstream says authenticated, and how."""

    isikukood: str
    given_name: str
    family_name: str
    birth_date: dt.date | None
    amr: list[str]
    acr: str


@dataclass(frozen=True)
class Pending:
    """What the callback needs to check the upstream's answer: kept server-side by state."""

    state: str
    nonce: str
    verifier: str
    method: str


def enabled() -> bool:
    """Tell whether an upstream eID provider is configured."""
    cfg = current_app.config
    return bool(cfg.get("EID_ISSUER") and cfg.get("EID_CLIENT_ID") and cfg.get("EID_CLIENT_SECRET"))


def redirect_uri() -> str:
    """Where the upstream sends the browser back to."""
    cfg = current_app.config
    return str(cfg.get("EID_REDIRECT_URI") or cfg["ISSUER"] + "/eid/callback")


def _upstream() -> Provider:
    """The upstream's metadata and keys (cached per process; an unknown kid refetches keys)."""
    try:
        return provider(current_app.config["EID_ISSUER"], current_app.config["EID_TIMEOUT_SECONDS"])
    except (requests.RequestException, ValueError, KeyError, RuntimeError) as exc:
        raise EidError(f"upstream unavailable: {type(exc).__name__}") from exc


def _s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def begin(method: str, locale: str) -> tuple[Pending, str]:
    """Start an upstream authorization for one method; return what to keep and where to go."""
    if method not in METHODS:
        raise EidError("unknown method")
    cfg = current_app.config
    pending = Pending(
        state=secrets.token_urlsafe(24),
        nonce=secrets.token_urlsafe(24),
        verifier=secrets.token_urlsafe(48),
        method=method,
    )
    endpoint = _upstream().endpoint("authorization_endpoint")
    query = urlencode(
        {
            "response_type": "code",
            "client_id": cfg["EID_CLIENT_ID"],
            "redirect_uri": redirect_uri(),
            "scope": "openid " + METHODS[method][0],
            "state": pending.state,
            "nonce": pending.nonce,
            "ui_locales": locale,
            "code_challenge": _s256(pending.verifier),
            "code_challenge_method": "S256",
        }
    )
    return pending, endpoint + ("&" if "?" in endpoint else "?") + query


def exchange(pending: Pending, code: str) -> EidIdentity:
    """Redeem the code (client_secret_basic, PKCE) and validate the ID token it brings."""
    cfg = current_app.config
    endpoint = _upstream().endpoint("token_endpoint")
    try:
        resp = HTTP.post(
            endpoint,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri(),
                "code_verifier": pending.verifier,
            },
            auth=(cfg["EID_CLIENT_ID"], cfg["EID_CLIENT_SECRET"]),
            timeout=cfg["EID_TIMEOUT_SECONDS"],
            allow_redirects=False,
        )
        body = resp.json() if resp.status_code == 200 else None
    except (requests.RequestException, ValueError) as exc:
        raise EidError(f"token endpoint unavailable: {type(exc).__name__}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("id_token"), str):
        raise EidError(f"token endpoint refused the code ({resp.status_code})")
    return validate_id_token(body["id_token"], pending)


def validate_id_token(token: str, pending: Pending) -> EidIdentity:
    """Check signature (upstream JWKS), iss, aud, exp/iat, nonce and amr; read the person."""
    cfg = current_app.config
    try:
        claims = oidc_rp.validate_id_token(
            _upstream(),
            token,
            client_id=cfg["EID_CLIENT_ID"],
            nonce=pending.nonce,
            leeway=cfg["EID_CLOCK_SKEW_SECONDS"],
            timeout=cfg["EID_TIMEOUT_SECONDS"],
        )
    except (IdTokenInvalid, requests.RequestException, ValueError) as exc:
        raise EidError(f"ID token refused: {exc}") from exc
    expected_amr = METHODS[pending.method][1]
    amr = claims.get("amr")
    if not isinstance(amr, list) or amr != [expected_amr]:
        raise EidError("amr is not the method asked for")
    acr = claims.get("acr")
    if acr not in ACR_LEVELS:
        raise EidError("unknown acr")
    return _identity(claims, amr, acr)


def _identity(claims: dict[str, Any], amr: list[str], acr: str) -> EidIdentity:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.startswith("EE") or not ik.is_valid(sub[2:]):
        raise EidError("sub is not EE + a valid isikukood")
    profile = claims.get("profile_attributes")
    if not isinstance(profile, dict):
        raise EidError("profile_attributes missing")
    given, family = profile.get("given_name"), profile.get("family_name")
    if not isinstance(given, str) or not isinstance(family, str) or not (given and family):
        raise EidError("names missing")
    birth = None
    raw_birth = profile.get("date_of_birth")
    if isinstance(raw_birth, str):
        try:
            birth = dt.date.fromisoformat(raw_birth)
        except ValueError as exc:
            raise EidError("date_of_birth malformed") from exc
    return EidIdentity(
        isikukood=sub[2:], given_name=given, family_name=family, birth_date=birth, amr=amr, acr=acr
    )
