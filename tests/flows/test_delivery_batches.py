"""One worker batch with every kind of answer: each row gets its own outcome, attempt count and
backoff, however the batch's results are grouped when they are stored."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from tests.flows.test_backchannel import _school_at, _signed_in
from tests.support import Receiver, unverified_claims

ANSWERS = {
    "ok": [200],
    "refused": [400],
    "down": [503, 503],
    "longer": [503, 503],
    "flaky": [500, 204],
}


@pytest.fixture
def receivers():
    made = {name: Receiver() for name in ANSWERS}
    for name, script in ANSWERS.items():
        made[name].script = list(script)
    yield made
    for r in made.values():
        r.close()


def _rows(idp_app, sid):
    from sqlalchemy import select

    from idp.models import Delivery
    from shared.db import get_db

    fields = (
        "id",
        "state",
        "attempts",
        "last_status",
        "next_attempt_at",
        "lease_until",
        "delivered_at",
    )
    with idp_app.app_context():
        rows = get_db().scalars(select(Delivery)).all()
        return {
            r.payload["client_id"]: SimpleNamespace(**{f: getattr(r, f) for f in fields})
            for r in rows
            if r.payload.get("sid") == sid
        }


def test_a_mixed_batch_records_each_row_by_its_own_answer(
    idp, idp_app, make_person, link_account, browser, receivers, monkeypatch
):
    from sqlalchemy import update

    from idp.dispatch.deliveries import run_once
    from idp.models import Delivery, utcnow
    from idp.outbox.lease import backoff_seconds
    from shared.db import get_db

    schools = {name: _school_at(idp_app, r.url) for name, r in receivers.items()}
    person = make_person(schools["ok"])
    for name, school in schools.items():
        if name != "ok":
            link_account(person, school, ["parent"])
    tokens = {name: _signed_in(idp, school, person, browser) for name, school in schools.items()}
    sid = unverified_claims(tokens["ok"]["id_token"])["sid"]
    browser.http.get(
        f"{idp}/logout", params={"id_token_hint": tokens["ok"]["id_token"]}, timeout=10
    )
    ids = {name: _rows(idp_app, sid)[school.client_id].id for name, school in schools.items()}
    after_direct = {name: (r.state, r.attempts) for name, r in _rows(idp_app, sid).items()}
    assert {name: after_direct[s.client_id] for name, s in schools.items()} == {
        "ok": ("delivered", 1),
        "refused": ("failed", 1),
        "down": ("pending", 1),
        "longer": ("pending", 1),
        "flaky": ("pending", 1),
    }

    # One row has failed more often before: the same answer, a longer wait.
    monkeypatch.setitem(idp_app.config, "DELIVERY_BACKOFF_SECONDS", 100)
    monkeypatch.setitem(idp_app.config, "DELIVERY_BACKOFF_MAX_SECONDS", 10_000)
    with idp_app.app_context():
        db = get_db()
        db.execute(update(Delivery).where(Delivery.id == ids["longer"]).values(attempts=3))
        db.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids.values()))
            .values(next_attempt_at=utcnow(), lease_until=None)
        )
        db.commit()
        started = utcnow()
        outcomes = run_once(idp_app)
    assert {o.delivery_id for o in outcomes} >= {ids["down"], ids["longer"], ids["flaky"]}
    assert not {o.delivery_id for o in outcomes} & {ids["ok"], ids["refused"]}

    rows = _rows(idp_app, sid)
    got = {name: rows[s.client_id] for name, s in schools.items()}
    assert {n: (r.state, r.attempts, r.last_status) for n, r in got.items()} == {
        "ok": ("delivered", 1, 200),
        "refused": ("failed", 1, 400),
        "down": ("pending", 2, 503),
        "longer": ("pending", 4, 503),
        "flaky": ("delivered", 2, 204),
    }
    assert got["flaky"].delivered_at is not None and got["down"].lease_until is None
    for name, attempts in (("down", 2), ("longer", 4)):
        wait = (got[name].next_attempt_at - started).total_seconds()
        assert abs(wait - backoff_seconds(idp_app, attempts)) < 5, (name, wait)
    assert backoff_seconds(idp_app, 4) > backoff_seconds(idp_app, 2)
    # Each school was sent exactly what its answers called for, a fresh token each time.
    sent = {name: [p["logout_token"][0] for p in r.posts] for name, r in receivers.items()}
    assert {name: len(tokens) for name, tokens in sent.items()} == {
        "ok": 1,
        "refused": 1,
        "down": 2,
        "longer": 2,
        "flaky": 2,
    }
    jtis = [unverified_claims(t)["jti"] for tokens in sent.values() for t in tokens]
    assert len(set(jtis)) == len(jtis)
    assert dt.timedelta(0) <= utcnow() - started < dt.timedelta(seconds=30)
