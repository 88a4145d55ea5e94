"""The school refuses every ID token it must not trust (OIDC Core §3.1.3.7), and a replayed
callback: a clear page that says what happened and how to log in again, and no session."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urljoin

import pytest
import requests

from tests.flows.hostile_idp import (
    FAMILY_NAME,
    GIVEN_NAME,
    ID_TOKEN_SCENARIOS,
    TOKEN_SCENARIOS,
    HostileSchool,
    serve_hostile_school,
)
from tests.support import Browser

H1_RE = re.compile(r"<h1>([^<]*)</h1>")
LOGIN_LINK = '<a class="button" href="/auth/login">Logi sisse</a>'


@pytest.fixture(scope="module")
def hostile(school_app) -> Iterator[HostileSchool]:
    """A school whose IdP misbehaves as each test tells it to."""
    yield from serve_hostile_school(school_app)


def _heading(resp: requests.Response) -> str:
    found = H1_RE.search(resp.text)
    assert found, resp.text
    return found.group(1)


def _assert_visitor(http: requests.Session, school_url: str, name: str) -> None:
    """The school's front page shows the visitor landing: nobody is signed in."""
    home = http.get(school_url + "/", timeout=10)
    assert home.status_code == 200
    assert 'id="login"' in home.text
    assert name not in home.text
    profile = http.get(school_url + "/profile", allow_redirects=False, timeout=10)
    assert profile.status_code == 303
    assert "/auth/login" in profile.headers["Location"]


def _sign_in(hostile: HostileSchool, scenario: str) -> tuple[Browser, requests.Response]:
    hostile.idp.scenario = scenario
    browser = Browser(hostile.idp.url)
    return browser, browser.follow(hostile.url + "/auth/login", stop_prefix="\x00")


def test_a_valid_id_token_from_the_provider_signs_in(hostile):
    """The control: the same provider with a correct ID token gives a session."""
    browser, landed = _sign_in(hostile, "valid")
    assert landed.status_code == 200
    assert landed.url == hostile.url + "/"
    assert f"{GIVEN_NAME} {FAMILY_NAME}" in landed.text
    assert browser.http.cookies.get(hostile.cookie_name, domain="127.0.0.1")
    sent = hostile.idp.authorize_requests[-1]
    assert sent["code_challenge_method"] == "S256"
    assert sent["nonce"] and sent["state"] and sent["nonce"] != sent["state"]


@pytest.mark.parametrize("scenario", ID_TOKEN_SCENARIOS + TOKEN_SCENARIOS)
def test_an_untrustworthy_id_token_is_refused_with_a_clear_page(hostile, scenario):
    """Every bad ID token, and a token response that fails or lacks a token."""
    browser, callback = _sign_in(hostile, scenario)
    assert callback.url.startswith(hostile.url + "/auth/callback?")
    assert callback.status_code == 400
    assert _heading(callback) == "Sisselogimine ei õnnestunud"
    assert "Alusta sisselogimist uuesti" in callback.text
    assert LOGIN_LINK in callback.text
    assert "Set-Cookie" not in callback.headers
    assert hostile.cookie_name not in browser.http.cookies.keys()
    assert f"{GIVEN_NAME} {FAMILY_NAME}" not in callback.text
    _assert_visitor(browser.http, hostile.url, f"{GIVEN_NAME} {FAMILY_NAME}")


def test_an_authorization_response_from_another_issuer_is_refused(hostile):
    """RFC 9207: the callback's iss names another provider (a mix-up) — no code is redeemed."""
    redeemed = len(hostile.idp.token_requests)
    browser, callback = _sign_in(hostile, "mixup_iss")
    assert callback.status_code == 400
    assert _heading(callback) == "Sisselogimine ei õnnestunud"
    assert LOGIN_LINK in callback.text
    assert "Set-Cookie" not in callback.headers
    assert len(hostile.idp.token_requests) == redeemed
    _assert_visitor(browser.http, hostile.url, f"{GIVEN_NAME} {FAMILY_NAME}")


def test_a_replayed_callback_is_refused_and_makes_no_session(browser, make_tenant, make_person):
    school = make_tenant("Laagri Kool")
    person = make_person(school.client, given_name="Tiina", family_name="Õunapuu")
    callback_prefix = school.url + "/auth/callback"
    page = browser.follow(school.url + "/auth/login", stop_prefix="\x00")
    to_school = browser.submit_login(
        page, person.email, person.password, stop_prefix=callback_prefix
    )
    callback_url = urljoin(to_school.url, to_school.headers["Location"])
    assert callback_url.startswith(callback_prefix)

    first = browser.http.get(callback_url, allow_redirects=False, timeout=10)
    assert first.status_code == 303
    assert school.client.slug in first.headers["Set-Cookie"]

    again = browser.http.get(callback_url, allow_redirects=False, timeout=10)
    assert again.status_code == 400
    assert _heading(again) == "Sisselogimine aegus"
    assert LOGIN_LINK in again.text
    assert "Set-Cookie" not in again.headers

    # Someone else who got hold of the URL gets no session either.
    other = requests.Session()
    stolen = other.get(callback_url, allow_redirects=False, timeout=10)
    assert stolen.status_code == 400
    assert _heading(stolen) == "Sisselogimine aegus"
    assert "Set-Cookie" not in stolen.headers
    _assert_visitor(other, school.url, "Tiina Õunapuu")

    # The person's own session from the first callback is still the only one, and works.
    home = browser.http.get(school.url + "/", timeout=10)
    assert "Tiina Õunapuu" in home.text


def test_a_callback_without_a_state_is_refused(browser, make_tenant):
    school = make_tenant()
    resp = browser.http.get(
        school.url + "/auth/callback?code=abc", allow_redirects=False, timeout=10
    )
    assert resp.status_code == 400
    assert _heading(resp) == "Sisselogimine aegus"
    assert LOGIN_LINK in resp.text
    assert "Set-Cookie" not in resp.headers
