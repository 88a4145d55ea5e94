"""A code exchange or a refresh racing a logout on PostgreSQL: either it is refused or its school
is told of the logout; never tokens for a school that the logout did not reach, and never the two
waiting on each other."""

from __future__ import annotations

from functools import partial
from typing import Any

from tests.faults.conftest import FaultIdp, Postgres, race
from tests.support import Receiver, obtain_code, redeem, refresh, unverified_claims


def _signed_in_once(idp: FaultIdp, receivers: list[Receiver]) -> dict[str, Any]:
    """Signed in at the first school (with a refresh token); the second school's code obtained
    silently from the live session and not yet exchanged."""
    browser, schools, logins = idp.two_schools(receivers)
    tokens = idp.sign_in_everywhere(browser, schools[:1], logins[:1])[0]
    code, verifier = obtain_code(
        browser, idp.url, schools[1], logins[1], scope="openid offline_access"
    )
    return {
        "browser": browser,
        "schools": schools,
        "logins": logins,
        "exchange": partial(redeem, idp.url, schools[1], code, verifier),
        "logout": partial(idp.logout, browser, tokens["id_token"]),
        "sid": unverified_claims(tokens["id_token"])["sid"],
    }


def test_a_code_exchange_behind_a_logout_is_refused(
    pg_idp: FaultIdp, postgres: Postgres, receivers: list[Receiver]
):
    s = _signed_in_once(pg_idp, receivers)
    # The logout locks the session, then waits for the first school's client row (held) to
    # queue its logout message: the exchange starts meanwhile and must not slip past it.
    page, answer = race(
        postgres,
        "SELECT 1 FROM client WHERE client_id = %s FOR UPDATE",
        s["schools"][0].client_id,
        s["logout"],
        s["exchange"],
    )
    assert page.status_code == 200
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_grant"
    # The first school was told; the second never held tokens, so nothing was owed to it.
    assert [state for _, state, _ in pg_idp.deliveries(s["sid"])] == ["delivered"]
    assert len(receivers[0].posts) == 1 and not receivers[1].posts


def test_a_logout_behind_a_code_exchange_tells_its_school(
    pg_idp: FaultIdp, postgres: Postgres, receivers: list[Receiver]
):
    s = _signed_in_once(pg_idp, receivers)
    # The exchange reads the session, then waits for its client's row (held); the logout starts
    # meanwhile and must reach the exchange's school too.
    answer, page = race(
        postgres,
        "SELECT 1 FROM client WHERE client_id = %s FOR UPDATE",
        s["schools"][1].client_id,
        s["exchange"],
        s["logout"],
    )
    assert answer.status_code == 200, answer.text
    assert page.status_code == 200
    assert [state for _, state, _ in pg_idp.deliveries(s["sid"])] == ["delivered", "delivered"]
    for receiver, school, login in zip(receivers, s["schools"], s["logins"], strict=True):
        assert len(receiver.posts) == 1
        pg_idp.check_logout_token(receiver.posts[0]["logout_token"][0], school, login.sub, s["sid"])


def test_a_refresh_that_holds_its_token_does_not_deadlock_a_logout(
    pg_idp: FaultIdp, postgres: Postgres, receivers: list[Receiver]
):
    idp = pg_idp
    browser, schools, _logins, tokens, sid = idp.signed_in_at_two(receivers)
    renew = partial(refresh, idp.url, schools[1], tokens[1]["refresh_token"])
    # The held session row makes the logout wait for it first and the second school's refresh
    # queue behind the logout, holding its own token: the logout then takes the session and
    # comes to revoke that token while the refresh waits for the session.
    page, answer = race(
        postgres,
        "SELECT 1 FROM sso_session WHERE id = %s FOR NO KEY UPDATE",
        sid,
        partial(idp.logout, browser, tokens[0]["id_token"]),
        renew,
    )
    assert page.status_code == 200, page.text
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant", answer.text
    assert [state for _, state, _ in idp.deliveries(sid)] == ["delivered", "delivered"]
    # The token the refresh held was not revoked, but its session has ended: still refused.
    again = renew()
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
