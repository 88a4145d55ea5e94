"""Discovery (OIDC Discovery 1.0 §3) and the JWKS (RFC 7517) as a relying party reads them."""

from __future__ import annotations

import requests
from joserfc.jwk import KeySet

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def _metadata(idp: str) -> dict:
    resp = requests.get(f"{idp}/.well-known/openid-configuration", timeout=5)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    return resp.json()


def test_discovery_advertises_the_endpoints(idp):
    meta = _metadata(idp)
    assert meta["issuer"] == idp
    assert meta["authorization_endpoint"] == f"{idp}/authorize"
    assert meta["token_endpoint"] == f"{idp}/token"
    assert meta["userinfo_endpoint"] == f"{idp}/userinfo"
    assert meta["jwks_uri"] == f"{idp}/jwks"
    assert meta["revocation_endpoint"] == f"{idp}/revoke"
    assert meta["introspection_endpoint"] == f"{idp}/introspect"
    assert meta["end_session_endpoint"] == f"{idp}/logout"
    for key in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
        "end_session_endpoint",
    ):
        assert meta[key].startswith(meta["issuer"] + "/")


def test_discovery_advertises_the_protocol(idp):
    meta = _metadata(idp)
    assert meta["response_types_supported"] == ["code"]
    assert set(meta["grant_types_supported"]) == {
        "authorization_code",
        "refresh_token",
        "client_credentials",
    }
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert {"RS256", "ES256"} <= set(meta["id_token_signing_alg_values_supported"])
    assert "none" not in meta["id_token_signing_alg_values_supported"]
    assert meta["subject_types_supported"]
    assert set(meta["subject_types_supported"]) <= {"public", "pairwise"}
    assert {"openid", "profile", "email", "phone", "address", "offline_access"} <= set(
        meta["scopes_supported"]
    )
    assert {
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "sid",
        "name",
        "given_name",
        "family_name",
        "email",
        "email_verified",
        "phone_number",
        "address",
    } <= set(meta["claims_supported"])
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "none",
    }
    assert meta["backchannel_logout_supported"] is True
    assert meta["backchannel_logout_session_supported"] is True
    assert isinstance(meta["frontchannel_logout_supported"], bool)
    assert set(meta["ui_locales_supported"]) == {"et", "ru", "en"}


def test_jwks_publishes_public_keys_only(idp):
    meta = _metadata(idp)
    resp = requests.get(meta["jwks_uri"], timeout=5)
    assert resp.status_code == 200
    jwks = resp.json()
    keys = jwks["keys"]
    assert keys
    kids = [k.get("kid") for k in keys]
    assert all(kids) and len(set(kids)) == len(kids)
    for key in keys:
        assert not PRIVATE_MEMBERS & set(key), f"private member in {key['kid']}"
        assert key.get("use", "sig") == "sig"
    algs = {k.get("alg") for k in keys}
    assert {"RS256", "ES256"} <= algs
    for key in keys:
        if key["alg"] == "RS256":
            assert key["kty"] == "RSA" and key["n"] and key["e"]
        if key["alg"] == "ES256":
            assert key["kty"] == "EC" and key["crv"] == "P-256" and key["x"] and key["y"]
    imported = KeySet.import_key_set(jwks)
    assert all(not k.is_private for k in imported.keys)
