"""The rule for a refresh refused after its claim (idp/oidc/rotation.py; docs/ARCHITECTURE.md,
Codes, tokens and refresh): the rotation commits at once, so what a refusal leaves is stated.

A refusal the facts decide (an idle session, an inactive account) leaves the presented token
consumed and stores no successor; a wider scope is refused before the claim and consumes
nothing. (A failure after the claim, which undoes it: tests/faults/test_refresh_undo.py.)
"""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from sqlalchemy import select, update

from idp.models import Account, RefreshToken, SsoSession, utcnow
from shared.db import get_db
from shared.security import sha256_hex
from tests.flows.test_token_errors import Setup, assert_token_error
from tests.flows.test_token_errors import setup as setup  # the same fixture: a school, a person
from tests.support import redeem, refresh, token_request, unverified_claims


def _family(idp_app: Flask, token: str) -> list[tuple[bool, bool]]:
    """Every refresh token of the token's grant: (used, revoked), oldest first."""
    with idp_app.app_context():
        db = get_db()
        grant = db.scalar(
            select(RefreshToken.grant_id).where(RefreshToken.token_hash == sha256_hex(token))
        )
        rows = db.execute(
            select(RefreshToken.used_at, RefreshToken.revoked_at)
            .where(RefreshToken.grant_id == grant)
            .order_by(RefreshToken.created_at, RefreshToken.id)
        ).all()
        db.rollback()
    return [(used is not None, revoked is not None) for used, revoked in rows]


def _issued(idp: str, setup: Setup, scope: str = "openid profile offline_access") -> dict:
    resp = redeem(idp, setup.school, *setup.code(idp, scope=scope))
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.mark.parametrize("change", ["session idle", "account disabled"])
def test_a_refusal_the_facts_decide_consumes_the_token_and_stores_no_successor(
    idp: str, idp_app: Flask, setup: Setup, change: str
) -> None:
    issued = _issued(idp, setup)
    sid = unverified_claims(issued["id_token"])["sid"]
    with idp_app.app_context():
        db = get_db()
        if change == "session idle":
            idle = dt.timedelta(seconds=idp_app.config["SESSION_IDLE_SECONDS"] + 60)
            db.execute(
                update(SsoSession).where(SsoSession.id == sid).values(last_seen=utcnow() - idle)
            )
        else:  # as a disabling that raced this refresh: its revocation not yet committed
            db.execute(
                update(Account).where(Account.sub == setup.person.sub).values(status="disabled")
            )
        db.commit()
    token = issued["refresh_token"]
    assert_token_error(refresh(idp, setup.school, token), "invalid_grant")
    assert _family(idp_app, token) == [(True, False)]  # consumed; no successor stored
    # Presented again it is a reuse: refused, and the family revoked.
    assert_token_error(refresh(idp, setup.school, token), "invalid_grant")
    assert _family(idp_app, token) == [(True, True)]


@pytest.mark.parametrize("scope", ["openid profile email offline_access", "profile offline_access"])
def test_a_wider_scope_is_refused_and_consumes_nothing(
    idp: str, idp_app: Flask, setup: Setup, scope: str
) -> None:
    issued = _issued(idp, setup)
    token = issued["refresh_token"]
    body = {"grant_type": "refresh_token", "refresh_token": token, "scope": scope}
    assert_token_error(token_request(idp, setup.school, body), "invalid_scope")
    assert_token_error(token_request(idp, setup.school, body, basic=False), "invalid_scope")
    assert _family(idp_app, token) == [(False, False)]
    # The token still refreshes, once.
    again = refresh(idp, setup.school, token)
    assert again.status_code == 200, again.text
    assert _family(idp_app, token) == [(True, False), (False, False)]


def test_a_narrower_scope_is_stored_on_the_successor(
    idp: str, idp_app: Flask, setup: Setup
) -> None:
    issued = _issued(idp, setup)
    body = {
        "grant_type": "refresh_token",
        "refresh_token": issued["refresh_token"],
        "scope": "openid",
    }
    narrowed = token_request(idp, setup.school, body)
    assert narrowed.status_code == 200, narrowed.text
    successor = narrowed.json()["refresh_token"]
    with idp_app.app_context():
        db = get_db()
        stored = db.scalar(
            select(RefreshToken.scope).where(RefreshToken.token_hash == sha256_hex(successor))
        )
        db.rollback()
    assert stored == "openid offline_access"
    # It cannot widen back.
    wider = {"grant_type": "refresh_token", "refresh_token": successor, "scope": "openid profile"}
    assert_token_error(token_request(idp, setup.school, wider), "invalid_scope")


def test_an_unknown_token_with_a_scope_is_invalid_grant(idp: str, setup: Setup) -> None:
    body = {"grant_type": "refresh_token", "refresh_token": "not-a-token", "scope": "profile"}
    assert_token_error(token_request(idp, setup.school, body), "invalid_grant")
