"""The delivery worker: retries with backoff and a fresh logout token each time, dead letters,
leases, and the ops commands."""

from __future__ import annotations

import json

import pytest
import requests
from click.testing import CliRunner
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.flows.test_backchannel import _deliveries, _school_at, _signed_in
from tests.support import Receiver, unverified_claims


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def fast_retries(idp_app, monkeypatch):
    monkeypatch.setitem(idp_app.config, "DELIVERY_BACKOFF_SECONDS", 0)
    monkeypatch.setitem(idp_app.config, "DELIVERY_TIMEOUT_SECONDS", 2.0)


def _logged_out(idp, idp_app, make_person, browser, receiver):
    school = _school_at(idp_app, receiver.url)
    person = make_person(school)
    tokens = _signed_in(idp, school, person, browser)
    sid = unverified_claims(tokens["id_token"])["sid"]
    browser.http.get(f"{idp}/logout", params={"id_token_hint": tokens["id_token"]}, timeout=10)
    return school, person, sid


def _run_worker(idp_app, sid):
    from idp.dispatch.deliveries import run_once

    with idp_app.app_context():
        outcomes = run_once(idp_app)
    return outcomes


def test_a_school_that_fails_twice_gets_a_fresh_valid_token_when_it_recovers(
    idp, idp_app, make_person, browser, receiver, fast_retries
):
    receiver.script = [500, 500]
    school, person, sid = _logged_out(idp, idp_app, make_person, browser, receiver)
    assert [(r.state, r.attempts) for r in _deliveries(idp_app, sid)] == [("pending", 1)]
    _run_worker(idp_app, sid)
    assert [(r.state, r.attempts) for r in _deliveries(idp_app, sid)] == [("pending", 2)]
    _run_worker(idp_app, sid)
    assert [(r.state, r.attempts, r.last_status) for r in _deliveries(idp_app, sid)] == [
        ("delivered", 3, 200)
    ]
    sent = [p["logout_token"][0] for p in receiver.posts]
    assert len(sent) == 3 and len({unverified_claims(t)["jti"] for t in sent}) == 3
    keys = KeySet.import_key_set(requests.get(f"{idp}/jwks", timeout=5).json())
    last = jwt.decode(sent[-1], keys, algorithms=["ES256"]).claims
    assert (last["aud"], last["sub"], last["sid"]) == (school.client_id, person.sub, sid)


def test_backoff_keeps_a_failed_delivery_waiting(idp, idp_app, make_person, browser, receiver):
    receiver.status = 503
    _school, _person, sid = _logged_out(idp, idp_app, make_person, browser, receiver)
    assert idp_app.config["DELIVERY_BACKOFF_SECONDS"] >= 5
    _run_worker(idp_app, sid)  # right after the failed direct attempt: not due yet
    assert len(receiver.posts) == 1
    assert [(r.state, r.attempts) for r in _deliveries(idp_app, sid)] == [("pending", 1)]


def test_a_delivery_past_the_give_up_age_is_a_dead_letter_and_can_be_resent(
    idp, idp_app, make_person, browser, receiver, fast_retries, monkeypatch
):
    from idp.cli import main

    receiver.status = 503
    _school, _person, sid = _logged_out(idp, idp_app, make_person, browser, receiver)
    monkeypatch.setitem(idp_app.config, "DELIVERY_GIVE_UP_SECONDS", 0)
    _run_worker(idp_app, sid)
    assert [r.state for r in _deliveries(idp_app, sid)] == ["dead"]
    monkeypatch.setenv("DATABASE_URL", idp_app.config["DATABASE_URL"])
    monkeypatch.setenv("REDIS_URL", idp_app.config["REDIS_URL"])
    listed = CliRunner().invoke(main, ["deliveries", "list", "--failed", "--json"])
    assert listed.exit_code == 0, listed.output
    mine = [
        d for d in json.loads(listed.output) if d["state"] == "dead" and d["last_status"] == 503
    ]
    assert mine
    delivery_id = mine[0]["id"]
    resent = CliRunner().invoke(main, ["deliveries", "resend", str(delivery_id)])
    assert resent.exit_code == 0, resent.output
    receiver.status = 200
    monkeypatch.setitem(idp_app.config, "DELIVERY_GIVE_UP_SECONDS", 3600)
    _run_worker(idp_app, sid)
    assert [r.state for r in _deliveries(idp_app, sid)] == ["delivered"]


def test_a_leased_row_is_not_claimed_twice(
    idp, idp_app, make_person, browser, receiver, fast_retries
):
    from sqlalchemy import update

    from idp.dispatch.deliveries import claim_due
    from idp.models import Delivery, utcnow
    from shared.db import get_db

    receiver.status = 503
    _logged_out(idp, idp_app, make_person, browser, receiver)
    with idp_app.app_context():
        db = get_db()
        db.execute(
            update(Delivery)
            .where(Delivery.state == "pending")
            .values(next_attempt_at=utcnow(), lease_until=None)
        )
        db.commit()
        first = claim_due(idp_app, limit=1000)
        second = claim_due(idp_app, limit=1000)
    assert first and not set(first) & set(second)
