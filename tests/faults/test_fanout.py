"""One logout, many schools, some of them broken: the healthy ones are told at once, the logout
page does not wait for the broken ones, and the worker tells those when they recover."""

from __future__ import annotations

import time

from tests.faults.conftest import FaultIdp, stop_worker, wait_for
from tests.support import Browser, Receiver, free_port, unverified_claims


def test_broken_schools_do_not_hold_up_logout_and_are_told_when_they_recover(
    idp: FaultIdp, browser: Browser, receivers: list[Receiver], monkeypatch
):
    monkeypatch.setitem(idp.app.config, "DELIVERY_BACKOFF_SECONDS", 0)
    healthy = [Receiver(), Receiver()]
    hanging, flaky = Receiver(), Receiver()
    hanging.delay = 3.0  # past both the direct attempt's and the worker's timeout
    flaky.script = [500, 500]
    receivers.extend([*healthy, hanging, flaky])
    refusing_port = free_port()  # nothing listens here yet
    bases = [r.url for r in healthy] + [f"http://127.0.0.1:{refusing_port}", hanging.url, flaky.url]
    schools = [idp.school(base) for base in bases]
    logins = idp.person(schools)
    tokens = idp.sign_in_everywhere(browser, schools, logins)
    sid = unverified_claims(tokens[0]["id_token"])["sid"]

    started = time.monotonic()
    page = browser.http.get(
        f"{idp.url}/logout", params={"id_token_hint": tokens[0]["id_token"]}, timeout=10
    )
    assert page.status_code == 200 and time.monotonic() - started < 1.0
    for receiver, school, login in zip(healthy, schools, logins, strict=False):
        assert len(receiver.posts) == 1
        idp.check_logout_token(receiver.posts[0]["logout_token"][0], school, login.sub, sid)
    states = {c: (state, attempts) for c, state, attempts in idp.deliveries(sid)}
    assert states == {
        s.client_id: (("delivered", 1) if i < 2 else ("pending", 1)) for i, s in enumerate(schools)
    }

    recovered_at = time.time()
    receivers.append(Receiver(port=refusing_port))
    refusing = receivers[-1]
    hanging.delay = 0
    worker = idp.start_worker()
    wait_for(
        lambda: all(state == "delivered" for _, state, _ in idp.deliveries(sid)),
        20,
        "every school to be told",
    )
    output = stop_worker(worker)
    assert output.count(": delivered") == 3, output

    jtis = set()
    for receiver, school, login in zip(
        [*healthy, refusing, hanging, flaky], schools, logins, strict=True
    ):
        sent = [p["logout_token"][0] for p in receiver.posts]
        jtis |= {unverified_claims(t)["jti"] for t in sent}
        last = idp.check_logout_token(sent[-1], school, login.sub, sid)
        if receiver in healthy:
            assert len(sent) == 1
        else:
            assert last["iat"] >= int(recovered_at)  # minted for this attempt, not reused
    assert len(flaky.posts) == 3 and len(refusing.posts) == 1 and len(hanging.posts) == 2
    assert len(jtis) == sum(len(r.posts) for r in receivers)
    assert [(a, s) for _, s, a in idp.deliveries(sid)] == [
        (1, "delivered"),
        (1, "delivered"),
        (2, "delivered"),
        (2, "delivered"),
        (3, "delivered"),
    ]
