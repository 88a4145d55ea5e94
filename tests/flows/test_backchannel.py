"""end_sessions: the SQL commit (session ended, tokens revoked, outbox rows), then one direct
back-channel attempt per school with a Back-Channel Logout 1.0 token."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support import (
    Receiver,
    SchoolClient,
    refresh,
    sign_in,
    unverified_claims,
)

EVENT = "http://schemas.openid.net/event/backchannel-logout"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _school_at(idp_app, base: str) -> SchoolClient:
    from idp.tenants.schools import add_school
    from shared.db import get_db

    slug = "bc-" + secrets.token_hex(4)
    with idp_app.app_context():
        db = get_db()
        issued = add_school(db, slug, f"Kool {slug}", base, development=True)
        db.commit()
        c = issued.client
        return SchoolClient(
            slug,
            c.school.name,
            c.client_id,
            issued.secret,
            c.redirect_uris[0],
            c.post_logout_redirect_uris[0],
        )


def _signed_in(idp, school, person, browser):
    return sign_in(idp, browser, school, person, scope="openid offline_access")


def _deliveries(idp_app, sid):
    from sqlalchemy import select

    from idp.models import Delivery
    from shared.db import get_db

    with idp_app.app_context():
        rows = get_db().scalars(select(Delivery)).all()
        return [
            _Row(r.state, r.attempts, r.last_status, r.last_error)
            for r in rows
            if r.payload.get("sid") == sid
        ]


@dataclass
class _Row:
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None


def test_logout_sends_a_valid_logout_token_to_the_school(
    idp, idp_app, make_person, browser, receiver
):
    school = _school_at(idp_app, receiver.url)
    person = make_person(school)
    tokens = _signed_in(idp, school, person, browser)
    sid = unverified_claims(tokens["id_token"])["sid"]
    resp = browser.http.get(
        f"{idp}/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": school.post_logout_redirect_uri,
        },
        timeout=10,
    )
    assert resp.status_code == 200
    assert f"<strong>{school.name}</strong>:" in resp.text and "välja logitud" in resp.text
    assert len(receiver.posts) == 1
    logout_token = receiver.posts[0]["logout_token"][0]
    keys = KeySet.import_key_set(requests.get(f"{idp}/jwks", timeout=5).json())
    decoded = jwt.decode(logout_token, keys, algorithms=["ES256", "RS256"])
    claims = decoded.claims
    assert decoded.header["typ"] == "logout+jwt" and decoded.header["kid"]
    assert claims["iss"] == idp and claims["aud"] == school.client_id
    assert claims["sub"] == person.sub and claims["sid"] == sid
    assert claims["events"] == {EVENT: {}} and "nonce" not in claims
    assert claims["jti"] and 0 < claims["exp"] - claims["iat"] <= 120
    assert claims["iat"] <= time.time() + 1
    rows = _deliveries(idp_app, sid)
    assert [(r.state, r.attempts, r.last_status) for r in rows] == [("delivered", 1, 200)]
    refused = refresh(idp, school, tokens["refresh_token"])
    assert refused.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(("status", "state"), [(503, "pending"), (400, "failed")])
def test_a_failed_direct_attempt_is_kept_for_the_worker_unless_the_token_was_refused(
    idp, idp_app, make_person, browser, receiver, status, state
):
    receiver.status = status
    school = _school_at(idp_app, receiver.url)
    person = make_person(school)
    tokens = _signed_in(idp, school, person, browser)
    sid = unverified_claims(tokens["id_token"])["sid"]
    page = browser.http.get(
        f"{idp}/logout", params={"id_token_hint": tokens["id_token"]}, timeout=10
    )
    rows = _deliveries(idp_app, sid)
    assert [(r.state, r.attempts, r.last_status) for r in rows] == [(state, 1, status)]
    assert f'data-state="{state}"><strong>{school.name}</strong>' in page.text
    if state == "pending":
        assert "saadame väljalogimise teate uuesti" in page.text


def test_an_unreachable_school_does_not_hold_up_logout(idp, idp_app, make_person, browser):
    from tests.support import free_port

    school = _school_at(idp_app, f"http://127.0.0.1:{free_port()}")
    person = make_person(school)
    tokens = _signed_in(idp, school, person, browser)
    sid = unverified_claims(tokens["id_token"])["sid"]
    started = time.monotonic()
    resp = browser.http.get(
        f"{idp}/logout", params={"id_token_hint": tokens["id_token"]}, timeout=10
    )
    assert resp.status_code == 200
    assert time.monotonic() - started < 3
    rows = _deliveries(idp_app, sid)
    assert [(r.state, r.attempts, r.last_error) for r in rows] == [
        ("pending", 1, "ConnectionError")
    ]
