"""Signing-key rotation through `idp keys rotate`: next (published) → active → retiring."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import requests
from joserfc import jwt
from joserfc.jwk import KeySet, KeySetSerialization

from tests.support import Browser, authorize_url, pkce_pair, token_request


def ok_json(result: Any) -> Any:
    """The JSON a successful CLI call printed."""
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def jwks(idp: str) -> KeySetSerialization:
    """The published key set."""
    published: KeySetSerialization = requests.get(f"{idp}/jwks", timeout=5).json()
    return published


def kid_of(token: str) -> str:
    """The kid in a JWS header, read without verifying."""
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def sign_in(idp, browser, school, person, scope="openid profile email offline_access"):
    verifier, challenge = pkce_pair()
    params = browser.login(authorize_url(idp, school, challenge, scope=scope), person, school)
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
    return resp.json()


def by_state(rows: list[dict[str, Any]], alg: str, state: str) -> list[str]:
    return [r["kid"] for r in rows if r["alg"] == alg and r["state"] == state]


def test_rotation_keeps_old_tokens_verifiable_and_signs_new_ones_with_the_next_key(
    idp, make_school, make_person, cli
):
    rs_school = make_school(id_token_alg="RS256")
    es_school = make_school(id_token_alg="ES256")
    rs_person, es_person = make_person(rs_school), make_person(es_school)
    rs_browser, es_browser = Browser(idp), Browser(idp)
    before_rows = ok_json(cli("keys", "list", "--json"))
    before_jwks = jwks(idp)
    published_before = {k["kid"] for k in before_jwks["keys"]}
    old = {
        "RS256": sign_in(idp, rs_browser, rs_school, rs_person),
        "ES256": sign_in(idp, es_browser, es_school, es_person),
    }
    active_before = {alg: by_state(before_rows, alg, "active") for alg in ("RS256", "ES256")}
    next_before = {alg: by_state(before_rows, alg, "next") for alg in ("RS256", "ES256")}
    for alg in ("RS256", "ES256"):
        assert len(active_before[alg]) == 1 and len(next_before[alg]) == 1
        # The next key is published before it signs anything.
        assert next_before[alg][0] in published_before
        assert kid_of(old[alg]["id_token"]) == active_before[alg][0]
    assert kid_of(old["RS256"]["access_token"]) == active_before["ES256"][0]

    # The operator is told when the new key starts signing (each process's key cache).
    rotated = cli("keys", "rotate")
    assert rotated.exit_code == 0, rotated.output
    said = [
        re.fullmatch(
            r"(RS256|ES256): (\S+) is the active key; every running IdP process signs with it "
            r"within (\d+) s \(IDP_KEY_CACHE_SECONDS\), until then with the previous key, "
            r"which keeps verifying",
            line,
        )
        for line in rotated.output.strip().splitlines()
    ]
    assert all(said), rotated.output
    promoted = [{"alg": m.group(1), "kid": m.group(2)} for m in said if m]
    assert {int(m.group(3)) for m in said if m} == {30}
    assert {p["alg"]: p["kid"] for p in promoted} == {
        alg: next_before[alg][0] for alg in ("RS256", "ES256")
    }

    after_rows = ok_json(cli("keys", "list", "--json"))
    after_jwks = jwks(idp)
    published_after = {k["kid"] for k in after_jwks["keys"]}
    for alg in ("RS256", "ES256"):
        assert by_state(after_rows, alg, "active") == next_before[alg]
        assert active_before[alg][0] in by_state(after_rows, alg, "retiring")
        new_next = by_state(after_rows, alg, "next")
        assert len(new_next) == 1 and new_next[0] not in published_before
        # Retiring, active and the new next key are all published.
        assert {active_before[alg][0], next_before[alg][0], new_next[0]} <= published_after
    keys = KeySet.import_key_set(after_jwks)

    # Tokens signed before the rotation still verify through the JWKS afterwards ...
    for alg, tokens in old.items():
        claims = jwt.decode(tokens["id_token"], keys, algorithms=[alg]).claims
        assert claims["iss"] == idp
    assert (
        jwt.decode(old["RS256"]["access_token"], keys, algorithms=["ES256"]).claims["sub"]
        == rs_person.sub
    )
    # ... and the IdP itself still accepts them (userinfo, id_token_hint at logout).
    info = requests.get(
        f"{idp}/userinfo",
        headers={"Authorization": f"Bearer {old['RS256']['access_token']}"},
        timeout=5,
    )
    assert info.status_code == 200 and info.json()["sub"] == rs_person.sub

    # New tokens carry the new kids: after a fresh login and after a refresh.
    fresh = sign_in(idp, rs_browser, rs_school, rs_person)
    assert kid_of(fresh["id_token"]) == next_before["RS256"][0]
    assert kid_of(fresh["access_token"]) == next_before["ES256"][0]
    resp = token_request(
        idp,
        es_school,
        {"grant_type": "refresh_token", "refresh_token": old["ES256"]["refresh_token"]},
    )
    assert resp.status_code == 200, resp.text
    refreshed = resp.json()
    assert kid_of(refreshed["id_token"]) == next_before["ES256"][0]
    assert (
        jwt.decode(refreshed["id_token"], keys, algorithms=["ES256"]).claims["sub"] == es_person.sub
    )
    # A relying party still holding the JWKS it fetched before the rotation can verify them.
    cached = KeySet.import_key_set(before_jwks)
    assert (
        jwt.decode(fresh["id_token"], cached, algorithms=["RS256"]).header["kid"]
        == next_before["RS256"][0]
    )
    assert (
        jwt.decode(refreshed["id_token"], cached, algorithms=["ES256"]).claims["sub"]
        == es_person.sub
    )
    assert (
        jwt.decode(fresh["access_token"], cached, algorithms=["ES256"]).claims["sub"]
        == rs_person.sub
    )
