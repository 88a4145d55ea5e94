"""Interoperability: real relying-party libraries against the live IdP over HTTP.

Authlib's OAuth2Session and pyoidc (the `oic` package) log in with PKCE S256 and validate the
ID token against the JWKS the provider publishes; then refresh rotation, revocation (RFC 7009),
introspection (RFC 7662) and the authorization request parameters of OIDC Core §3.1.2.1.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.requests_client import OAuthError as AuthlibOAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import UnsupportedAlgorithmError
from joserfc.jwk import KeySet
from jwkest import BadSignature
from oic.oic import Client as OicClient
from oic.oic.message import AccessTokenResponse, AuthorizationResponse, RegistrationResponse
from oic.utils.authn.client import CLIENT_AUTHN_METHOD

from tests.support import (
    Browser,
    PersonLogin,
    SchoolClient,
    authorize_url,
    callback_params,
    pkce_pair,
    refresh,
    token_request,
    userinfo,
)

# ---------------------------------------------------------------------------------- helpers


def discovery(idp: str) -> dict[str, Any]:
    """The provider metadata, as a relying party reads it."""
    resp = requests.get(f"{idp}/.well-known/openid-configuration", timeout=5)
    assert resp.status_code == 200
    return resp.json()


def published_keys(idp: str) -> KeySet:
    """The JWKS found through discovery."""
    return KeySet.import_key_set(requests.get(discovery(idp)["jwks_uri"], timeout=5).json())


def callback_url(browser: Browser, url: str, person: PersonLogin, school: SchoolClient) -> str:
    """Run an authorization request through the login page; return the full callback URL."""
    resp = browser.follow(url, school.redirect_uri)
    if resp.status_code == 200:
        resp = browser.submit_login(resp, person.email, person.password, school.redirect_uri)
    assert resp.status_code in (302, 303), resp.text
    location = urljoin(resp.url, resp.headers["Location"])
    assert location.startswith(school.redirect_uri + "?")
    return location


def validate_id_token(
    idp: str,
    id_token: str,
    client_id: str,
    nonce: str | None = None,
    access_token: str | None = None,
) -> CodeIDToken:
    """Verify an ID token as an Authlib relying party does: JWKS signature, then the claims."""
    meta = discovery(idp)
    decoded = jwt.decode(
        id_token, published_keys(idp), algorithms=meta["id_token_signing_alg_values_supported"]
    )
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {
            "iss": {"essential": True, "value": meta["issuer"]},
            "aud": {"essential": True, "value": client_id},
            "sub": {"essential": True},
            "exp": {"essential": True},
            "iat": {"essential": True},
        },
        {"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    claims.validate()
    assert decoded.header["typ"] == "JWT"
    return claims


def decode_access_token(idp: str, access_token: str) -> dict[str, Any]:
    """Verify an RFC 9068 access token against the JWKS."""
    decoded = jwt.decode(access_token, published_keys(idp), algorithms=["ES256"])
    assert decoded.header["typ"] == "at+jwt"
    return dict(decoded.claims)


def without(url: str, *names: str) -> str:
    """Drop query parameters from a URL."""
    parts = urlsplit(url)
    query = [(k, v) for k, vs in parse_qs(parts.query).items() for v in vs if k not in names]
    return urlunsplit(parts._replace(query=urlencode(query)))


def code_for(
    idp: str,
    browser: Browser,
    school: SchoolClient,
    person: PersonLogin,
    drop: tuple[str, ...] = (),
    **extra: str,
) -> tuple[dict[str, str], str]:
    """Get an authorization code (logging in if a page is shown); return params and verifier."""
    verifier, challenge = pkce_pair()
    url = without(authorize_url(idp, school, challenge, **extra), *drop)
    params = browser.login(url, person, school)
    assert "code" in params, params
    return params, verifier


def redeem(idp: str, school: SchoolClient, code: str, verifier: str) -> dict[str, Any]:
    """Exchange a code at the token endpoint."""
    resp = token_request(
        idp,
        school,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": school.redirect_uri,
            "code_verifier": verifier,
        },
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def sign_in(
    idp: str,
    browser: Browser,
    school: SchoolClient,
    person: PersonLogin,
    drop: tuple[str, ...] = (),
    **extra: str,
) -> dict[str, Any]:
    """Log in (or reuse the live session) and return the token response."""
    params, verifier = code_for(idp, browser, school, person, drop, **extra)
    return redeem(idp, school, params["code"], verifier)


def introspect(idp: str, school: SchoolClient, token: str) -> dict[str, Any]:
    """Introspect a token as school."""
    resp = requests.post(
        f"{idp}/introspect",
        data={"token": token},
        auth=(school.client_id, school.client_secret or ""),
        timeout=5,
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    return resp.json()


def revoke(idp: str, school: SchoolClient, token: str, hint: str | None = None) -> None:
    """Revoke a token as school (RFC 7009 answers 200 either way)."""
    data = {"token": token, **({"token_type_hint": hint} if hint else {})}
    resp = requests.post(
        f"{idp}/revoke", data=data, auth=(school.client_id, school.client_secret or ""), timeout=5
    )
    assert resp.status_code == 200, resp.text


def set_person(idp_app: Any, person: PersonLogin, **fields: Any) -> None:
    """Give a person's record more data (phone, address, ...) than the fixture sets."""
    from sqlalchemy import select

    from idp.models import Account, Person
    from shared.db import get_db

    with idp_app.app_context():
        db = get_db()
        row = db.scalar(select(Person).join(Account).where(Account.sub == person.sub))
        assert row is not None
        for key, value in fields.items():
            setattr(row, key, value)
        db.commit()


# ------------------------------------------------------------------------- Authlib (RP)


def authlib_login(
    idp: str,
    browser: Browser,
    school: SchoolClient,
    person: PersonLogin,
    method: str,
    scope: str = "openid profile email",
) -> tuple[OAuth2Session, dict[str, Any], str, list[requests.PreparedRequest]]:
    """The code flow with PKCE as Authlib's requests client runs it."""
    meta = discovery(idp)
    session = OAuth2Session(
        school.client_id,
        school.client_secret,
        scope=scope,
        redirect_uri=school.redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method=method,
    )
    sent: list[requests.PreparedRequest] = []
    session.hooks["response"].append(lambda r, *a, **k: sent.append(r.request))
    verifier = generate_token(64)
    nonce = generate_token(24)
    url, state = session.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"] == [state]
    callback = callback_url(browser, url, person, school)
    assert parse_qs(urlsplit(callback).query)["iss"] == [meta["issuer"]]
    token = session.fetch_token(
        meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    return session, dict(token), nonce, sent


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_confidential_client(idp, make_school, make_person, browser, method):
    school = make_school()
    person = make_person(school)
    session, token, nonce, sent = authlib_login(idp, browser, school, person, method)
    token_req = sent[-1]
    body = str(token_req.body)
    if method == "client_secret_basic":
        assert token_req.headers["Authorization"].startswith("Basic ")
        assert "client_secret" not in body
    else:
        assert "Authorization" not in token_req.headers
        assert "client_secret=" in body
    assert "code_verifier=" in body
    claims = validate_id_token(
        idp, token["id_token"], school.client_id, nonce, token["access_token"]
    )
    assert claims["sub"] == person.sub and claims["nonce"] == nonce
    assert claims["at_hash"] and claims["auth_time"] and claims["sid"]
    info = session.get(discovery(idp)["userinfo_endpoint"])
    assert info.status_code == 200
    assert info.json()["sub"] == person.sub and info.json()["email"] == person.email


def test_authlib_public_client(idp, make_school, make_person, browser):
    school = make_school(public=True)
    assert school.client_secret is None
    person = make_person(school)
    session, token, nonce, sent = authlib_login(idp, browser, school, person, "none")
    token_req = sent[-1]
    assert "Authorization" not in token_req.headers
    assert "client_id=" in str(token_req.body) and "client_secret" not in str(token_req.body)
    claims = validate_id_token(
        idp, token["id_token"], school.client_id, nonce, token["access_token"]
    )
    assert claims["sub"] == person.sub


def test_authlib_public_client_needs_the_verifier(idp, make_school, make_person, browser):
    school = make_school(public=True)
    person = make_person(school)
    params, _ = code_for(idp, browser, school, person)
    resp = token_request(
        idp,
        school,
        {
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": school.redirect_uri,
            "code_verifier": pkce_pair()[0],
        },
    )
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


def test_authlib_refresh_revoke_and_introspect(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    meta = discovery(idp)
    session, token, _, _ = authlib_login(
        idp,
        browser,
        school,
        person,
        "client_secret_basic",
        scope="openid profile email offline_access",
    )
    assert token["refresh_token"]
    refreshed = session.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    claims = validate_id_token(
        idp, refreshed["id_token"], school.client_id, access_token=refreshed["access_token"]
    )
    assert claims["sub"] == person.sub
    resp = session.introspect_token(
        meta["introspection_endpoint"],
        token=refreshed["access_token"],
        token_type_hint="access_token",
    )
    assert resp.status_code == 200 and resp.json()["active"] is True
    resp = session.revoke_token(
        meta["revocation_endpoint"],
        token=refreshed["refresh_token"],
        token_type_hint="refresh_token",
    )
    assert resp.status_code == 200
    with pytest.raises(AuthlibOAuthError) as err:
        session.refresh_token(meta["token_endpoint"], refresh_token=refreshed["refresh_token"])
    assert err.value.error == "invalid_grant"
    resp = session.introspect_token(
        meta["introspection_endpoint"], token=refreshed["refresh_token"]
    )
    assert resp.json() == {"active": False}


# -------------------------------------------------------------------------- pyoidc (RP)


def pyoidc_client(idp: str, school: SchoolClient, alg: str = "RS256") -> OicClient:
    """A pyoidc relying party configured from discovery and the school's registration."""
    client = OicClient(client_authn_method=CLIENT_AUTHN_METHOD)
    config = client.provider_config(idp)
    assert config["issuer"] == idp
    client.store_registration_info(
        RegistrationResponse(
            client_id=school.client_id,
            client_secret=school.client_secret,
            redirect_uris=[school.redirect_uri],
            token_endpoint_auth_method="client_secret_basic",
            id_token_signed_response_alg=alg,
        )
    )
    return client


def pyoidc_login(
    idp: str, browser: Browser, school: SchoolClient, person: PersonLogin, alg: str = "RS256"
) -> tuple[OicClient, AccessTokenResponse, str, str]:
    """The code flow with PKCE as pyoidc runs it; the library verifies the ID token."""
    client = pyoidc_client(idp, school, alg)
    challenge_args, verifier = client.add_code_challenge()
    assert challenge_args["code_challenge_method"] == "S256"
    state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    request = client.construct_AuthorizationRequest(
        request_args={
            "client_id": school.client_id,
            "response_type": "code",
            "scope": ["openid", "profile", "email"],
            "nonce": nonce,
            "redirect_uri": school.redirect_uri,
            "state": state,
            **challenge_args,
        }
    )
    url = request.request(client.authorization_endpoint)
    callback = callback_url(browser, url, person, school)
    auth_response = client.parse_response(
        AuthorizationResponse, info=urlsplit(callback).query, sformat="urlencoded"
    )
    assert auth_response["state"] == state
    tokens = client.do_access_token_request(
        state=state,
        request_args={
            "code": auth_response["code"],
            "code_verifier": verifier,
            "redirect_uri": school.redirect_uri,
        },
        authn_method="client_secret_basic",
    )
    assert isinstance(tokens, AccessTokenResponse), tokens
    return client, tokens, state, nonce


def _tampered(id_token: str) -> str:
    """The same ID token with another subject and the original signature."""
    header, payload, signature = id_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_pyoidc_code_flow(idp, make_school, make_person, browser):
    school = make_school(id_token_alg="RS256")
    person = make_person(school)
    client, tokens, state, nonce = pyoidc_login(idp, browser, school, person)
    id_token = tokens["id_token"]  # parsed and verified by pyoidc against the JWKS
    assert id_token["sub"] == person.sub and id_token["nonce"] == nonce
    assert id_token["aud"] == [school.client_id] and id_token["iss"] == idp
    assert id_token.jws_header["alg"] == "RS256"
    assert id_token.jws_header["kid"] in {k.kid for k in published_keys(idp).keys}
    info = client.do_user_info_request(state=state)
    assert info["sub"] == person.sub and info["email"] == person.email
    # pyoidc refuses the same token response with a forged ID token.
    forged = {**tokens.to_dict(), "id_token": _tampered(tokens["id_token_jwt"])}
    forged.pop("id_token_jwt", None)
    with pytest.raises(BadSignature):
        client.parse_response(
            AccessTokenResponse, info=json.dumps(forged), sformat="json", state=state
        )


def test_pyoidc_es256_client(idp, make_school, make_person, browser):
    school = make_school(id_token_alg="ES256")
    person = make_person(school)
    _, tokens, _, nonce = pyoidc_login(idp, browser, school, person, alg="ES256")
    assert tokens["id_token"].jws_header["alg"] == "ES256"
    assert tokens["id_token"]["nonce"] == nonce


# ------------------------------------------------------ refresh, revocation, introspection


def test_refresh_rotation_and_reuse_revokes_the_family(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    first = sign_in(idp, browser, school, person, scope="openid offline_access")
    r1 = first["refresh_token"]
    resp = refresh(idp, school, r1)
    assert resp.status_code == 200, resp.text
    r2 = resp.json()["refresh_token"]
    assert r2 != r1
    assert userinfo(idp, resp.json()["access_token"]).status_code == 200
    reused = refresh(idp, school, r1)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    dead = refresh(idp, school, r2)
    assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"
    # Access tokens of the revoked family stop working too.
    assert userinfo(idp, resp.json()["access_token"]).status_code == 401


def test_refresh_token_of_another_client_is_refused(idp, make_school, make_person, browser):
    school, other = make_school(), make_school()
    person = make_person(school)
    tokens = sign_in(idp, browser, school, person, scope="openid offline_access")
    resp = refresh(idp, other, tokens["refresh_token"])
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
    assert refresh(idp, school, tokens["refresh_token"]).status_code == 200


def test_revoked_refresh_token_is_refused(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    tokens = sign_in(idp, browser, school, person, scope="openid offline_access")
    revoke(idp, school, tokens["refresh_token"], "refresh_token")
    resp = refresh(idp, school, tokens["refresh_token"])
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


def test_revoked_access_token_is_refused_at_userinfo(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    tokens = sign_in(idp, browser, school, person, scope="openid offline_access")
    assert userinfo(idp, tokens["access_token"]).status_code == 200
    revoke(idp, school, tokens["access_token"], "access_token")
    resp = userinfo(idp, tokens["access_token"])
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    assert introspect(idp, school, tokens["access_token"]) == {"active": False}
    # The refresh token was not the one revoked: it still works.
    assert refresh(idp, school, tokens["refresh_token"]).status_code == 200


def test_revoking_garbage_is_fine(idp, make_school):
    school = make_school()
    revoke(idp, school, "not-a-token")
    revoke(idp, school, "a.b.c", "access_token")


def test_introspection(idp, make_school, make_person, browser):
    school, other = make_school(), make_school()
    person = make_person(school)
    tokens = sign_in(idp, browser, school, person, scope="openid email offline_access")
    now = time.time()
    active = introspect(idp, school, tokens["access_token"])
    assert active["active"] is True
    assert active["sub"] == person.sub and active["client_id"] == school.client_id
    assert set(active["scope"].split()) == {"openid", "email", "offline_access"}
    assert now < active["exp"] <= now + 3600
    live_refresh = introspect(idp, school, tokens["refresh_token"])
    assert live_refresh["active"] is True
    assert live_refresh["sub"] == person.sub and live_refresh["client_id"] == school.client_id
    assert "offline_access" in live_refresh["scope"].split() and live_refresh["exp"] > now
    # Another school learns nothing about this school's tokens.
    assert introspect(idp, other, tokens["access_token"]) == {"active": False}
    assert introspect(idp, other, tokens["refresh_token"]) == {"active": False}
    # Garbage and revoked tokens are inactive.
    for garbage in ("garbage", "a.b.c", secrets.token_urlsafe(32), "x" * 9000):
        assert introspect(idp, school, garbage) == {"active": False}
    revoke(idp, school, tokens["refresh_token"])
    assert introspect(idp, school, tokens["refresh_token"]) == {"active": False}
    assert introspect(idp, school, tokens["access_token"]) == {"active": False}


def test_introspection_needs_client_authentication(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    tokens = sign_in(idp, browser, school, person)
    resp = requests.post(f"{idp}/introspect", data={"token": tokens["access_token"]}, timeout=5)
    assert resp.status_code == 401
    resp = requests.post(
        f"{idp}/introspect",
        data={"token": tokens["access_token"]},
        auth=(school.client_id, "wrong-" + "x" * 40),
        timeout=5,
    )
    assert resp.status_code == 401


# ---------------------------------------------------------------- ID and access tokens


def test_id_token_rs256_by_default(idp, make_school, make_person, browser):
    school = make_school(id_token_alg="RS256")  # add_client's default, as OIDC Core's
    person = make_person(school)
    tokens = sign_in(idp, browser, school, person)
    header = jwt.decode(tokens["id_token"], published_keys(idp), algorithms=["RS256"]).header
    assert header["alg"] == "RS256"
    jwk = {k.kid: k for k in published_keys(idp).keys}[header["kid"]]
    assert jwk.key_type == "RSA" and jwk.alg == "RS256"


def test_id_token_es256_for_a_client_that_asks(idp, make_school, make_person, browser):
    school = make_school(id_token_alg="ES256")
    person = make_person(school)
    tokens = sign_in(idp, browser, school, person, nonce="n-es")
    claims = validate_id_token(
        idp, tokens["id_token"], school.client_id, "n-es", tokens["access_token"]
    )
    assert claims.header["alg"] == "ES256"
    jwk = {k.kid: k for k in published_keys(idp).keys}[claims.header["kid"]]
    assert jwk.key_type == "EC" and jwk.alg == "ES256"
    with pytest.raises(UnsupportedAlgorithmError):
        jwt.decode(tokens["id_token"], published_keys(idp), algorithms=["RS256"])


def test_sid_in_id_and_access_tokens(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    tokens = sign_in(idp, browser, school, person)
    claims = validate_id_token(idp, tokens["id_token"], school.client_id)
    access = decode_access_token(idp, tokens["access_token"])
    assert claims["sid"] and access["sid"] == claims["sid"]
    assert access["sub"] == person.sub and access["client_id"] == school.client_id
    assert access["aud"] == idp and access["iss"] == idp
    # The next code in the same browser session carries the same sid.
    again = sign_in(idp, browser, school, person)
    assert validate_id_token(idp, again["id_token"], school.client_id)["sid"] == claims["sid"]


def test_nonce_echoed_only_when_given(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    with_nonce = sign_in(idp, browser, school, person, nonce="n-" + secrets.token_hex(4))
    claims = validate_id_token(idp, with_nonce["id_token"], school.client_id)
    assert claims["nonce"].startswith("n-")
    without_nonce = sign_in(idp, browser, school, person, drop=("nonce",))
    claims = validate_id_token(idp, without_nonce["id_token"], school.client_id)
    assert "nonce" not in claims


def test_max_age(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    first = sign_in(idp, browser, school, person, max_age="3600")
    first_claims = validate_id_token(idp, first["id_token"], school.client_id)
    assert isinstance(first_claims["auth_time"], int)
    assert first_claims["auth_time"] <= time.time()
    # A generous max_age on the live session: a code with no page.
    verifier, challenge = pkce_pair()
    resp = browser.http.get(
        authorize_url(idp, school, challenge, max_age="3600"), allow_redirects=False, timeout=5
    )
    assert resp.headers["Location"].startswith(school.redirect_uri)
    again = redeem(idp, school, callback_params(resp)["code"], verifier)
    assert (
        validate_id_token(idp, again["id_token"], school.client_id)["auth_time"]
        == first_claims["auth_time"]
    )
    # max_age=0 on a live session: the login page again.
    time.sleep(1.05)
    verifier, challenge = pkce_pair()
    page = browser.follow(authorize_url(idp, school, challenge, max_age="0"), school.redirect_uri)
    assert page.status_code == 200 and 'name="password"' in page.text
    resp = browser.submit_login(page, person.email, person.password, school.redirect_uri)
    fresh = redeem(idp, school, callback_params(resp)["code"], verifier)
    fresh_claims = validate_id_token(idp, fresh["id_token"], school.client_id)
    assert fresh_claims["auth_time"] > first_claims["auth_time"]
    assert fresh_claims["sid"] == first_claims["sid"]


def test_prompt_login_forces_the_login_page(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    sign_in(idp, browser, school, person)
    _, challenge = pkce_pair()
    page = browser.follow(
        authorize_url(idp, school, challenge, prompt="login"), school.redirect_uri
    )
    assert page.status_code == 200 and 'name="password"' in page.text


def test_prompt_none_without_session(idp, make_school, browser):
    school = make_school()
    _, challenge = pkce_pair()
    resp = browser.http.get(
        authorize_url(idp, school, challenge, prompt="none", state="s-0"),
        allow_redirects=False,
        timeout=5,
    )
    assert resp.status_code in (302, 303)
    assert resp.headers["Location"].startswith(school.redirect_uri + "?")
    params = callback_params(resp)
    assert params["error"] == "login_required" and params["state"] == "s-0"
    assert params["iss"] == idp and "code" not in params


def test_prompt_none_with_a_live_session(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    first = sign_in(idp, browser, school, person)
    verifier, challenge = pkce_pair()
    resp = browser.http.get(
        authorize_url(idp, school, challenge, prompt="none", state="s-1"),
        allow_redirects=False,
        timeout=5,
    )
    assert resp.status_code in (302, 303)
    assert resp.headers["Location"].startswith(school.redirect_uri + "?")
    params = callback_params(resp)
    assert params["state"] == "s-1" and "error" not in params
    tokens = redeem(idp, school, params["code"], verifier)
    assert (
        validate_id_token(idp, tokens["id_token"], school.client_id)["sid"]
        == validate_id_token(idp, first["id_token"], school.client_id)["sid"]
    )


def test_login_hint_prefills_the_email(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    _, challenge = pkce_pair()
    page = browser.follow(
        authorize_url(idp, school, challenge, login_hint=person.email), school.redirect_uri
    )
    assert page.status_code == 200
    assert f'value="{person.email}"' in page.text
    hostile = '"><script>alert(1)</script>'
    page = Browser(idp).follow(
        authorize_url(idp, school, challenge, login_hint=hostile), school.redirect_uri
    )
    assert page.status_code == 200 and "<script>alert(1)" not in page.text


@pytest.mark.parametrize(
    ("ui_locales", "lang"), [("en", "en"), ("ru-RU en", "ru"), ("fi et", "et")]
)
def test_ui_locales(idp, make_school, make_person, ui_locales, lang):
    school = make_school()
    person = make_person(school)
    browser = Browser(idp)
    _, challenge = pkce_pair()
    page = browser.follow(
        authorize_url(idp, school, challenge, ui_locales=ui_locales), school.redirect_uri
    )
    assert page.status_code == 200 and f'<html lang="{lang}">' in page.text
    tokens = sign_in(idp, browser, school, person, ui_locales=ui_locales)
    assert validate_id_token(idp, tokens["id_token"], school.client_id)["sub"] == person.sub


def test_unknown_parameters_are_ignored(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    tokens = sign_in(
        idp,
        browser,
        school,
        person,
        foo="bar",
        display="popup",
        claims_locales="et",
        x_custom="1",
        resource_hint="y",
    )
    assert validate_id_token(idp, tokens["id_token"], school.client_id)["sub"] == person.sub


def test_scope_order_is_irrelevant(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    a = sign_in(idp, browser, school, person, scope="email profile openid")
    b = sign_in(idp, browser, school, person, scope="openid profile email")
    assert set(a["scope"].split()) == set(b["scope"].split()) == {"openid", "profile", "email"}
    info_a = userinfo(idp, a["access_token"]).json()
    info_b = userinfo(idp, b["access_token"]).json()
    assert info_a == info_b and info_a["email"] == person.email and info_a["name"]


def test_claims_parameter_puts_name_into_the_id_token(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school, given_name="Jüri", family_name="Õunapuu")
    plain = sign_in(idp, browser, school, person, scope="openid")
    assert "name" not in validate_id_token(idp, plain["id_token"], school.client_id)
    asked = sign_in(
        idp,
        browser,
        school,
        person,
        scope="openid",
        claims=json.dumps({"id_token": {"name": {"essential": True}}}),
    )
    claims = validate_id_token(idp, asked["id_token"], school.client_id)
    assert claims["name"] == "Jüri Õunapuu"
    assert "email" not in claims and "given_name" not in claims
    assert userinfo(idp, asked["access_token"]).json() == {"sub": person.sub}


def test_userinfo_get_and_post(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    tokens = sign_in(idp, browser, school, person)
    by_get = userinfo(idp, tokens["access_token"])
    assert by_get.status_code == 200 and by_get.headers["Cache-Control"] == "no-store"
    by_post = requests.post(
        f"{idp}/userinfo", data={"access_token": tokens["access_token"]}, timeout=5
    )
    assert by_post.status_code == 200
    assert by_get.json() == by_post.json()
    assert by_get.json()["sub"] == person.sub and by_get.json()["email"] == person.email
    by_post_header = requests.post(
        f"{idp}/userinfo", timeout=5, headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert by_post_header.json() == by_get.json()
    # The token in a query string is not accepted (RFC 6750 §2.3 is not offered).
    assert (
        requests.get(
            f"{idp}/userinfo", params={"access_token": tokens["access_token"]}, timeout=5
        ).status_code
        == 401
    )
    assert userinfo(idp, "garbage").status_code == 401
    # An ID token is not an access token.
    assert userinfo(idp, tokens["id_token"]).status_code == 401


def test_standard_scopes_map_to_the_persons_data(idp, idp_app, make_school, make_person, browser):
    school = make_school()
    person = make_person(school, given_name="Kadri", family_name="Kask")
    address = {
        "street_address": "Pärnu mnt 1",
        "locality": "Tallinn",
        "postal_code": "10141",
        "country": "EE",
    }
    set_person(
        idp_app,
        person,
        phone="+37251234567",
        address=address,
        birth_date=dt.date(1985, 3, 14),
        email_verified=True,
    )

    def claims_for(scope: str) -> dict[str, Any]:
        tokens = sign_in(idp, browser, school, person, scope=scope)
        resp = userinfo(idp, tokens["access_token"])
        assert resp.status_code == 200
        return dict(resp.json())

    assert claims_for("openid") == {"sub": person.sub}
    profile = claims_for("openid profile")
    assert profile["name"] == "Kadri Kask" and profile["given_name"] == "Kadri"
    assert profile["family_name"] == "Kask" and profile["birthdate"] == "1985-03-14"
    assert isinstance(profile["updated_at"], int)
    assert "locale" not in profile  # she has chosen no language: the school follows her browser
    set_person(idp_app, person, locale="ru")
    assert claims_for("openid profile")["locale"] == "ru"
    assert not {"email", "phone_number", "address"} & set(profile)
    email = claims_for("openid email")
    assert email == {"sub": person.sub, "email": person.email, "email_verified": True}
    phone = claims_for("openid phone")
    assert phone["phone_number"] == "+37251234567" and phone["phone_number_verified"] is False
    assert set(phone) == {"sub", "phone_number", "phone_number_verified"}
    assert claims_for("openid address") == {"sub": person.sub, "address": address}
    everything = claims_for("openid profile email phone address")
    assert {"name", "email", "phone_number", "address"} <= set(everything)
