"""Redis restarts from a snapshot taken before a logout, mid-fan-out: the ended session's keys
come back, yet the session stays dead (SQL decides) and the fan-out still completes."""

from __future__ import annotations

import requests

from tests.faults.conftest import FaultIdp, RedisServer
from tests.support import (
    Browser,
    Receiver,
    authorize_url,
    callback_params,
    pkce_pair,
    refresh,
    unverified_claims,
)


def _silent(idp: FaultIdp, browser: Browser, school) -> dict[str, str]:
    _, challenge = pkce_pair()
    resp = browser.http.get(
        authorize_url(idp.url, school, challenge, prompt="none"), allow_redirects=False, timeout=10
    )
    return callback_params(resp)


def test_a_redis_restart_mid_fan_out_revives_no_session(
    idp: FaultIdp,
    redis_server: RedisServer,
    browser: Browser,
    receivers: list[Receiver],
    monkeypatch,
):
    from idp.dispatch.deliveries import run_once
    from idp.store.keys import sid as alive_key

    monkeypatch.setitem(idp.app.config, "DELIVERY_BACKOFF_SECONDS", 0)
    receivers.extend([Receiver(), Receiver(), Receiver(status=503)])
    schools = [idp.school(r.url) for r in receivers]
    logins = idp.person(schools)
    tokens = idp.sign_in_everywhere(browser, schools, logins)
    sid = unverified_claims(tokens[0]["id_token"])["sid"]
    assert "code" in _silent(idp, browser, schools[0])
    idp.redis.save()  # the snapshot a restart will load: the session is live in it

    cookie_name = idp.app.config["SSO_COOKIE_NAME"]
    old_cookie = browser.http.cookies.get(cookie_name)
    assert old_cookie
    page = browser.http.get(
        f"{idp.url}/logout", params={"id_token_hint": tokens[0]["id_token"]}, timeout=10
    )
    assert page.status_code == 200 and not idp.redis.exists(alive_key(sid))
    assert [s for _, s, _ in idp.deliveries(sid)] == ["delivered", "delivered", "pending"]

    redis_server.kill()
    redis_server.start()
    assert idp.redis.exists(alive_key(sid)), "the restart was meant to revive the keys"

    assert _silent(idp, browser, schools[0])["error"] == "login_required"
    # The account pages do not open for the ended session's cookie either.
    account = requests.get(
        f"{idp.url}/account/sessions", cookies={cookie_name: old_cookie}, timeout=10
    )
    assert "Sa ei ole sisse logitud" in account.text
    for school, issued in zip(schools, tokens, strict=True):
        refused = refresh(idp.url, school, issued["refresh_token"])
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        info = requests.get(
            f"{idp.url}/userinfo",
            timeout=10,
            headers={"Authorization": f"Bearer {issued['access_token']}"},
        )
        assert info.status_code == 401

    receivers[2].status = 200
    with idp.app.app_context():
        outcomes = run_once(idp.app)
    assert [o.delivered for o in outcomes] == [True]
    assert [s for _, s, _ in idp.deliveries(sid)] == ["delivered"] * 3
    idp.check_logout_token(
        receivers[2].posts[-1]["logout_token"][0], schools[2], logins[2].sub, sid
    )

    # Logging in again on that browser starts a new session instead of renewing the dead one.
    again = idp.sign_in_everywhere(browser, schools[:1], logins[:1])[0]
    assert unverified_claims(again["id_token"])["sid"] != sid
