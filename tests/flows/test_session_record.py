"""A session is read from its SQL record when its Redis copy is missing (a failover lost it):
the person goes on — silent sign-in, refresh, account pages, logout with the schools told — while
random, ended and idle cookies never reach a session, and a revived copy opens nothing."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.flows.idp_account import NOT_SIGNED_IN, sessions_page
from tests.flows.test_backchannel import _school_at
from tests.support import (
    Browser,
    PersonLogin,
    Receiver,
    SchoolClient,
    authorize_url,
    callback_params,
    obtain_code,
    pkce_pair,
    redeem,
    refresh,
    sign_in,
    unverified_claims,
    userinfo,
)

COOKIE = "stuudium_idp_sso"


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    """Two schools' back-channel endpoints."""
    started = [Receiver(), Receiver()]
    yield started
    for receiver in started:
        receiver.close()


def _person_at_two(idp_app, make_person, link_account, receivers):
    schools = [_school_at(idp_app, r.url) for r in receivers]
    person = make_person(schools[0])
    second = link_account(person, schools[1], ["parent"])
    logins = [person, PersonLogin(person.email, person.password, second, "Mari", "Maasikas")]
    return schools, logins


def _drop_redis_copy(idp_app, sid: str, present: bool = True) -> None:
    """What a Redis failover that lost the session's keys leaves (present: they were there)."""
    from idp.models import SsoSession
    from idp.store import keys
    from shared.db import get_db

    with idp_app.app_context():
        cookie_hash = get_db().get_one(SsoSession, sid).cookie_hash
    r = idp_app.extensions["redis"]
    assert r.delete(keys.session(cookie_hash), keys.sid(sid)) == (2 if present else 0)


def _in_redis(idp_app, sid: str) -> bool:
    from idp.store import keys

    return bool(idp_app.extensions["redis"].exists(keys.sid(sid)))


def _silent(idp: str, browser: Browser, school: SchoolClient) -> dict[str, str]:
    """A prompt=none authorization request; the callback's parameters."""
    _, challenge = pkce_pair()
    url = authorize_url(idp, school, challenge, prompt="none", scope="openid offline_access")
    return callback_params(browser.follow(url, school.redirect_uri))


def _reads(outcome: str) -> float:
    from idp.metrics import SESSION_READS

    return float(SESSION_READS.labels(outcome)._value.get())


def test_a_session_whose_redis_copy_was_lost_goes_on_and_logs_out(
    idp, idp_app, make_person, link_account, receivers
):
    from idp.models import SsoSession
    from shared.db import get_db

    schools, logins = _person_at_two(idp_app, make_person, link_account, receivers)
    browser = Browser(idp)
    first = sign_in(idp, browser, schools[0], logins[0], scope="openid offline_access")
    sid = unverified_claims(first["id_token"])["sid"]

    # A silent sign-in at the second school: read from SQL, the copy written back.
    _drop_redis_copy(idp_app, sid)
    restored = _reads("restored")
    code, verifier = obtain_code(browser, idp, schools[1], logins[1], prompt="none")
    second = redeem(idp, schools[1], code, verifier)
    assert second.status_code == 200, second.text
    assert unverified_claims(second.json()["id_token"])["sid"] == sid
    assert _reads("restored") == restored + 1 and _in_redis(idp_app, sid)

    # A school's refresh while the copy is missing.
    _drop_redis_copy(idp_app, sid)
    renewed = refresh(idp, schools[0], first["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    # The IdP's resources take the school's access token without the session's sid key.
    assert not _in_redis(idp_app, sid)
    assert userinfo(idp, renewed.json()["access_token"]).status_code == 200

    # The account pages (the refresh left the copy to the browser's next request).
    _drop_redis_copy(idp_app, sid, present=False)
    overview = browser.http.get(f"{idp}/account", timeout=10)
    assert overview.status_code == 200 and NOT_SIGNED_IN not in overview.text
    assert "Mari Maasikas" in overview.text
    _drop_redis_copy(idp_app, sid)
    _, listed = sessions_page(browser)
    assert [(s.sid, s.current) for s in listed] == [(sid, True)]

    # RP-initiated logout finds the session the same way, ends it and tells both schools.
    _drop_redis_copy(idp_app, sid)
    done = browser.http.get(
        f"{idp}/logout", params={"id_token_hint": first["id_token"]}, timeout=10
    )
    assert done.status_code == 200 and "logout_confirm" not in done.text
    with idp_app.app_context():
        assert get_db().get_one(SsoSession, sid).end_reason == "logout"
    deadline = time.monotonic() + 10
    while not all(r.posts for r in receivers):
        assert time.monotonic() < deadline, "the schools were not told"
        time.sleep(0.05)
    for receiver, login in zip(receivers, logins, strict=True):
        claims = unverified_claims(receiver.posts[0]["logout_token"][0])
        assert (claims["sid"], claims["sub"]) == (sid, login.sub)
    assert _silent(idp, browser, schools[0])["error"] == "login_required"


def test_the_idps_own_logout_ends_a_session_without_its_redis_copy(
    idp, idp_app, make_person, link_account, receivers
):
    from tests.flows.idp_account import post_form

    schools, logins = _person_at_two(idp_app, make_person, link_account, receivers)
    browser = Browser(idp)
    tokens = sign_in(idp, browser, schools[0], logins[0], scope="openid offline_access")
    sid = unverified_claims(tokens["id_token"])["sid"]
    page, _ = sessions_page(browser)
    _drop_redis_copy(idp_app, sid)
    cookie = browser.http.cookies.get(COOKIE)
    assert cookie
    done = post_form(browser, page, "/account/sessions/end", sid=sid)
    assert done.status_code == 200 and "<h1>Oled välja logitud</h1>" in done.text
    assert receivers[0].posts and not _in_redis(idp_app, sid)
    browser.http.cookies.set(COOKIE, cookie)
    assert NOT_SIGNED_IN in browser.http.get(f"{idp}/account", timeout=10).text


def test_random_and_ended_cookies_never_reach_a_session(
    idp, idp_app, make_person, link_account, receivers
):
    from idp.store import keys
    from shared.security import sha256_hex

    # A random cookie: one SQL read, then the mark answers for it.
    stranger = Browser(idp)
    cookie = secrets.token_urlsafe(32)
    stranger.http.cookies.set(COOKIE, cookie)
    misses = _reads("no_session")
    assert NOT_SIGNED_IN in stranger.http.get(f"{idp}/account", timeout=10).text
    assert NOT_SIGNED_IN in stranger.http.get(f"{idp}/account", timeout=10).text
    assert _reads("no_session") == misses + 1
    assert idp_app.extensions["redis"].exists(keys.no_session(sha256_hex(cookie)))

    # An ended session's cookie, its Redis keys and marks gone too: SQL says ended.
    schools, logins = _person_at_two(idp_app, make_person, link_account, receivers)
    browser = Browser(idp)
    tokens = sign_in(idp, browser, schools[0], logins[0], scope="openid offline_access")
    ended_cookie = browser.http.cookies.get(COOKIE)
    assert ended_cookie
    done = browser.http.get(
        f"{idp}/logout", params={"id_token_hint": tokens["id_token"]}, timeout=10
    )
    assert done.status_code == 200 and "<h1>Oled välja logitud</h1>" in done.text
    assert idp_app.extensions["redis"].exists(
        keys.ended(unverified_claims(tokens["id_token"])["sid"])
    )
    replay = Browser(idp)
    replay.http.cookies.set(COOKIE, ended_cookie)
    idp_app.extensions["redis"].delete(keys.no_session(sha256_hex(ended_cookie)))
    assert NOT_SIGNED_IN in replay.http.get(f"{idp}/account", timeout=10).text
    assert _silent(idp, replay, schools[0])["error"] == "login_required"


def test_a_copy_revived_after_the_end_opens_nothing(
    idp, idp_app, make_person, link_account, receivers, monkeypatch
):
    from idp.models import SsoSession
    from idp.store import keys
    from shared.db import get_db

    schools, logins = _person_at_two(idp_app, make_person, link_account, receivers)
    browser = Browser(idp)
    tokens = sign_in(idp, browser, schools[0], logins[0], scope="openid offline_access")
    sid = unverified_claims(tokens["id_token"])["sid"]
    with idp_app.app_context():
        cookie_hash = get_db().get_one(SsoSession, sid).cookie_hash
    r = idp_app.extensions["redis"]
    copy = r.get(keys.session(cookie_hash))
    cookie = browser.http.cookies.get(COOKIE)
    assert cookie
    browser.http.get(f"{idp}/logout", params={"id_token_hint": tokens["id_token"]}, timeout=10)
    assert browser.http.cookies.get(COOKIE) is None
    browser.http.cookies.set(COOKIE, cookie)  # a copy of the cookie kept from before
    # A failover lost the removal: the copy and the sid key are back, the ended mark is not.
    r.delete(keys.ended(sid))
    r.set(keys.session(cookie_hash), copy, ex=600)
    r.set(keys.sid(sid), cookie_hash, ex=600)
    # SQL has the last word wherever a session opens something.
    assert _silent(idp, browser, schools[0])["error"] == "login_required"
    assert NOT_SIGNED_IN in browser.http.get(f"{idp}/account", timeout=10).text
    assert refresh(idp, schools[0], tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert userinfo(idp, tokens["access_token"]).status_code == 401
    # The stamp of last_seen, due once a step, finds the end and removes the copy.
    monkeypatch.setitem(idp_app.config, "SESSION_SEEN_STEP_SECONDS", 0)
    browser.http.get(f"{idp}/account", timeout=10)
    assert not r.exists(keys.session(cookie_hash)) and not _in_redis(idp_app, sid)


def test_a_record_past_its_idle_time_is_not_read_back(
    idp, idp_app, make_person, link_account, receivers
):
    from idp.models import SsoSession, utcnow
    from shared.db import get_db

    schools, logins = _person_at_two(idp_app, make_person, link_account, receivers)
    browser = Browser(idp)
    tokens = sign_in(idp, browser, schools[0], logins[0], scope="openid offline_access")
    sid = unverified_claims(tokens["id_token"])["sid"]
    cfg = idp_app.config
    quiet = cfg["SESSION_IDLE_SECONDS"] + cfg["SESSION_SEEN_STEP_SECONDS"] + 5
    with idp_app.app_context():
        db = get_db()
        db.get_one(SsoSession, sid).last_seen = utcnow() - dt.timedelta(seconds=quiet)
        db.commit()
    _drop_redis_copy(idp_app, sid)
    assert userinfo(idp, tokens["access_token"]).status_code == 401
    assert NOT_SIGNED_IN in browser.http.get(f"{idp}/account", timeout=10).text
    assert _silent(idp, browser, schools[0])["error"] == "login_required"
    assert refresh(idp, schools[0], tokens["refresh_token"]).json()["error"] == "invalid_grant"
    with idp_app.app_context():
        assert get_db().scalar(select(SsoSession.ended_at).where(SsoSession.id == sid)) is None


def test_the_worker_leaves_a_session_whose_copy_was_lost_but_sql_saw_recently(
    idp, idp_app, make_person, link_account, receivers, monkeypatch
):
    from idp.worker import START_GRACE, Expiry, run_round

    monkeypatch.setitem(idp_app.config, "SESSION_IDLE_SECONDS", 1)
    monkeypatch.setitem(idp_app.config, "SESSION_SEEN_STEP_SECONDS", 30)
    schools, logins = _person_at_two(idp_app, make_person, link_account, receivers)
    browser = Browser(idp)
    tokens = sign_in(idp, browser, schools[0], logins[0], scope="openid offline_access")
    sid = unverified_claims(tokens["id_token"])["sid"]
    _drop_redis_copy(idp_app, sid)
    time.sleep(START_GRACE.total_seconds() + 0.2)
    expiry, ended = Expiry(), []
    for _ in range(1000):
        ended += run_round(idp_app, expiry).ended_sessions
        if not expiry.after:
            break
    assert sid not in ended and not receivers[0].posts
    monkeypatch.setitem(idp_app.config, "SESSION_IDLE_SECONDS", 900)
    assert "code" in _silent(idp, browser, schools[0])
