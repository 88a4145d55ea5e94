"""Every storage failure a person or a client can meet answers 503 with Retry-After — the
retry page for a person, the OAuth error body for a client — never a 500 or a stack trace, and
what the request did is committed whole or not at all: in a view, and in the commit after it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import flask
import redis
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from tests.flows.test_school_sso import _sign_in
from tests.support import (
    Browser,
    free_port,
    obtain_code,
    pkce_pair,
    redeem,
    sign_in,
)

RETRY_HEADING = "Teenus on ajutiselt kättesaamatu"


@contextmanager
def commit_fails(app: flask.Flask, path: str) -> Iterator[list[str]]:
    """Make the commit of the requests to path fail as when the server went away between the
    view and its commit; yields the paths whose commit failed."""
    engine = app.extensions["db_engine"]
    failed: list[str] = []

    def _fail(_conn: Any) -> None:
        if flask.has_request_context() and flask.request.path == path:
            failed.append(flask.request.path)
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    event.listen(engine, "commit", _fail)
    try:
        yield failed
    finally:
        event.remove(engine, "commit", _fail)


def dead_redis() -> redis.Redis:
    """A client of a Redis that is not there (nothing listens on the port)."""
    from shared.redis import connect

    return connect(f"redis://127.0.0.1:{free_port()}/0")


def _retry_page(resp: Any) -> None:
    assert resp.status_code == 503, resp.text[:500]
    assert resp.headers["Retry-After"] and RETRY_HEADING in resp.text
    assert "Traceback" not in resp.text and "<form" in resp.text  # the page's language switch


def test_a_commit_failing_after_the_idp_view_answers_503_and_keeps_nothing(
    idp, idp_app, make_school, make_person
):
    from idp.models import Account, Person
    from shared.db import get_db

    school = make_school()
    person = make_person(school)
    browser = Browser(idp)
    sign_in(idp, browser, school, person)
    form = {"locale": "ru", "next": "/account"}
    with commit_fails(idp_app, "/locale") as failed:
        resp = browser.http.post(
            f"{idp}/locale", data=form, headers={"Origin": idp}, allow_redirects=False
        )
    assert failed == ["/locale"]
    _retry_page(resp)

    def locale() -> str | None:
        with idp_app.app_context():
            db = get_db()
            account = db.scalar(select(Account).where(Account.sub == person.sub))
            assert account is not None
            return db.get_one(Person, account.person_id).locale

    assert locale() != "ru"
    again = browser.http.post(
        f"{idp}/locale", data=form, headers={"Origin": idp}, allow_redirects=False
    )
    assert again.status_code == 303 and locale() == "ru"


def test_redis_away_gives_the_idps_retry_page_and_clients_a_retryable_error(
    idp, idp_app, make_school, make_person, monkeypatch
):
    school = make_school()
    person = make_person(school)
    browser = Browser(idp)
    code, verifier = obtain_code(browser, idp, school, person)
    monkeypatch.setitem(idp_app.extensions, "redis", dead_redis())
    _, challenge = pkce_pair()
    page = browser.http.get(
        f"{idp}/authorize",
        params={
            "response_type": "code",
            "client_id": school.client_id,
            "redirect_uri": school.redirect_uri,
            "scope": "openid",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        allow_redirects=False,
        timeout=10,
    )
    _retry_page(page)
    token = redeem(idp, school, code, verifier)
    assert token.status_code == 503 and token.headers["Retry-After"]
    assert token.json()["error"] == "temporarily_unavailable"
    assert token.headers["Cache-Control"] == "no-store"
    monkeypatch.undo()
    assert redeem(idp, school, code, verifier).status_code == 200


def test_the_school_answers_its_retry_page_when_its_storage_fails(
    idp, school_app, make_tenant, make_person, monkeypatch
):
    kool = make_tenant("Laagri Kool")
    person = make_person(kool.client)
    browser = Browser(idp)
    _sign_in(browser, kool.url, person)
    with commit_fails(school_app, "/profile") as failed:
        resp = browser.http.get(f"{kool.url}/profile", allow_redirects=False, timeout=10)
    assert failed == ["/profile"]
    _retry_page(resp)
    assert 'href="/profile"' in resp.text  # the way to try again
    monkeypatch.setitem(school_app.extensions, "redis", dead_redis())
    _retry_page(browser.http.get(f"{kool.url}/profile", allow_redirects=False, timeout=10))
    monkeypatch.undo()
    assert browser.http.get(f"{kool.url}/profile", timeout=10).status_code == 200
