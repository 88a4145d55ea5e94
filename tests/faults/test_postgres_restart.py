"""PostgreSQL restarts or is down during a logout: the logout either completes or the person
sees a page saying to try again, with the session still live in SQL and Redis; never an IdP
session gone while its schools were not told."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import requests
from sqlalchemy import select

from tests.faults.conftest import FaultIdp, Postgres, lock_waiters, wait_for
from tests.support import Receiver


def _state(idp: FaultIdp, sid: str, schools: int) -> str:
    """'live' or 'ended', after checking the invariant: Redis without the session only when SQL
    has committed its end with one outbox row per school."""
    from idp.models import Delivery, SsoSession
    from idp.store.keys import sid as alive_key
    from shared.db import get_db

    in_redis = bool(idp.redis.exists(alive_key(sid)))
    with idp.app.app_context():
        db = get_db()
        ended = db.scalar(select(SsoSession.ended_at).where(SsoSession.id == sid))
        outbox = [d for d in db.scalars(select(Delivery)) if d.payload.get("sid") == sid]
    if not in_redis:
        assert ended is not None and len(outbox) == schools, "IdP session gone, schools not told"
    if ended is None:
        assert not outbox
        return "live"
    return "ended"


def _retry_page(resp: requests.Response) -> None:
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    assert "Teenus on ajutiselt kättesaamatu" in resp.text and "Traceback" not in resp.text


def test_a_postgres_restart_during_logout_never_leaves_schools_untold(
    pg_idp: FaultIdp, postgres: Postgres, receivers: list[Receiver]
):
    idp = pg_idp
    browser, schools, logins, tokens, sid = idp.signed_in_at_two(receivers)
    hint = tokens[0]["id_token"]

    # 1. The server restarts while the logout waits inside its transaction.
    holder = psycopg.connect(postgres.url)
    holder.execute("SELECT 1 FROM sso_session WHERE id = %s FOR UPDATE", (sid,))
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(idp.logout, browser, hint)
        wait_for(lambda: lock_waiters(postgres.url), 10, "the logout to wait for its lock")
        postgres.stop("immediate")
        _retry_page(pending.result(timeout=30))
    holder.close()
    postgres.start()
    assert _state(idp, sid, len(schools)) == "live"
    assert all(not r.posts for r in receivers)

    # 2. The server is down when the person logs out.
    postgres.stop()
    started = time.monotonic()
    _retry_page(idp.logout(browser, hint))
    assert time.monotonic() - started < 10
    postgres.start()
    assert _state(idp, sid, len(schools)) == "live"

    # 3. Back up: the same logout completes and the schools are told.
    page = idp.logout(browser, hint)
    assert page.status_code == 200
    assert _state(idp, sid, len(schools)) == "ended"
    assert [s for _, s, _ in idp.deliveries(sid)] == ["delivered", "delivered"]
    for receiver, school, login in zip(receivers, schools, logins, strict=True):
        assert len(receiver.posts) == 1
        idp.check_logout_token(receiver.posts[0]["logout_token"][0], school, login.sub, sid)


def test_token_requests_while_postgres_is_down_get_a_503_and_consume_nothing(
    pg_idp: FaultIdp, postgres: Postgres, receivers: list[Receiver]
):
    """The token endpoint's lane answers a storage failure as the general path does, also while
    it is still finding the client (its cache empty); the refresh token survives the outage."""
    from tests.support import refresh

    idp = pg_idp
    _, schools, _, tokens, _ = idp.signed_in_at_two(receivers)
    idp.app.extensions.pop("client_cache", None)
    postgres.stop()
    for school, issued in zip(schools, tokens, strict=True):
        resp = refresh(idp.url, school, issued["refresh_token"])
        assert resp.status_code == 503 and resp.headers["Retry-After"], resp.text
        assert resp.json()["error"] == "temporarily_unavailable"
    postgres.start()
    for school, issued in zip(schools, tokens, strict=True):
        # A connection broken by the restart answers one more 503 (an idle one is pinged only
        # after a second), and is closed; the school retries as Retry-After says.
        for _ in range(5):
            again = refresh(idp.url, school, issued["refresh_token"])
            if again.status_code != 503:
                break
        assert again.status_code == 200, again.text
