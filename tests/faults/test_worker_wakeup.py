"""On PostgreSQL the worker sleeps on LISTEN: a committed logout wakes it at once (NOTIFY),
however long its poll interval."""

from __future__ import annotations

import time

from tests.faults.conftest import FaultIdp, stop_worker, wait_for
from tests.support import Browser, Receiver, unverified_claims


def test_a_committed_logout_wakes_the_worker_at_once(pg_idp: FaultIdp, receivers: list[Receiver]):
    from idp.sso.logout import Scope, end_sessions
    from shared.db import get_db

    idp = pg_idp
    receivers.append(Receiver())
    school = idp.school(receivers[0].url)
    [login] = idp.person([school])
    [tokens] = idp.sign_in_everywhere(Browser(idp.url), [school], [login])
    sid = unverified_claims(tokens["id_token"])["sid"]
    worker = idp.start_worker(IDP_WORKER_POLL_SECONDS="60")
    wait_for(lambda: worker.poll() is None and _listening(idp), 20, "the worker to listen")
    with idp.app.app_context():
        ended = end_sessions(get_db(), Scope(session_ids=(sid,)), "logout", deliver=False)
    committed = time.monotonic()
    assert ended.session_ids == [sid]
    wait_for(lambda: receivers[0].posts, 10, "the woken worker to deliver")
    assert time.monotonic() - committed < 10  # far below the 60 s poll interval
    output = stop_worker(worker)
    assert ": delivered" in output
    idp.check_logout_token(receivers[0].posts[0]["logout_token"][0], school, login.sub, sid)


def _listening(idp: FaultIdp) -> bool:
    from sqlalchemy import text

    from idp.outbox.queue import WAKE_CHANNEL

    with idp.app.extensions["db_engine"].connect() as conn:
        return bool(
            conn.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE query = :q"),
                {"q": f"LISTEN {WAKE_CHANNEL}"},
            )
        )
