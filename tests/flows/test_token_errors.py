"""Bad input at the token endpoint (RFC 6749 §4.1.3, §5.2 and §10.5, RFC 7636 §4.6).

Every refused request answers a JSON error with the exact `error` value, no tokens, and
Cache-Control: no-store; a replayed code revokes everything the code issued.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select, update

from idp.models import Account, RefreshToken, SessionClient, SsoSession, utcnow
from shared.db import get_db
from shared.security import sha256_hex
from tests.support import (
    Browser,
    PersonLogin,
    SchoolClient,
    authorize_url,
    obtain_code,
    redeem,
    refresh,
    token_request,
    userinfo,
)

TOKEN_FIELDS = {"access_token", "id_token", "refresh_token", "token_type", "expires_in"}


@dataclass
class Setup:
    """A school, a person with an account there, and a browser signed in as that person."""

    school: SchoolClient
    person: PersonLogin
    browser: Browser

    def code(self, issuer: str, **extra: str) -> tuple[str, str]:
        """A fresh code and its verifier."""
        return obtain_code(self.browser, issuer, self.school, self.person, **extra)


@pytest.fixture
def setup(
    make_school: Callable[..., SchoolClient],
    make_person: Callable[..., PersonLogin],
    browser: Browser,
) -> Setup:
    """A confidential school client and a signed-in person."""
    school = make_school()
    return Setup(school, make_person(school), browser)


def assert_token_error(resp: requests.Response, error: str, status: int = 400) -> None:
    """An RFC 6749 §5.2 error response: status, error code, no tokens, not cacheable."""
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert body["error"] == error, body
    assert not TOKEN_FIELDS & set(body)
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Pragma"] == "no-cache"


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# --- PKCE verifier ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["missing", "empty"])
def test_missing_verifier_is_invalid_request(idp: str, setup: Setup, how: str) -> None:
    """A parameter sent without a value is treated as omitted (RFC 6749 §3.1)."""
    code, _ = setup.code(idp)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": setup.school.redirect_uri,
    }
    if how == "empty":
        data["code_verifier"] = ""
    assert_token_error(token_request(idp, setup.school, data), "invalid_request")


def _matching(verifier: str) -> tuple[str, str]:
    """Send this verifier, whose own S256 challenge was registered."""
    return verifier, _s256(verifier)


VERIFIERS: dict[str, Callable[[str], tuple[str, str]]] = {
    "wrong": lambda right: (secrets.token_urlsafe(48), _s256(right)),
    "the challenge itself": lambda right: (_s256(right), _s256(right)),
    "short (42 chars)": lambda right: _matching(right[:42]),
    "long (129 chars)": lambda right: _matching((right * 3)[:129]),
    "illegal character": lambda right: _matching(right[:42] + "+"),
    "non-ascii": lambda right: _matching(right[:42] + "ä"),
}


@pytest.mark.parametrize("kind", sorted(VERIFIERS))
def test_bad_verifier_is_invalid_grant(idp: str, setup: Setup, kind: str) -> None:
    """A verifier must match the challenge and be 43-128 unreserved characters (RFC 7636 §4.1),
    even when the registered challenge was computed from the malformed verifier itself."""
    right = secrets.token_urlsafe(48)
    assert len(right) == 64
    verifier, challenge = VERIFIERS[kind](right)
    params = setup.browser.login(
        authorize_url(idp, setup.school, challenge), setup.person, setup.school
    )
    assert_token_error(redeem(idp, setup.school, params["code"], verifier), "invalid_grant")


def test_code_is_burnt_by_a_wrong_verifier(idp: str, setup: Setup) -> None:
    """One guess per code: after a wrong verifier even the right one gets nothing."""
    code, verifier = setup.code(idp)
    assert_token_error(redeem(idp, setup.school, code, secrets.token_urlsafe(48)), "invalid_grant")
    assert_token_error(redeem(idp, setup.school, code, verifier), "invalid_grant")


def test_verifier_without_challenge_is_refused(idp: str, setup: Setup) -> None:
    """A code issued without a challenge does not exist (authorize refuses such a request, see
    test_authorize_errors), so a made-up code with a well-formed verifier is invalid_grant."""
    verifier = secrets.token_urlsafe(48)
    resp = redeem(idp, setup.school, secrets.token_urlsafe(32), verifier)
    assert_token_error(resp, "invalid_grant")


# --- the code itself ----------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["missing", "empty", "unknown", "oversized", "wrong form"])
def test_bad_code(idp: str, setup: Setup, code: str) -> None:
    data: dict[str, Any] = {
        "grant_type": "authorization_code",
        "redirect_uri": setup.school.redirect_uri,
        "code_verifier": secrets.token_urlsafe(48),
    }
    if code != "missing":
        data["code"] = {
            "empty": "",
            "unknown": secrets.token_urlsafe(32),
            "oversized": "c" * 5000,
            "wrong form": "used|x|{}",
        }[code]
    expected = "invalid_request" if code in ("missing", "empty") else "invalid_grant"
    assert_token_error(token_request(idp, setup.school, data), expected)


def _first_tokens(idp: str, setup: Setup) -> tuple[str, dict[str, Any]]:
    code, verifier = setup.code(idp, scope="openid profile offline_access")
    first = redeem(idp, setup.school, code, verifier)
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert tokens["refresh_token"]
    assert userinfo(idp, tokens["access_token"]).status_code == 200
    return code, {**tokens, "verifier": verifier}


def assert_dead(
    idp: str, school: SchoolClient, access_tokens: list[str], refresh_tokens: list[str]
) -> None:
    """Every listed token is refused: access tokens at userinfo, refresh tokens at /token."""
    for access in access_tokens:
        resp = userinfo(idp, access)
        assert resp.status_code == 401, resp.text
    for token in refresh_tokens:
        assert_token_error(refresh(idp, school, token), "invalid_grant")


def test_code_reused_immediately_revokes_the_first_tokens(idp: str, setup: Setup) -> None:
    code, first = _first_tokens(idp, setup)
    assert_token_error(redeem(idp, setup.school, code, first["verifier"]), "invalid_grant")
    assert_dead(idp, setup.school, [first["access_token"]], [first["refresh_token"]])


def test_code_reused_later_revokes_everything_the_grant_issued(idp: str, setup: Setup) -> None:
    """A replay after the tokens were used and refreshed still kills the whole grant."""
    code, first = _first_tokens(idp, setup)
    rotated = refresh(idp, setup.school, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert userinfo(idp, second["access_token"]).status_code == 200
    time.sleep(1.1)  # "later": a different second from the redemption
    assert_token_error(redeem(idp, setup.school, code, first["verifier"]), "invalid_grant")
    assert_dead(
        idp,
        setup.school,
        [first["access_token"], second["access_token"]],
        [second["refresh_token"]],
    )


def test_other_grants_of_the_session_survive_a_replay(idp: str, setup: Setup) -> None:
    """Revocation is per grant: the same person's other code is unaffected."""
    code, first = _first_tokens(idp, setup)
    other_code, other_verifier = setup.code(idp, scope="openid offline_access")
    other = redeem(idp, setup.school, other_code, other_verifier)
    assert other.status_code == 200, other.text
    assert_token_error(redeem(idp, setup.school, code, first["verifier"]), "invalid_grant")
    assert userinfo(idp, other.json()["access_token"]).status_code == 200
    assert refresh(idp, setup.school, other.json()["refresh_token"]).status_code == 200


def _sid(idp_app: Flask, browser: Browser) -> str:
    """The id of the browser's SSO session."""
    cookie = browser.http.cookies.get(idp_app.config["SSO_COOKIE_NAME"])
    assert cookie
    with idp_app.app_context():
        sid = get_db().scalar(
            select(SsoSession.id).where(SsoSession.cookie_hash == sha256_hex(cookie))
        )
    assert sid
    return str(sid)


def _stored_for(idp_app: Flask, sid: str) -> tuple[int, int]:
    """How many schools the session records as holding tokens, and its refresh tokens."""
    with idp_app.app_context():
        db = get_db()
        schools = db.scalar(
            select(func.count()).select_from(SessionClient).where(SessionClient.session_id == sid)
        )
        tokens = db.scalar(
            select(func.count()).select_from(RefreshToken).where(RefreshToken.session_id == sid)
        )
        return schools or 0, tokens or 0


@pytest.mark.parametrize("change", ["account disabled", "session ended"])
def test_a_refused_exchange_stores_nothing(
    idp: str, idp_app: Flask, setup: Setup, change: str
) -> None:
    """A code whose account or session changed before its exchange gets no tokens, and the
    session records neither the school (a logout would tell it) nor a refresh token."""
    code, verifier = setup.code(idp, scope="openid offline_access")
    sid = _sid(idp_app, setup.browser)
    with idp_app.app_context():
        db = get_db()
        if change == "account disabled":
            db.execute(
                update(Account).where(Account.sub == setup.person.sub).values(status="disabled")
            )
        else:
            db.execute(update(SsoSession).where(SsoSession.id == sid).values(ended_at=utcnow()))
        db.commit()
    assert_token_error(redeem(idp, setup.school, code, verifier), "invalid_grant")
    assert _stored_for(idp_app, sid) == (0, 0)


def test_an_exchange_records_its_school_and_stores_its_refresh_token(
    idp: str, idp_app: Flask, setup: Setup
) -> None:
    """What the refused exchanges above must not store, a successful one does."""
    code, verifier = setup.code(idp, scope="openid offline_access")
    assert redeem(idp, setup.school, code, verifier).status_code == 200
    assert _stored_for(idp_app, _sid(idp_app, setup.browser)) == (1, 1)


def _race(
    idp: str, school: SchoolClient, code: str, verifier: str, n: int
) -> list[requests.Response]:
    start = threading.Barrier(n)

    def attempt(_: int) -> requests.Response:
        start.wait(timeout=30)
        return redeem(idp, school, code, verifier)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(attempt, range(n)))


def test_fifty_parallel_redemptions_exactly_one_succeeds(idp: str, setup: Setup) -> None:
    code, verifier = setup.code(idp, scope="openid offline_access")
    responses = _race(idp, setup.school, code, verifier, 50)
    ok = [r for r in responses if r.status_code == 200]
    assert len(ok) == 1, [r.status_code for r in responses]
    for resp in responses:
        if resp.status_code != 200:
            assert_token_error(resp, "invalid_grant")
    # The 49 replays revoke what the one success issued.
    winner = ok[0].json()
    assert_dead(idp, setup.school, [winner["access_token"]], [winner["refresh_token"]])


def test_racing_redemptions_leave_no_live_tokens(idp: str, setup: Setup) -> None:
    """A stolen code raced against the client: one of the two wins, and what it got dies with
    the other's replay however the two interleave (repeated to meet different interleavings)."""
    for _ in range(12):
        code, verifier = setup.code(idp, scope="openid offline_access")
        responses = _race(idp, setup.school, code, verifier, 2)
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 400], [r.text for r in responses]
        winner = next(r for r in responses if r.status_code == 200).json()
        loser = next(r for r in responses if r.status_code == 400)
        assert_token_error(loser, "invalid_grant")
        assert_dead(idp, setup.school, [winner["access_token"]], [winner["refresh_token"]])


# --- binding to client and redirect_uri ---------------------------------------------------------


@pytest.mark.parametrize("public", [False, True], ids=["confidential", "public"])
def test_another_clients_code_is_invalid_grant(
    idp: str, setup: Setup, make_school: Callable[..., SchoolClient], public: bool
) -> None:
    code, verifier = setup.code(idp)
    thief = make_school(public=public)
    resp = token_request(
        idp,
        thief,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": setup.school.redirect_uri,
            "code_verifier": verifier,
        },
    )
    assert_token_error(resp, "invalid_grant")
    resp = redeem(idp, thief, code, verifier)  # with its own redirect_uri
    assert_token_error(resp, "invalid_grant")
    # The attempt neither spent nor revoked the rightful client's code.
    assert redeem(idp, setup.school, code, verifier).status_code == 200


REDIRECT_CHANGES: dict[str, Callable[[str], str]] = {
    "trailing slash": lambda uri: uri + "/",
    "extra query": lambda uri: uri + "?x=1",
    "upper case": lambda uri: uri.upper(),
    "fragment": lambda uri: uri + "#f",
    "other host": lambda uri: uri.replace("127.0.0.1:9", "evil.example"),
}


@pytest.mark.parametrize("change", sorted(REDIRECT_CHANGES))
def test_redirect_uri_differing_from_authorize_is_invalid_grant(
    idp: str, setup: Setup, change: str
) -> None:
    code, verifier = setup.code(idp)
    bad = REDIRECT_CHANGES[change](setup.school.redirect_uri)
    assert_token_error(redeem(idp, setup.school, code, verifier, redirect_uri=bad), "invalid_grant")


def test_redirect_uri_of_a_second_registered_client_is_invalid_grant(
    idp: str,
    make_school: Callable[..., SchoolClient],
    make_person: Callable[..., PersonLogin],
    browser: Browser,
) -> None:
    """Even a URI registered elsewhere is refused when it is not the one the code was for."""
    school = make_school()
    other = make_school()
    person = make_person(school)
    code, verifier = obtain_code(browser, idp, school, person)
    assert_token_error(
        redeem(idp, school, code, verifier, redirect_uri=other.redirect_uri), "invalid_grant"
    )


@pytest.mark.parametrize("how", ["missing", "empty"])
def test_missing_redirect_uri_is_invalid_request(idp: str, setup: Setup, how: str) -> None:
    """No default redirect_uri: it is always sent and compared."""
    code, verifier = setup.code(idp)
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
    if how == "empty":
        data["redirect_uri"] = ""
    assert_token_error(token_request(idp, setup.school, data), "invalid_request")


# --- duplicated parameters, client authentication, grant types ---------------------------------


@pytest.mark.parametrize(
    "name", ["grant_type", "code", "redirect_uri", "code_verifier", "client_id"]
)
def test_duplicated_parameter_is_invalid_request(idp: str, setup: Setup, name: str) -> None:
    code, verifier = setup.code(idp)
    school = setup.school
    fields = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", school.redirect_uri),
        ("code_verifier", verifier),
        ("client_id", school.client_id),
        ("client_secret", school.client_secret or ""),
    ]
    fields += [(k, v) for k, v in fields if k == name]  # the same value a second time
    resp = requests.post(f"{idp}/token", data=fields, timeout=10)
    assert_token_error(resp, "invalid_request")
    # Refused before the code was looked at: it still works once.
    assert redeem(idp, school, code, verifier).status_code == 200


def test_duplicated_refresh_token_is_invalid_request(idp: str, setup: Setup) -> None:
    _, first = _first_tokens(idp, setup)
    fields = [
        ("grant_type", "refresh_token"),
        ("refresh_token", first["refresh_token"]),
        ("refresh_token", first["refresh_token"]),
    ]
    resp = requests.post(
        f"{idp}/token",
        data=fields,
        timeout=10,
        auth=(setup.school.client_id, setup.school.client_secret or ""),
    )
    assert_token_error(resp, "invalid_request")


@pytest.mark.parametrize(
    "case", ["unknown client", "wrong secret", "no secret", "secret in body and header"]
)
def test_client_authentication_failures(idp: str, setup: Setup, case: str) -> None:
    code, verifier = setup.code(idp)
    school = setup.school
    data: dict[str, str] = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": school.redirect_uri,
        "code_verifier": verifier,
    }
    auth: tuple[str, str] | None = None
    if case == "unknown client":
        auth = ("c-doesnotexist", "x" * 43)
    elif case == "wrong secret":
        auth = (school.client_id, "x" * 43)
    elif case == "no secret":
        data["client_id"] = school.client_id
    else:
        auth = (school.client_id, "x" * 43)
        data.update(client_id=school.client_id, client_secret="y" * 43)
    resp = requests.post(f"{idp}/token", data=data, auth=auth, timeout=10)
    # 401 is a MUST after an Authorization header and a MAY otherwise (RFC 6749 §5.2); a 401
    # always names the scheme to use (RFC 9110 §15.5.2).
    assert_token_error(resp, "invalid_client", 401)
    assert resp.headers["WWW-Authenticate"].lower().startswith("basic")
    # A failed client authentication does not spend the code.
    assert redeem(idp, school, code, verifier).status_code == 200


@pytest.mark.parametrize(
    "grant_type", ["password", "implicit", "urn:ietf:params:oauth:grant-type:device_code", ""]
)
def test_unsupported_grant_type(idp: str, setup: Setup, grant_type: str) -> None:
    resp = token_request(
        idp,
        setup.school,
        {
            "grant_type": grant_type,
            "username": setup.person.email,
            "password": setup.person.password,
        },
    )
    assert_token_error(resp, "unsupported_grant_type")


# --- headers and oversized requests -------------------------------------------------------------


def test_successful_token_responses_are_not_cacheable(idp: str, setup: Setup) -> None:
    _, first = _first_tokens(idp, setup)
    rotated = refresh(idp, setup.school, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["Cache-Control"] == "no-store"
    assert rotated.headers["Pragma"] == "no-cache"
    code, verifier = setup.code(idp)
    resp = redeem(idp, setup.school, code, verifier)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Pragma"] == "no-cache"


def test_megabyte_body_is_refused_fast(idp: str, setup: Setup) -> None:
    code, verifier = setup.code(idp)
    started = time.monotonic()
    resp = requests.post(
        f"{idp}/token",
        timeout=5,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": setup.school.redirect_uri,
            "padding": "p" * 1024 * 1024,
        },
        auth=(setup.school.client_id, setup.school.client_secret or ""),
    )
    assert resp.status_code == 413, resp.text
    assert "access_token" not in resp.text
    assert time.monotonic() - started < 3
    # Refused before the code was looked at: it still works once.
    assert redeem(idp, setup.school, code, verifier).status_code == 200
