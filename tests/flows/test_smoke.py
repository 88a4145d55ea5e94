"""The code flow end to end over HTTP with a scripted browser."""

from __future__ import annotations

import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support import authorize_url, pkce_pair, token_request


def test_code_flow_issues_verifiable_tokens(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    verifier, challenge = pkce_pair()
    url = authorize_url(idp, school, challenge, nonce="n-123", state="st-1")
    params = browser.login(url, person, school)
    assert params["state"] == "st-1" and params["iss"] == idp
    resp = token_request(
        idp,
        school,
        {
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": school.redirect_uri,
            "code_verifier": verifier,
        },
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.json()
    keys = KeySet.import_key_set(requests.get(f"{idp}/jwks", timeout=5).json())
    token = jwt.decode(body["id_token"], keys, algorithms=["ES256"])  # the e-diary's choice
    assert token.header["kid"] and token.header["typ"] == "JWT"
    assert token.claims["sub"] == person.sub and token.claims["nonce"] == "n-123"
    assert token.claims["aud"] == school.client_id and token.claims["sid"]
    info = requests.get(
        f"{idp}/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=5
    )
    assert info.status_code == 200
    assert info.json()["email"] == person.email
