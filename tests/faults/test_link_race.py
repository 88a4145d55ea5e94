"""Linking racing on PostgreSQL. A link (merge) or an unlink against a school's refresh or code
exchange: the school's request takes its session, then its account; the link or unlink changes
the account and ends or narrows the session. Neither may wait on the other: the link goes
through, the school's request is refused (it reads the account as the change left it), the
school is told. Two links of one person at once: the second reads what the first
did and merges nothing into a person already absorbed."""

from __future__ import annotations

import re
from functools import partial

import requests

from tests.faults.conftest import FaultIdp, Postgres, lock_waiters, race
from tests.support import (
    CSRF_RE,
    Browser,
    PersonLogin,
    Receiver,
    obtain_code,
    redeem,
    refresh,
    sign_in,
    unverified_claims,
)

ATTEMPT_RE = re.compile(r'name="attempt" value="([^"]+)"')


def _post(idp: FaultIdp, browser: Browser, path: str, **form: str) -> requests.Response:
    """POST a form of the signed-in browser's account pages, with its CSRF token."""
    page = browser.http.get(f"{idp.url}/account", timeout=10)
    csrf = CSRF_RE.search(page.text)
    assert csrf, page.text
    return browser.http.post(
        f"{idp.url}{path}",
        data={"csrf_token": csrf.group(1), **form},
        allow_redirects=False,
        timeout=30,
    )


def _proven_attempt(
    idp: FaultIdp, browser: Browser, source: str, target: str, theirs: PersonLogin
) -> str:
    """Start linking from source to target and prove the target account; the attempt."""
    started = _post(idp, browser, "/link/start", source=source, target=target)
    found = ATTEMPT_RE.search(started.text)
    assert started.status_code == 200 and found, started.text
    shown = _post(
        idp,
        browser,
        "/link/login",
        attempt=found.group(1),
        school=target,
        email=theirs.email,
        password=theirs.password,
    )
    assert shown.status_code == 200 and "Kinnita kontode sidumine" in shown.text, shown.text
    return found.group(1)


def test_a_link_and_a_refresh_under_the_absorbed_session_do_not_deadlock(
    pg_idp: FaultIdp, postgres: Postgres, receivers: list[Receiver]
):
    idp = pg_idp
    receivers.extend([Receiver(), Receiver()])
    mine_school, their_school = (idp.school(r.url) for r in receivers)
    [mine] = idp.person([mine_school])
    [theirs] = idp.person([their_school])
    # The other account is signed in on another device, its school holding a refresh token.
    tokens = sign_in(idp.url, Browser(idp.url), their_school, theirs, scope="openid offline_access")
    sid = unverified_claims(tokens["id_token"])["sid"]
    browser = Browser(idp.url)
    sign_in(idp.url, browser, mine_school, mine, scope="openid")
    attempt = _proven_attempt(idp, browser, mine_school.slug, their_school.slug, theirs)

    # The other account's row held: the link waits for it first, then the refresh (having
    # taken its session) waits for it too; released, the link moves it and ends the session.
    confirmed, answer = race(
        postgres,
        "SELECT 1 FROM account WHERE sub = %s FOR UPDATE",
        theirs.sub,
        partial(_post, idp, browser, "/link/confirm", attempt=attempt, email="mine"),
        partial(refresh, idp.url, their_school, tokens["refresh_token"]),
    )
    assert confirmed.status_code == 200 and "Kontod on seotud" in confirmed.text, confirmed.text
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant", answer.text
    assert lock_waiters(postgres.url) == 0
    assert [state for _, state, _ in idp.deliveries(sid)] == ["delivered"]
    [told] = [post["logout_token"][0] for post in receivers[1].posts if "logout_token" in post]
    idp.check_logout_token(told, their_school, theirs.sub, sid)


def test_an_unlink_and_a_refresh_at_that_school_do_not_deadlock(
    pg_idp: FaultIdp, postgres: Postgres, receivers: list[Receiver]
):
    idp = pg_idp
    # One person, linked at two schools, signed in at both (the second school's refresh token
    # is under the session and the account about to be split off).
    browser, schools, logins, tokens, sid = idp.signed_in_at_two(receivers)
    split_off = logins[1]

    # The split-off account's row held: the unlink waits for it first, then the second school's
    # refresh (having taken the session) waits for it too; released, the unlink moves it away
    # and the session loses that school.
    done, answer = race(
        postgres,
        "SELECT 1 FROM account WHERE sub = %s FOR UPDATE",
        split_off.sub,
        partial(_post, idp, browser, "/account/unlink", school=schools[1].slug),
        partial(refresh, idp.url, schools[1], tokens[1]["refresh_token"]),
    )
    assert done.status_code == 200 and "Seos on eemaldatud" in done.text, done.text
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant", answer.text
    assert lock_waiters(postgres.url) == 0
    # Only the second school was told; the session goes on at the first.
    [told] = [post["logout_token"][0] for post in receivers[1].posts if "logout_token" in post]
    idp.check_logout_token(told, schools[1], split_off.sub, sid)
    assert not [post for post in receivers[0].posts if "logout_token" in post]
    assert refresh(idp.url, schools[0], tokens[0]["refresh_token"]).status_code == 200


def test_an_unlink_and_a_code_exchange_at_that_school_give_no_tokens(
    pg_idp: FaultIdp, postgres: Postgres, receivers: list[Receiver]
):
    idp = pg_idp
    # Signed in at the first school; the second school's code obtained silently, not yet
    # exchanged, when the person splits the second school's account off.
    browser, schools, logins = idp.two_schools(receivers)
    idp.sign_in_everywhere(browser, schools[:1], logins[:1])
    code, verifier = obtain_code(browser, idp.url, schools[1], logins[1], scope="openid")

    # The split-off account's row held: the unlink, holding the session, waits for it; the
    # exchange waits for the session. Released, the unlink moves the account; the exchange
    # then reads the account as it is now: another person's, so no tokens.
    done, answer = race(
        postgres,
        "SELECT 1 FROM account WHERE sub = %s FOR UPDATE",
        logins[1].sub,
        partial(_post, idp, browser, "/account/unlink", school=schools[1].slug),
        partial(redeem, idp.url, schools[1], code, verifier),
    )
    assert done.status_code == 200 and "Seos on eemaldatud" in done.text, done.text
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant", answer.text
    assert lock_waiters(postgres.url) == 0


def test_a_link_of_a_person_just_absorbed_by_another_link_is_refused(
    pg_idp: FaultIdp, postgres: Postgres, receivers: list[Receiver]
):
    idp = pg_idp
    receivers.extend([Receiver(), Receiver(), Receiver()])
    schools = [idp.school(r.url) for r in receivers]
    [a], [b], [c] = (idp.person([school]) for school in schools)
    # A links B, and B (in a browser of its own) links C, both proven and confirmed at once.
    browsers = [Browser(idp.url), Browser(idp.url)]
    sign_in(idp.url, browsers[0], schools[0], a, scope="openid")
    sign_in(idp.url, browsers[1], schools[1], b, scope="openid")
    a_links_b = _proven_attempt(idp, browsers[0], schools[0].slug, schools[1].slug, b)
    b_links_c = _proven_attempt(idp, browsers[1], schools[1].slug, schools[2].slug, c)

    # B's person row held: A's link waits for it first, then B's link; released, A's link
    # absorbs B, and B's link, reading B afresh, merges nothing.
    first, second = race(
        postgres,
        "SELECT 1 FROM person WHERE id = (SELECT person_id FROM account WHERE sub = %s) FOR UPDATE",
        b.sub,
        partial(_post, idp, browsers[0], "/link/confirm", attempt=a_links_b, email="mine"),
        partial(_post, idp, browsers[1], "/link/confirm", attempt=b_links_c, email="mine"),
    )
    assert first.status_code == 200 and "Kontod on seotud" in first.text, first.text
    assert second.status_code == 409 and "Kontod muutusid sidumise ajal" in second.text, second.text
    # A has A's and B's accounts; C's account still belongs to C, who can still sign in.
    owners = _owners(idp, [a.sub, b.sub, c.sub])
    assert owners[a.sub] == owners[b.sub] != owners[c.sub]
    assert sign_in(idp.url, Browser(idp.url), schools[2], c, scope="openid")["id_token"]


def _owners(idp: FaultIdp, subs: list[str]) -> dict[str, int]:
    """The person each account (by sub) belongs to."""
    from sqlalchemy import select

    from idp.models import Account
    from shared.db import get_db

    with idp.app.app_context():
        rows = (
            get_db()
            .execute(select(Account.sub, Account.person_id).where(Account.sub.in_(subs)))
            .all()
        )
        return {sub: person_id for sub, person_id in rows}
