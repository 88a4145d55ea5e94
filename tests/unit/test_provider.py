"""validate_id_token (OIDC Core §3.1.3.7) against the keys of a provider, one rule at a time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from school_instance.provider import IdTokenInvalid, Provider, validate_id_token

ISSUER = "https://id.example.ee"
CLIENT = "laagri-kool"
RSA = RSAKey.generate_key(2048, parameters={"kid": "r1", "alg": "RS256"})
EC = ECKey.generate_key("P-256", parameters={"kid": "e1", "alg": "ES256"})
STRANGER = RSAKey.generate_key(2048, parameters={"kid": "r1", "alg": "RS256"})


@pytest.fixture
def prov() -> Provider:
    """A provider whose keys were just fetched (so no refetch is attempted)."""
    keys = KeySet.import_key_set({"keys": [RSA.as_dict(private=False), EC.as_dict(private=False)]})
    return Provider(ISSUER, {"jwks_uri": f"{ISSUER}/jwks"}, keys, time.monotonic())


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "s1",
        "aud": CLIENT,
        "iat": now,
        "exp": now + 300,
        "sid": "sid1",
        "nonce": "n1",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _token(claims: dict[str, Any], key: Any = RSA, **header: Any) -> str:
    head = {"alg": "RS256", "kid": "r1", "typ": "JWT", **header}
    return jwt.encode(
        {k: v for k, v in head.items() if v is not None},
        claims,
        key,
        default_type=None,
        algorithms=[head["alg"]],
    )


def _check(prov: Provider, token: Any, nonce: str | None = "n1") -> dict[str, Any]:
    return validate_id_token(prov, token, client_id=CLIENT, nonce=nonce, leeway=30, timeout=1)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_valid_token_gives_its_claims(prov):
    assert _check(prov, _token(_claims()))["sub"] == "s1"
    assert _check(prov, _token(_claims(), EC, alg="ES256", kid="e1"))["sid"] == "sid1"


def test_a_refresh_needs_no_nonce(prov):
    assert _check(prov, _token(_claims(nonce=None)), nonce=None)["sub"] == "s1"


# Built when the test runs (a collection-time clock expires on a slow machine).
REFUSED: list[tuple[Callable[[int], dict[str, Any]], str]] = [
    (lambda now: dict(iss="https://evil.example"), "issuer"),
    (lambda now: dict(iss=ISSUER + "/"), "issuer"),
    (lambda now: dict(aud="another-school"), "audience"),
    (lambda now: dict(aud=["another-school"]), "audience"),
    (lambda now: dict(aud=[CLIENT, "another-school"]), "audience"),  # several audiences need azp
    (lambda now: dict(aud=[CLIENT, "another-school"], azp="another-school"), "audience"),
    (lambda now: dict(aud=None), "audience"),
    (lambda now: dict(exp=now - 31), "expired"),
    (lambda now: dict(exp=str(now + 300)), "expired"),
    (lambda now: dict(exp=None), "expired"),
    (lambda now: dict(iat=now + 3600), "future"),
    (lambda now: dict(iat=None), "future"),
    (lambda now: dict(nonce="another-login"), "nonce"),
    (lambda now: dict(nonce=None), "nonce"),
    (lambda now: dict(sid=None), "sid"),
    (lambda now: dict(sub=None), "sub"),
]


@pytest.mark.parametrize("changes,reason", REFUSED)
def test_claims_that_do_not_hold_are_refused(prov, changes, reason):
    with pytest.raises(IdTokenInvalid, match=reason):
        _check(prov, _token(_claims(**changes(int(time.time())))))


def test_several_audiences_with_our_azp_are_accepted(prov):
    claims = _claims(aud=[CLIENT, "another-school"], azp=CLIENT)
    assert _check(prov, _token(claims))["azp"] == CLIENT


def test_the_leeway_allows_a_little_clock_skew(prov):
    now = int(time.time())
    assert _check(prov, _token(_claims(exp=now - 10, iat=now + 10)))["sub"] == "s1"


@pytest.mark.parametrize("typ", ["at+jwt", "logout+jwt", "secevent+jwt", None])
def test_a_token_of_another_type_is_refused(prov, typ):
    with pytest.raises(IdTokenInvalid, match="type"):
        _check(prov, _token(_claims(), typ=typ))


def test_a_token_signed_by_a_key_not_in_the_jwks_is_refused(prov):
    with pytest.raises(IdTokenInvalid, match="signature"):
        _check(prov, _token(_claims(), STRANGER))
    with pytest.raises(IdTokenInvalid, match="signature"):
        _check(prov, _token(_claims(), STRANGER, kid="unknown"))


def test_an_unsigned_token_is_refused(prov):
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}."
    with pytest.raises(IdTokenInvalid):
        _check(prov, token)


def test_a_token_signed_with_the_public_key_as_an_hmac_secret_is_refused(prov):
    signing_input = f"{_b64({'alg': 'HS256', 'kid': 'r1', 'typ': 'JWT'})}.{_b64(_claims())}"
    mac = hmac.new(RSA.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(IdTokenInvalid):
        _check(prov, token)


def test_a_tampered_token_is_refused(prov):
    header, _payload, signature = _token(_claims()).split(".")
    forged = f"{header}.{_b64(_claims(sub='someone-else'))}.{signature}"
    with pytest.raises(IdTokenInvalid, match="signature"):
        _check(prov, forged)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "x" * 20000, None, 42, {"iss": ISSUER}])
def test_something_that_is_no_token_is_refused(prov, token):
    with pytest.raises(IdTokenInvalid):
        _check(prov, token)
