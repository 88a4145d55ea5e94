"""A worker killed in the middle of a fan-out loses nothing: its leased rows come back when the
lease expires and a restarted worker delivers them."""

from __future__ import annotations

import time

from sqlalchemy import select

from tests.faults.conftest import FaultIdp, stop_worker, wait_for
from tests.support import Browser, Receiver, unverified_claims

SCHOOLS, PEOPLE, LEASE = 8, 2, 3


def _leases(idp: FaultIdp, sids: set[str]) -> list[tuple[str, float | None]]:
    from idp.models import Delivery
    from shared.db import get_db

    with idp.app.app_context():
        rows = get_db().scalars(select(Delivery)).all()
        return [
            (r.state, r.lease_until.timestamp() if r.lease_until else None)
            for r in rows
            if r.payload.get("sid") in sids
        ]


def test_killing_the_worker_mid_fan_out_loses_no_logout(
    idp: FaultIdp, receivers: list[Receiver], monkeypatch
):
    monkeypatch.setitem(idp.app.config, "DELIVERY_BACKOFF_SECONDS", 0)
    receivers.extend(Receiver(status=503) for _ in range(SCHOOLS))
    schools = [idp.school(r.url) for r in receivers]
    expected: set[tuple[str, str]] = set()
    subs: dict[tuple[str, str], str] = {}
    for _ in range(PEOPLE):
        browser = Browser(idp.url)
        logins = idp.person(schools)
        tokens = idp.sign_in_everywhere(browser, schools, logins)
        sid = unverified_claims(tokens[0]["id_token"])["sid"]
        page = browser.http.get(
            f"{idp.url}/logout", params={"id_token_hint": tokens[0]["id_token"]}, timeout=10
        )
        assert page.status_code == 200
        for school, login in zip(schools, logins, strict=True):
            expected.add((school.client_id, sid))
            subs[(school.client_id, sid)] = login.sub
    sids = {sid for _, sid in expected}
    assert [state for state, _ in _leases(idp, sids)] == ["pending"] * len(expected)

    for receiver in receivers:  # the schools are back, but slow
        receiver.status, receiver.delay = 200, 3.0
    worker = idp.start_worker(IDP_DELIVERY_LEASE_SECONDS=str(LEASE), IDP_DELIVERY_TIMEOUT="6")
    wait_for(
        lambda: all(len(r.posts) == 2 * PEOPLE for r in receivers),
        20,
        "the worker to be sending to every school",
    )
    worker.kill()  # SIGKILL mid-send: no answer recorded, every row still leased
    worker.wait(10)
    leased = _leases(idp, sids)
    assert all(state == "pending" and lease and lease > time.time() for state, lease in leased)
    lease_ends = min(lease for _, lease in leased if lease)

    for receiver in receivers:
        receiver.delay = 0
    restarted = idp.start_worker(IDP_DELIVERY_LEASE_SECONDS=str(LEASE))
    wait_for(
        lambda: all(state == "delivered" for state, _ in _leases(idp, sids)),
        30,
        "every row to be delivered after the restart",
    )
    stop_worker(restarted)

    received: set[tuple[str, str]] = set()
    by_client = {s.client_id: s for s in schools}
    for receiver in receivers:
        redelivered = receiver.posts[2 * PEOPLE :]
        assert len(redelivered) == PEOPLE  # exactly one more each, once the lease was over
        assert min(receiver.arrived[2 * PEOPLE :]) >= lease_ends - 0.05
        for post in redelivered:
            token = post["logout_token"][0]
            claims = unverified_claims(token)
            key = (claims["aud"], claims["sid"])
            idp.check_logout_token(token, by_client[key[0]], subs[key], key[1])
            received.add(key)
    assert received == expected
