"""Sessions that time out are ended by the worker like any logout: the schools are told."""

from __future__ import annotations

import time

import requests
from sqlalchemy import select

from tests.support import Browser, Tenant


def _sign_in(browser: Browser, school: Tenant, person) -> None:
    page = browser.follow(f"{school.url}/auth/login", stop_prefix="\x00")
    final = browser.submit_login(page, person.email, person.password, stop_prefix="\x00")
    assert final.status_code == 200 and final.url.startswith(school.url), final.text


def _profile(browser: Browser, school: Tenant) -> requests.Response:
    return browser.http.get(school.url + "/profile", allow_redirects=False, timeout=10)


def _sessions_of(idp_app, sub: str):
    from idp.models import Account, Delivery, SsoSession
    from shared.db import get_db

    with idp_app.app_context():
        db = get_db()
        person_id = db.scalar(select(Account.person_id).where(Account.sub == sub))
        rows = db.scalars(select(SsoSession).where(SsoSession.person_id == person_id)).all()
        sids = {r.id for r in rows}
        sent = [d.state for d in db.scalars(select(Delivery)) if d.payload.get("sid") in sids]
        return [(r.id, r.end_reason) for r in rows], sent


def _wait_until_gone(idp_app, sid: str, seconds: float) -> None:
    from idp.store.keys import sid as alive_key

    deadline = time.monotonic() + seconds
    while idp_app.extensions["redis"].exists(alive_key(sid)):
        assert time.monotonic() < deadline, "the idle session did not expire in Redis"
        time.sleep(0.2)


def _rounds_until_walked(idp_app) -> list[str]:
    """Run worker rounds until the walk over live sessions wraps (other tests' sessions share
    the database, so it may take several batches); return the sessions ended."""
    from idp.worker import Expiry, run_round

    expiry, ended = Expiry(), []
    for _ in range(1000):
        ended += run_round(idp_app, expiry).ended_sessions
        if not expiry.after:
            return ended
    raise AssertionError("the walk over live sessions did not wrap")


def test_an_idle_session_is_ended_by_the_worker_and_the_school_is_told(
    idp, idp_app, make_tenant, make_person, browser, monkeypatch
):
    from idp.worker import START_GRACE

    monkeypatch.setitem(idp_app.config, "SESSION_IDLE_SECONDS", 1)
    monkeypatch.setitem(idp_app.config, "SESSION_SEEN_STEP_SECONDS", 1)
    school = make_tenant()
    person = make_person(school.client)
    _sign_in(browser, school, person)
    assert _profile(browser, school).status_code == 200
    [(sid, reason)], _ = _sessions_of(idp_app, person.sub)
    assert reason is None
    _wait_until_gone(idp_app, sid, 5)
    time.sleep(START_GRACE.total_seconds())
    assert sid in _rounds_until_walked(idp_app)
    assert _sessions_of(idp_app, person.sub) == ([(sid, "timeout")], ["delivered"])
    profile = _profile(browser, school)
    assert profile.status_code == 303 and "/auth/login" in profile.headers["Location"]


def test_a_live_session_is_left_alone(idp, idp_app, make_tenant, make_person, browser, monkeypatch):
    from idp.worker import START_GRACE

    monkeypatch.setitem(idp_app.config, "SESSION_IDLE_SECONDS", 1)
    monkeypatch.setitem(idp_app.config, "SESSION_SEEN_STEP_SECONDS", 1)
    school = make_tenant()
    person = make_person(school.client)
    _sign_in(browser, school, person)
    [(sid, _)], _ = _sessions_of(idp_app, person.sub)
    # Idle for the worker's SQL view, but its Redis key is alive (as a jump would keep it).
    idp_app.extensions["redis"].expire(f"idp:sid:{sid}", 60)
    time.sleep(START_GRACE.total_seconds() + 0.2)
    assert sid not in _rounds_until_walked(idp_app)
    assert _sessions_of(idp_app, person.sub) == ([(sid, None)], [])
    assert _profile(browser, school).status_code == 200


def test_a_session_past_its_absolute_cap_is_ended(idp, idp_app, make_tenant, make_person, browser):
    import datetime as dt

    from sqlalchemy import update

    from idp.models import SsoSession, utcnow
    from shared.db import get_db

    school = make_tenant()
    person = make_person(school.client)
    _sign_in(browser, school, person)
    [(sid, _)], _ = _sessions_of(idp_app, person.sub)
    with idp_app.app_context():
        db = get_db()
        db.execute(
            update(SsoSession)
            .where(SsoSession.id == sid)
            .values(expires_at=utcnow() - dt.timedelta(seconds=1))
        )
        db.commit()
    assert sid in _rounds_until_walked(idp_app)
    assert _sessions_of(idp_app, person.sub) == ([(sid, "timeout")], ["delivered"])
    assert not idp_app.extensions["redis"].exists(f"idp:sid:{sid}")
    profile = _profile(browser, school)
    assert profile.status_code == 303 and "/auth/login" in profile.headers["Location"]


def test_each_round_ends_a_bounded_batch_and_the_walk_wraps_around(
    idp, idp_app, make_school, make_person, monkeypatch
):
    import datetime as dt

    from sqlalchemy import update

    from idp import worker
    from idp.models import SsoSession, utcnow
    from shared.db import get_db
    from tests.support import sign_in, unverified_claims

    monkeypatch.setattr(worker, "EXPIRE_BATCH", 1)
    school = make_school()
    sids = set()
    for _ in range(3):
        tokens = sign_in(idp, Browser(idp), school, make_person(school))
        sids.add(unverified_claims(tokens["id_token"])["sid"])
    with idp_app.app_context():
        db = get_db()
        db.execute(
            update(SsoSession)
            .where(SsoSession.id.in_(sids))
            .values(expires_at=utcnow() - dt.timedelta(seconds=1))
        )
        db.commit()
    expiry, ended = worker.Expiry(), set()
    for _ in range(30):
        done = worker.run_round(idp_app, expiry)
        assert len(done.ended_sessions) <= 1
        ended |= set(done.ended_sessions)
        if sids <= ended:
            break
    assert sids <= ended
