"""A password login racing a change of its credential on PostgreSQL. The login reads the
password hash, spends its argon2 time, then stores its session; a password change, an account
disable or a link absorbing the person in between must not leave a session made with what it
took away. Either the change
waits for the login's insert and ends the new session, or the login's insert waits for the
change and is refused.

Login first: the account's row is held in a third connection, so the login's insert takes the
person's row FOR SHARE and stops at the account's; the change then waits for the person's row.
Change first: the session table is held (LOCK TABLE ... IN SHARE MODE: reads go on, no session is
inserted or ended), so the change stops at ending the person's other session, holding what it
changed; the login verifies the old state and stops at its insert. Released, both finish in the
order their row locks give them."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest
import requests
from sqlalchemy import select, update

from tests.faults.conftest import FaultIdp, Postgres, lock_waiters, race
from tests.support import (
    Browser,
    PersonLogin,
    SchoolClient,
    authorize_url,
    callback_params,
    pkce_pair,
    sign_in,
)

HOLD_SESSIONS = "LOCK TABLE sso_session IN SHARE MODE"
HOLD_ACCOUNT = "SELECT 1 FROM account WHERE sub = %s FOR UPDATE"
WRONG = "E-posti aadress või parool on vale."
NEW_PASSWORD = "Kaks kassi jalutavad mööda katust"


def _login_page(idp: FaultIdp, school: SchoolClient) -> tuple[Browser, requests.Response]:
    """A fresh browser on the IdP's login form for the school."""
    browser = Browser(idp.url)
    _, challenge = pkce_pair()
    page = browser.follow(authorize_url(idp.url, school, challenge), school.redirect_uri)
    assert page.status_code == 200 and 'name="password"' in page.text
    return browser, page


def _signed_in_silently(browser: Browser, idp: FaultIdp, school: SchoolClient) -> bool:
    """Whether the browser's IdP session still answers prompt=none with a code."""
    _, challenge = pkce_pair()
    answer = browser.follow(
        authorize_url(idp.url, school, challenge, prompt="none"), school.redirect_uri
    )
    params = callback_params(answer)
    assert "code" in params or params.get("error") == "login_required", params
    return "code" in params


def _sessions(
    idp: FaultIdp, sub: str, absorbed: bool = False
) -> list[tuple[str | None, str | None]]:
    """(ended_at is set, end_reason) of every session of the account's person, or, absorbed,
    of the persons a link absorbed into it."""
    from idp.models import Account, Person, SsoSession
    from shared.db import get_db

    with idp.app.app_context():
        db = get_db()
        person_id = db.scalar(select(Account.person_id).where(Account.sub == sub))
        persons = (
            db.scalars(select(Person.id).where(Person.merged_into_id == person_id)).all()
            if absorbed
            else [person_id]
        )
        rows = db.scalars(select(SsoSession).where(SsoSession.person_id.in_(persons))).all()
        return [(None if s.ended_at is None else "ended", s.end_reason) for s in rows]


def _change_password(browser: Browser, current: str) -> requests.Response:
    """Muuda parooli on the signed-in browser's account page."""
    from tests.flows.idp_account import post_form

    page = browser.http.get(f"{browser.issuer}/account/password", timeout=10)
    return post_form(
        browser,
        page,
        "/account/password",
        current_password=current,
        new_password=NEW_PASSWORD,
        new_password_again=NEW_PASSWORD,
    )


def _admin_token(idp: FaultIdp, school: SchoolClient) -> str:
    """An access token of an admin of the school (the tenant admin API's caller)."""
    from idp.models import Account
    from shared.db import get_db

    [admin] = idp.person([school])
    with idp.app.app_context():
        db = get_db()
        db.execute(update(Account).where(Account.sub == admin.sub).values(roles=["admin"]))
        db.commit()
    return str(sign_in(idp.url, Browser(idp.url), school, admin, scope="openid")["access_token"])


def _disable(idp: FaultIdp, token: str, sub: str) -> requests.Response:
    return requests.post(
        f"{idp.url}/api/admin/v1/accounts/{sub}/disable",
        timeout=30,
        headers={"Authorization": f"Bearer {token}"},
    )


def _setup(idp: FaultIdp) -> tuple[SchoolClient, PersonLogin, Browser]:
    """A school, a person with an account there, signed in on two devices (the first returned:
    the one a change is made on; the other is a session the change must end, so that it holds
    its locks while it waits for the session table)."""
    school = idp.school("http://127.0.0.1:9")
    [person] = idp.person([school])
    owner = Browser(idp.url)
    sign_in(idp.url, owner, school, person, scope="openid")
    sign_in(idp.url, Browser(idp.url), school, person, scope="openid")
    return school, person, owner


def _in_order(
    postgres: Postgres,
    login_first: bool,
    sub: str,
    login: Callable[[], requests.Response],
    change: Callable[[], requests.Response],
) -> requests.Response:
    """Race the login (of the account sub) and the change in the case's order; check the
    login's answer (on to the school when it went first, the form with the one wrong-password
    answer when it came second); return the change's answer."""
    if login_first:
        logged_in, answer = race(postgres, HOLD_ACCOUNT, sub, login, change)
        assert logged_in.status_code == 303, logged_in.text
    else:
        answer, logged_in = race(postgres, HOLD_SESSIONS, None, change, login)
        assert logged_in.status_code == 200 and WRONG in logged_in.text, logged_in.status_code
    assert lock_waiters(postgres.url) == 0
    return answer


@pytest.mark.parametrize("login_first", [True, False], ids=["login-first", "change-first"])
def test_a_login_racing_a_password_change_keeps_no_session(
    pg_idp: FaultIdp, postgres: Postgres, login_first: bool
):
    idp = pg_idp
    school, person, owner = _setup(idp)
    intruder, page = _login_page(idp, school)  # someone who knows the old password
    login = partial(intruder.post_login, page, person.email, person.password, timeout=30)
    change = partial(_change_password, owner, person.password)
    # Login first: having verified the old password and holding the person, it waits to store
    # its session; the change waits for it, then ends that session too. Change first: holding
    # the person, it waits to end the other session; the login, having verified the old hash,
    # waits to store its session and finds the hash changed.
    changed = _in_order(postgres, login_first, person.sub, login, change)
    assert changed.status_code == 200 and "<title>Parool on muudetud</title>" in changed.text
    assert not _signed_in_silently(intruder, idp, school)
    assert _signed_in_silently(owner, idp, school)
    ended = [reason for state, reason in _sessions(idp, person.sub) if state]
    assert ended == ["password_change"] * (2 if login_first else 1), _sessions(idp, person.sub)


@pytest.mark.parametrize("login_first", [True, False], ids=["login-first", "disable-first"])
def test_a_login_racing_an_account_disable_keeps_no_session(
    pg_idp: FaultIdp, postgres: Postgres, login_first: bool
):
    idp = pg_idp
    school, person, _owner = _setup(idp)
    token = _admin_token(idp, school)
    browser, page = _login_page(idp, school)
    login = partial(browser.post_login, page, person.email, person.password, timeout=30)
    disable = partial(_disable, idp, token, person.sub)
    # Login first: holding the person, it waits to store its session; the disable waits for it,
    # then ends every session signed in with the account, the new one too. Disable first:
    # holding the person, it waits to end the sessions; the login verifies the password, waits
    # to store its session and finds the account disabled.
    disabled = _in_order(postgres, login_first, person.sub, login, disable)
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["sessions_ended"] == (3 if login_first else 2), disabled.text
    assert not _signed_in_silently(browser, idp, school)
    assert _sessions(idp, person.sub) == [("ended", "account_disabled")] * (3 if login_first else 2)


@pytest.mark.parametrize("login_first", [True, False], ids=["login-first", "link-first"])
def test_a_login_racing_a_link_that_absorbs_the_person_keeps_no_session(
    pg_idp: FaultIdp, postgres: Postgres, login_first: bool
):
    from tests.faults.test_link_race import _post, _proven_attempt

    idp = pg_idp
    mine_school, their_school = idp.school("http://127.0.0.1:9"), idp.school("http://127.0.0.1:9")
    [mine] = idp.person([mine_school])
    [theirs] = idp.person([their_school])
    linker = Browser(idp.url)
    sign_in(idp.url, linker, mine_school, mine, scope="openid")
    sign_in(idp.url, Browser(idp.url), their_school, theirs, scope="openid")  # another device
    attempt = _proven_attempt(idp, linker, mine_school.slug, their_school.slug, theirs)
    browser, page = _login_page(idp, their_school)
    login = partial(browser.post_login, page, theirs.email, theirs.password, timeout=30)
    confirm = partial(_post, idp, linker, "/link/confirm", attempt=attempt, email="mine")
    # Login first: holding the other person, it waits to store its session; the link waits for
    # it, then ends every session of the person it absorbs, the new one too. Link first: holding
    # both persons, it waits to end the other person's session; the login verifies that
    # person's password, waits to store its session and finds the person absorbed.
    linked = _in_order(postgres, login_first, theirs.sub, login, confirm)
    assert linked.status_code == 200 and "Kontod on seotud" in linked.text, linked.text
    assert not _signed_in_silently(browser, idp, their_school)
    assert _signed_in_silently(linker, idp, their_school)  # the linked account is the linker's
    absorbed = _sessions(idp, mine.sub, absorbed=True)
    assert absorbed == [("ended", "link")] * (2 if login_first else 1), absorbed
