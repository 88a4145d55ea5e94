"""Bad access tokens at the IdP's own resources (RFC 6750 §3.1, RFC 7009, RFC 7662, RFC 9068).

A token that is expired, revoked, of the wrong type or not signed by us gets 401 with
`WWW-Authenticate: Bearer error="invalid_token"` at userinfo, and introspects as inactive.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from flask import Flask
from joserfc.jwk import ECKey

from tests.support import (
    Browser,
    PersonLogin,
    SchoolClient,
    obtain_code,
    redeem,
    userinfo,
)


@dataclass
class Issued:
    """Tokens from one redemption, with the access token's claims."""

    school: SchoolClient
    person: PersonLogin
    browser: Browser
    tokens: dict[str, Any]
    claims: dict[str, Any]
    header: dict[str, Any]

    @property
    def access(self) -> str:
        """The access token."""
        token: str = self.tokens["access_token"]
        return token


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
    )


@pytest.fixture
def issued(
    idp: str,
    make_school: Callable[..., SchoolClient],
    make_person: Callable[..., PersonLogin],
    browser: Browser,
) -> Issued:
    """A live access token (checked to work at userinfo)."""
    school = make_school()
    person = make_person(school)
    code, verifier = obtain_code(
        browser, idp, school, person, scope="openid profile email offline_access"
    )
    resp = redeem(idp, school, code, verifier)
    assert resp.status_code == 200, resp.text
    tokens = resp.json()
    assert userinfo(idp, tokens["access_token"]).status_code == 200
    header, claims = _segments(tokens["access_token"])
    return Issued(school, person, browser, tokens, claims, header)


def assert_invalid_token(resp: requests.Response) -> None:
    """RFC 6750 §3.1: 401 with the error in the WWW-Authenticate header, no claims."""
    assert resp.status_code == 401, resp.text
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    assert resp.json() == {"error": "invalid_token"}
    assert resp.headers["Cache-Control"] == "no-store"


def introspect(idp: str, school: SchoolClient, token: str) -> dict[str, Any]:
    """Introspect a token as the school."""
    resp = requests.post(
        f"{idp}/introspect",
        data={"token": token},
        timeout=10,
        auth=(school.client_id, school.client_secret or ""),
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _mint(idp_app: Flask, claims: dict[str, Any], ttl: int) -> str:
    """Sign an access token with the IdP's own code and keys, copying a real token's claims."""
    from idp.oidc import tokens
    from shared.db import get_db

    with idp_app.app_context():
        ring = idp_app.extensions["keys"].ring(get_db())
        token, _ = tokens.access_token(
            ring,
            idp_app.config["ISSUER"],
            ttl,
            sub=claims["sub"],
            client_id=claims["client_id"],
            scope=claims["scope"],
            sid=claims["sid"],
            grant_id=claims["grant_id"],
            auth_time=claims["auth_time"],
            acr=claims["acr"],
            amr=claims["amr"],
        )
        return token


# --- expired and revoked ------------------------------------------------------------------------


def test_freshly_minted_token_works(idp: str, idp_app: Flask, issued: Issued) -> None:
    """The control for the expired token below: the same minting with a positive lifetime."""
    resp = userinfo(idp, _mint(idp_app, issued.claims, 300))
    assert resp.status_code == 200, resp.text
    assert resp.json()["sub"] == issued.person.sub


@pytest.mark.parametrize("ttl", [-1, -3600])
def test_expired_access_token_is_401(idp: str, idp_app: Flask, issued: Issued, ttl: int) -> None:
    expired = _mint(idp_app, issued.claims, ttl)
    assert_invalid_token(userinfo(idp, expired))
    assert introspect(idp, issued.school, expired) == {"active": False}


@pytest.mark.parametrize("auth", ["basic", "post"])
def test_revoked_access_token_is_401(idp: str, issued: Issued, auth: str) -> None:
    school = issued.school
    data = {"token": issued.access, "token_type_hint": "access_token"}
    basic: tuple[str, str] | None = (school.client_id, school.client_secret or "")
    if auth == "post":
        data.update(client_id=school.client_id, client_secret=school.client_secret or "")
        basic = None
    resp = requests.post(f"{idp}/revoke", data=data, auth=basic, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    assert_invalid_token(userinfo(idp, issued.access))
    assert introspect(idp, school, issued.access) == {"active": False}
    # Revoking one access token leaves the rest of the grant alone.
    refreshed = requests.post(
        f"{idp}/token",
        timeout=10,
        data={"grant_type": "refresh_token", "refresh_token": issued.tokens["refresh_token"]},
        auth=(school.client_id, school.client_secret or ""),
    )
    assert refreshed.status_code == 200, refreshed.text
    assert userinfo(idp, refreshed.json()["access_token"]).status_code == 200


def test_revoked_refresh_token_kills_the_grants_access_token(idp: str, issued: Issued) -> None:
    school = issued.school
    resp = requests.post(
        f"{idp}/revoke",
        data={"token": issued.tokens["refresh_token"]},
        auth=(school.client_id, school.client_secret or ""),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert_invalid_token(userinfo(idp, issued.access))


def test_revocation_by_another_client_is_refused(
    idp: str, issued: Issued, make_school: Callable[..., SchoolClient]
) -> None:
    """RFC 7009 §2.1: a client may only revoke its own tokens; the token stays valid."""
    other = make_school()
    resp = requests.post(
        f"{idp}/revoke",
        data={"token": issued.access},
        auth=(other.client_id, other.client_secret or ""),
        timeout=10,
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "invalid_grant"
    assert userinfo(idp, issued.access).status_code == 200


def test_revocation_needs_client_authentication(idp: str, issued: Issued) -> None:
    resp = requests.post(
        f"{idp}/revoke",
        data={"token": issued.access},
        timeout=10,
        auth=(issued.school.client_id, "x" * 43),
    )
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"] == "invalid_client"
    assert userinfo(idp, issued.access).status_code == 200


def test_introspection_answers_only_about_the_callers_tokens(
    idp: str, issued: Issued, make_school: Callable[..., SchoolClient]
) -> None:
    assert introspect(idp, issued.school, issued.access)["active"] is True
    assert introspect(idp, make_school(), issued.access) == {"active": False}


def test_access_token_of_an_ended_session_is_401(idp: str, issued: Issued) -> None:
    """Logging out ends the SSO session; its unexpired access tokens stop working at once."""
    resp = issued.browser.http.get(
        f"{idp}/logout",
        params={"id_token_hint": issued.tokens["id_token"]},
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert_invalid_token(userinfo(idp, issued.access))
    assert introspect(idp, issued.school, issued.access) == {"active": False}


# --- tokens that are not our access tokens ------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _encode(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())


def _es_public_pem(idp: str, kid: str) -> bytes:
    jwks = requests.get(f"{idp}/jwks", timeout=10).json()
    return ECKey.import_key(next(k for k in jwks["keys"] if k["kid"] == kid)).as_pem(private=False)


def _hs256_with_public_key(idp: str, issued: Issued) -> str:
    signing_input = _encode({**issued.header, "alg": "HS256"}, issued.claims)
    mac = hmac.new(
        _es_public_pem(idp, issued.header["kid"]), signing_input.encode(), hashlib.sha256
    ).digest()
    return signing_input + "." + _b64(mac)


def _resigned_claims(issued: Issued, **changes: Any) -> str:
    """The real signature over altered claims."""
    return _encode(issued.header, {**issued.claims, **changes}) + "." + issued.access.split(".")[2]


BAD_TOKENS: dict[str, Callable[[str, Issued], str]] = {
    "garbage": lambda idp, i: "not-a-token",
    "empty": lambda idp, i: "",
    "alg none": lambda idp, i: _encode({**i.header, "alg": "none"}, i.claims) + ".",
    "HS256 keyed with the public key": _hs256_with_public_key,
    "altered claims": lambda idp, i: _resigned_claims(i, sub="someone-else"),
    "truncated signature": lambda idp, i: i.access[:-4],
    "ID token": lambda idp, i: i.tokens["id_token"],
    "refresh token": lambda idp, i: i.tokens["refresh_token"],
    "oversized": lambda idp, i: i.access + "A" * 10000,
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_not_our_access_token_is_401(idp: str, issued: Issued, kind: str) -> None:
    assert_invalid_token(userinfo(idp, BAD_TOKENS[kind](idp, issued)))


def test_es256_id_token_is_not_an_access_token(
    idp: str,
    make_school: Callable[..., SchoolClient],
    make_person: Callable[..., PersonLogin],
    browser: Browser,
) -> None:
    """Signed by our ES256 key like an access token, but typ JWT: refused (RFC 9068 §4)."""
    school = make_school(id_token_alg="ES256")
    person = make_person(school)
    code, verifier = obtain_code(browser, idp, school, person)
    resp = redeem(idp, school, code, verifier)
    assert resp.status_code == 200, resp.text
    id_token = resp.json()["id_token"]
    assert _segments(id_token)[0]["alg"] == "ES256"
    assert_invalid_token(userinfo(idp, id_token))


def test_missing_token_is_401(idp: str, issued: Issued) -> None:
    assert_invalid_token(requests.get(f"{idp}/userinfo", timeout=10))


@pytest.mark.parametrize("how", ["header", "form body"])
def test_revoked_token_is_401_on_post_too(idp: str, issued: Issued, how: str) -> None:
    """Userinfo also reads the token from a POST body (RFC 6750 §2.2); same checks there."""

    def post() -> requests.Response:
        if how == "header":
            return requests.post(
                f"{idp}/userinfo", timeout=10, headers={"Authorization": f"Bearer {issued.access}"}
            )
        return requests.post(f"{idp}/userinfo", data={"access_token": issued.access}, timeout=10)

    assert post().status_code == 200
    school = issued.school
    resp = requests.post(
        f"{idp}/revoke",
        data={"token": issued.access},
        auth=(school.client_id, school.client_secret or ""),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert_invalid_token(post())
