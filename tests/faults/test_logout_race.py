"""A code exchange or a refresh racing a logout on PostgreSQL: either it is refused or its school
is told of the logout; never tokens for a school that the logout did not reach, and never the two
waiting on each other."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg

from tests.faults.conftest import FaultIdp, Postgres, wait_for
from tests.support import (
    Browser,
    Receiver,
    obtain_code,
    redeem,
    refresh,
    sign_in,
    unverified_claims,
)


def _lock_waiters(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity "
                           "WHERE wait_event_type = 'Lock'").fetchone()
        return int(row[0]) if row else 0


def test_a_code_exchange_behind_a_logout_is_refused(pg_idp: FaultIdp, postgres: Postgres,
                                                    receivers: list[Receiver]):
    idp = pg_idp
    browser = Browser(idp.url)
    receivers.extend([Receiver(), Receiver()])
    schools = [idp.school(r.url) for r in receivers]
    logins = idp.person(schools)
    first = sign_in(idp.url, browser, schools[0], logins[0], scope="openid offline_access")
    sid = unverified_claims(first["id_token"])["sid"]
    # The second school gets its code silently from the live session, not yet exchanged.
    code, verifier = obtain_code(browser, idp.url, schools[1], logins[1],
                                 scope="openid offline_access")

    # The logout locks the session, then waits on the first school's client row, held here, to
    # queue its logout message: the exchange starts while the logout is under way and must not
    # slip past it.
    holder = psycopg.connect(postgres.url)
    holder.execute("SELECT 1 FROM client WHERE client_id = %s FOR UPDATE",
                   (schools[0].client_id,))
    with ThreadPoolExecutor(2) as pool:
        logout = pool.submit(browser.http.get, f"{idp.url}/logout",
                             params={"id_token_hint": first["id_token"]}, timeout=30)
        wait_for(lambda: _lock_waiters(postgres.url) == 1, 10, "the logout to wait")
        exchange = pool.submit(redeem, idp.url, schools[1], code, verifier)
        wait_for(lambda: _lock_waiters(postgres.url) == 2, 10, "the exchange to wait")
        holder.rollback()
        holder.close()
        assert logout.result(timeout=30).status_code == 200
        answer = exchange.result(timeout=30)

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_grant"
    # The first school was told; the second never held tokens, so nothing was owed to it.
    assert [s for _, s, _ in idp.deliveries(sid)] == ["delivered"]
    assert len(receivers[0].posts) == 1 and not receivers[1].posts


def test_a_logout_behind_a_code_exchange_tells_its_school(pg_idp: FaultIdp, postgres: Postgres,
                                                          receivers: list[Receiver]):
    idp = pg_idp
    browser = Browser(idp.url)
    receivers.extend([Receiver(), Receiver()])
    schools = [idp.school(r.url) for r in receivers]
    logins = idp.person(schools)
    first = sign_in(idp.url, browser, schools[0], logins[0], scope="openid offline_access")
    sid = unverified_claims(first["id_token"])["sid"]
    code, verifier = obtain_code(browser, idp.url, schools[1], logins[1],
                                 scope="openid offline_access")

    # The exchange reads the session, then waits on its client's row, held here; the logout
    # starts while the exchange is under way and must reach its school.
    holder = psycopg.connect(postgres.url)
    holder.execute("SELECT 1 FROM client WHERE client_id = %s FOR UPDATE",
                   (schools[1].client_id,))
    with ThreadPoolExecutor(2) as pool:
        exchange = pool.submit(redeem, idp.url, schools[1], code, verifier)
        wait_for(lambda: _lock_waiters(postgres.url) == 1, 10, "the exchange to wait")
        logout = pool.submit(browser.http.get, f"{idp.url}/logout",
                             params={"id_token_hint": first["id_token"]}, timeout=30)
        wait_for(lambda: _lock_waiters(postgres.url) == 2, 10, "the logout to wait")
        holder.rollback()
        holder.close()
        answer = exchange.result(timeout=30)
        assert logout.result(timeout=30).status_code == 200

    assert answer.status_code == 200, answer.text
    assert [s for _, s, _ in idp.deliveries(sid)] == ["delivered", "delivered"]
    for receiver, school, login in zip(receivers, schools, logins, strict=True):
        assert len(receiver.posts) == 1
        idp.check_logout_token(receiver.posts[0]["logout_token"][0], school, login.sub, sid)


def test_a_refresh_that_holds_its_token_does_not_deadlock_a_logout(
        pg_idp: FaultIdp, postgres: Postgres, receivers: list[Receiver]):
    idp = pg_idp
    browser = Browser(idp.url)
    receivers.extend([Receiver(), Receiver()])
    schools = [idp.school(r.url) for r in receivers]
    logins = idp.person(schools)
    tokens = idp.sign_in_everywhere(browser, schools, logins)
    sid = unverified_claims(tokens[0]["id_token"])["sid"]

    # Held here, the session row makes the logout wait for it first and a refresh of the second
    # school queue behind the logout, holding its own token: the logout then takes the session
    # and comes to revoke that token while the refresh waits for the session.
    holder = psycopg.connect(postgres.url)
    holder.execute("SELECT 1 FROM sso_session WHERE id = %s FOR NO KEY UPDATE", (sid,))
    with ThreadPoolExecutor(2) as pool:
        logout = pool.submit(browser.http.get, f"{idp.url}/logout",
                             params={"id_token_hint": tokens[0]["id_token"]}, timeout=30)
        wait_for(lambda: _lock_waiters(postgres.url) == 1, 10, "the logout to wait")
        renewed = pool.submit(refresh, idp.url, schools[1], tokens[1]["refresh_token"])
        wait_for(lambda: _lock_waiters(postgres.url) == 2, 10, "the refresh to wait")
        holder.rollback()
        holder.close()
        page = logout.result(timeout=30)
        answer = renewed.result(timeout=30)

    assert page.status_code == 200, page.text
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant", answer.text
    assert [s for _, s, _ in idp.deliveries(sid)] == ["delivered", "delivered"]
    # The token the refresh held was not revoked, but its session has ended: still refused.
    again = refresh(idp.url, schools[1], tokens[1]["refresh_token"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
