"""The school instance as a Back-Channel Logout 1.0 relying party (§2.6): every claim of a
logout token is checked, a replayed token is refused, and a refused token ends nothing."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey

from tests.flows.test_school_isolation import _session_data, _sign_in
from tests.support import Browser

EVENT = "http://schemas.openid.net/event/backchannel-logout"


def _signer(idp_app: Any) -> Callable[..., str]:
    """Sign any claims and header type with the IdP's active ES256 key (as a forger cannot)."""
    from idp.oidc import tokens
    from shared.db import get_db

    def sign(claims: dict[str, Any], typ: str = "logout+jwt") -> str:
        with idp_app.app_context():
            ring = idp_app.extensions["keys"].ring(get_db())
            return tokens.sign(ring, "ES256", typ, claims)

    return sign


def _claims(idp: str, client_id: str, sub: str, sid: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": idp,
        "aud": client_id,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(16),
        "sub": sub,
        "sid": sid,
        "events": {EVENT: {}},
    }


def _post(url: str, token: str) -> requests.Response:
    return requests.post(f"{url}/auth/backchannel-logout", data={"logout_token": token}, timeout=10)


@pytest.fixture
def signed_in(idp, idp_app, school_app, make_tenant, make_person):
    """A person signed in at a school, with that school's session data."""
    school = make_tenant()
    person = make_person(school.client)
    cookie = _sign_in(Browser(idp), school, person)
    data = _session_data(school_app, school, cookie)
    assert data is not None
    return school, person, cookie, data


def _mutations(idp: str) -> dict[str, Callable[[dict[str, Any]], None]]:
    now = int(time.time())
    return {
        "another issuer": lambda c: c.update(iss=idp + "/other"),
        "another audience": lambda c: c.update(aud="someone-else"),
        "audience list without us": lambda c: c.update(aud=["someone-else"]),
        "expired": lambda c: c.update(iat=now - 600, exp=now - 300),
        "issued in the future": lambda c: c.update(iat=now + 600, exp=now + 720),
        "no iat": lambda c: c.pop("iat"),
        "no exp": lambda c: c.pop("exp"),
        "no events": lambda c: c.pop("events"),
        "another event": lambda c: c.update(events={"urn:example:other": {}}),
        "a nonce": lambda c: c.update(nonce="n-0S6_WzA2Mj"),
        "neither sid nor sub": lambda c: (c.pop("sid"), c.pop("sub")),
        "no jti": lambda c: c.pop("jti"),
    }


@pytest.mark.parametrize("mutation", list(_mutations("x")))
def test_a_logout_token_with_a_bad_claim_is_refused_and_ends_nothing(
    idp, idp_app, school_app, signed_in, mutation
):
    school, person, cookie, data = signed_in
    claims = _claims(idp, school.client.client_id, person.sub, data["sid"])
    _mutations(idp)[mutation](claims)
    resp = _post(school.url, _signer(idp_app)(claims))
    assert resp.status_code == 400, mutation
    assert resp.headers["Cache-Control"] == "no-store"
    assert _session_data(school_app, school, cookie) is not None


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "secevent+jwt"])
def test_a_token_of_another_type_is_no_logout_token(idp, idp_app, school_app, signed_in, typ):
    school, person, cookie, data = signed_in
    claims = _claims(idp, school.client.client_id, person.sub, data["sid"])
    assert _post(school.url, _signer(idp_app)(claims, typ=typ)).status_code == 400
    assert _session_data(school_app, school, cookie) is not None


def test_a_token_signed_by_a_key_not_in_the_jwks_is_refused(idp, school_app, signed_in):
    school, person, cookie, data = signed_in
    forged = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
    claims = _claims(idp, school.client.client_id, person.sub, data["sid"])
    token = jwt.encode({"alg": "ES256", "kid": "forged", "typ": "logout+jwt"}, claims, forged)
    assert _post(school.url, token).status_code == 400
    assert _post(school.url, "").status_code == 400
    assert _post(school.url, "not.a.token").status_code == 400
    assert _session_data(school_app, school, cookie) is not None


def test_a_valid_token_ends_the_session_once_and_its_replay_is_refused(
    idp, idp_app, school_app, signed_in
):
    school, person, cookie, data = signed_in
    token = _signer(idp_app)(_claims(idp, school.client.client_id, person.sub, data["sid"]))
    first = _post(school.url, token)
    assert first.status_code == 200
    assert _session_data(school_app, school, cookie) is None
    replay = _post(school.url, token)
    assert replay.status_code == 400
    # A fresh token for a session already gone is success ("already logged out").
    again = _signer(idp_app)(_claims(idp, school.client.client_id, person.sub, data["sid"]))
    assert _post(school.url, again).status_code == 200
