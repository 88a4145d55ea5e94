"""The pages a person meets when a jump between schools cannot sign them in: no account at
that school (the IdP's page), a silent login that failed, a jump from an untrusted issuer; and
what a jump may carry (a landing path on the school's own origin, no state in a cookie)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests

from tests.flows.hostile_idp import FAMILY_NAME, GIVEN_NAME, HostileSchool, serve_hostile_school
from tests.support import Browser, PersonLogin, Tenant

LOGIN_LINK = '<a class="button" href="/auth/login">Logi sisse</a>'


@pytest.fixture(scope="module")
def hostile(school_app) -> Iterator[HostileSchool]:
    """A school whose IdP misbehaves as each test tells it to."""
    yield from serve_hostile_school(school_app)


def _trail(http: requests.Session, url: str, max_hops: int = 12) -> list[requests.Response]:
    """Follow redirects across hosts like a browser, keeping every response."""
    trail = [http.get(url, allow_redirects=False, timeout=10)]
    while trail[-1].status_code in (302, 303) and len(trail) < max_hops:
        trail.append(
            http.get(
                urljoin(trail[-1].url, trail[-1].headers["Location"]),
                allow_redirects=False,
                timeout=10,
            )
        )
    return trail


def _jump_url(school_url: str, issuer: str, target: str) -> str:
    return f"{school_url}/auth/login?" + urlencode({"iss": issuer, "target_link_uri": target})


def _sign_in(browser: Browser, school: Tenant, person: PersonLogin) -> None:
    page = browser.follow(f"{school.url}/auth/login", stop_prefix="\x00")
    final = browser.submit_login(page, person.email, person.password, stop_prefix="\x00")
    assert final.status_code == 200 and final.url == school.url + "/", final.text


def _school_cookie(http: requests.Session, slug: str) -> str | None:
    value = http.cookies.get(f"stuudium_{slug}", domain="127.0.0.1")
    return str(value) if value else None


def test_a_jump_to_a_school_without_an_account_shows_the_no_account_page(
    idp, browser, make_tenant, make_person
):
    kool = make_tenant("Laagri Kool")
    lasteaed = make_tenant("Laagri Lasteaed")
    person = make_person(kool.client, given_name="Tiina", family_name="Õunapuu")
    _sign_in(browser, kool, person)

    trail = _trail(browser.http, _jump_url(lasteaed.url, idp, lasteaed.url + "/"))
    authorizations = [
        parse_qs(urlsplit(r.url).query) for r in trail if r.url.startswith(f"{idp}/authorize?")
    ]
    # First silently; the IdP answers login_required; then the school asks interactively.
    assert [a.get("prompt") for a in authorizations] == [["none"], None]
    callback = next(r for r in trail if r.url.startswith(lasteaed.url + "/auth/callback?"))
    assert parse_qs(urlsplit(callback.url).query)["error"] == ["login_required"]

    page = trail[-1]
    assert page.status_code == 200
    assert page.url.startswith(f"{idp}/no-account?")
    text = unescape(page.text)
    assert "<h1>Selles koolis sul kontot ei ole</h1>" in text
    assert (
        "Oled Stuudium ID-sse sisse logitud, kuid sinu kasutajaga ei ole seotud ühtegi "
        "kontot koolis Laagri Lasteaed."
    ) in text
    # The ways forward: another e-mail address, or an application the school's admin reviews.
    assert "Kui sul on selles koolis konto teise e-posti aadressiga, logi sisse sellega." in text
    assert "esita andmed ja taotle kontot" in text
    assert f'href="/s/{lasteaed.client.slug}/new">Loo uus konto</a>' in text
    assert "Logi sisse teise kasutajana" in text
    assert _school_cookie(browser.http, lasteaed.client.slug) is None

    # "Log in as another user" opens the login form of that school.
    other_login = re.search(r'href="([^"]+)">Logi sisse teise kasutajana<', page.text)
    assert other_login
    form = browser.http.get(urljoin(page.url, unescape(other_login.group(1))), timeout=10)
    assert form.status_code == 200 and 'name="password"' in form.text
    assert "Laagri Lasteaed" in form.text

    # The person is still signed in at their own school.
    assert "Tiina Õunapuu" in browser.http.get(kool.url + "/", timeout=10).text


def test_a_failed_silent_login_shows_its_page_with_a_way_to_log_in(hostile):
    hostile.idp.scenario = "silent_server_error"
    http = requests.Session()
    trail = _trail(http, _jump_url(hostile.url, hostile.idp.url, hostile.url + "/"))
    page = trail[-1]
    assert page.url.startswith(hostile.url + "/auth/callback?")
    assert hostile.idp.authorize_requests[-1]["prompt"] == "none"
    assert page.status_code == 400
    assert "<h1>Automaatne sisselogimine ei õnnestunud</h1>" in page.text
    assert LOGIN_LINK in page.text
    assert "Set-Cookie" not in page.headers
    home = http.get(hostile.url + "/", timeout=10)
    assert 'id="login"' in home.text and GIVEN_NAME not in home.text

    # The way forward works: "Logi sisse" starts an interactive login, which signs in.
    requests_before = len(hostile.idp.authorize_requests)
    landed = _trail(http, hostile.url + "/auth/login")[-1]
    assert "prompt" not in hostile.idp.authorize_requests[requests_before]
    assert landed.status_code == 200
    assert f"{GIVEN_NAME} {FAMILY_NAME}" in landed.text


def test_a_jump_from_an_issuer_the_school_does_not_trust_is_refused(idp, make_tenant):
    school = make_tenant()
    for issuer in ("https://evil.example", idp + ".evil.example", "http://127.0.0.1:1", ""):
        resp = requests.get(
            _jump_url(school.url, issuer, school.url + "/"), allow_redirects=False, timeout=10
        )
        assert resp.status_code == 400, issuer
        assert "<h1>Tundmatu sisselogimise teenus</h1>" in resp.text
        assert "Logi sisse kooli avalehelt" in resp.text
        assert '<a class="button" href="/">Avalehele</a>' in resp.text
        assert "Location" not in resp.headers and "Set-Cookie" not in resp.headers


def _landing(browser: Browser, school: Tenant, idp: str, target: str) -> str:
    """Jump to the school (silently signed in) with a target; return where the school sends."""
    prefix = school.url + "/auth/callback"
    to_callback = browser.follow(_jump_url(school.url, idp, target), stop_prefix=prefix)
    location = to_callback.headers.get("Location", "")
    assert location.startswith(prefix + "?"), to_callback.text
    done = browser.http.get(location, allow_redirects=False, timeout=10)
    assert done.status_code == 303, done.text
    return str(done.headers["Location"])


@pytest.mark.parametrize(
    "target",
    [
        "http://evil.example/steal",
        "https://evil.example/",
        "//evil.example/x",
        " //evil.example/x",
        "/\t/evil.example/x",
        "\\\\evil.example/x",
        "javascript:alert(1)",
        "http://127.0.0.1:1/",
        "https://{host}/profile",
        "http://{host}@evil.example/",
        "profile",
    ],
)
def test_a_jump_to_another_origin_lands_on_the_front_page(
    idp, browser, make_tenant, make_person, target
):
    school = make_tenant()
    person = make_person(school.client)
    _sign_in(browser, school, person)
    host = urlsplit(school.url).netloc
    assert _landing(browser, school, idp, target.format(host=host)) == "/"


def _as_a_browser_resolves(base: str, location: str) -> str:
    """WHATWG URL parsing: tabs and newlines vanish, a backslash is a slash (http/https)."""
    cleaned = location.strip(" \x00").replace("\t", "").replace("\n", "").replace("\r", "")
    return urljoin(base + "/", cleaned.replace("\\", "/"))


@pytest.mark.parametrize(
    "target",
    [
        "/\\evil.example/x",
        "/\\/evil.example/x",
        "///evil.example/x",
        "/%5C%5Cevil.example/x",
        "/%2F%2Fevil.example/x",
    ],
)
def test_a_jump_target_that_looks_like_a_path_stays_on_the_schools_origin(
    idp, browser, make_tenant, make_person, target
):
    school = make_tenant()
    person = make_person(school.client)
    _sign_in(browser, school, person)
    landing = _landing(browser, school, idp, target)
    assert (
        urlsplit(_as_a_browser_resolves(school.url, landing)).netloc == urlsplit(school.url).netloc
    ), landing


@pytest.mark.parametrize(
    "target,landing",
    [
        ("{url}/profile", "/profile"),
        ("/profile?tab=1", "/profile?tab=1"),
        ("{url}/", "/"),
        ("", "/"),
    ],
)
def test_a_jump_keeps_a_target_on_the_schools_own_origin(
    idp, browser, make_tenant, make_person, target, landing
):
    school = make_tenant()
    person = make_person(school.client)
    _sign_in(browser, school, person)
    assert _landing(browser, school, idp, target.format(url=school.url)) == landing


def test_oauth_state_is_kept_on_the_server_not_in_a_cookie(idp, make_tenant):
    """Only a random browser-binding value is set, per school and for /auth/ only."""
    school = make_tenant()
    for url in (school.url + "/auth/login", _jump_url(school.url, idp, school.url + "/")):
        resp = requests.get(url, allow_redirects=False, timeout=10)
        assert resp.status_code == 303
        sent = parse_qs(urlsplit(resp.headers["Location"]).query)
        assert resp.headers["Location"].startswith(f"{idp}/authorize?")
        assert sent["code_challenge_method"] == ["S256"]
        state, nonce = sent["state"][0], sent["nonce"][0]
        cookies = resp.raw.headers.getlist("Set-Cookie")
        assert len(cookies) == 1 and cookies[0].startswith(f"stuudium_{school.client.slug}_auth=")
        assert "HttpOnly" in cookies[0] and "Path=/auth/" in cookies[0]
        for name, value in resp.headers.items():
            if name != "Location":
                assert state not in value and nonce not in value


def test_a_callback_started_in_another_browser_does_not_sign_this_one_in(
    idp, make_tenant, make_person
):
    """Login CSRF (RFC 9700 §4.7): the attacker's own callback URL is useless to a victim."""
    from tests.support import Browser

    school = make_tenant()
    attacker = make_person(school.client, given_name="Kuri", family_name="Kasutaja")
    mallory = Browser(idp)
    page = mallory.follow(school.url + "/auth/login", stop_prefix="\x00")
    to_callback = mallory.submit_login(
        page, attacker.email, attacker.password, stop_prefix=school.url + "/auth/callback"
    )
    callback_url = to_callback.headers["Location"]
    assert callback_url.startswith(school.url + "/auth/callback")
    victim = Browser(idp)
    victim.http.get(school.url + "/auth/login", allow_redirects=False, timeout=10)  # own cookie
    resp = victim.http.get(callback_url, allow_redirects=False, timeout=10)
    assert resp.status_code == 400 and "Sisselogimine aegus" in resp.text
    assert "Kuri Kasutaja" not in victim.http.get(school.url + "/", timeout=10).text
