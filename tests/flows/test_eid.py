"""ID-kaart, Mobiil-ID and Smart-ID through an upstream with TARA's profile (issue 7): the
stand-in of deploy/dev served over real HTTP, and hostile variants of it built with its tamper
hook; what the IdP refuses, whom it signs in, and the acr step-up."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from flask import Flask
from joserfc.jwk import RSAKey
from sqlalchemy import select
from stdnum.ee import ik

from deploy.dev.eid_standin import create_standin
from shared.config import ConfigError
from tests.flows.conftest import CLIENT_ID
from tests.support import (
    CSRF_RE,
    IX_RE,
    Browser,
    PersonLogin,
    SchoolClient,
    authorize_url,
    callback_params,
    free_port,
    obtain_code,
    pkce_pair,
    redeem,
    unverified_claims,
)

REQUEST_ID_RE = re.compile(r'name="request_id" value="([^"]+)"')
REFUSED = "eID-ga sisselogimine ei õnnestunud"
NO_ACCOUNT = "Selles koolis sul kontot ei ole"


def new_code() -> str:
    """A checksum-valid isikukood of a man born in 1980s, random enough to be unique."""
    first = (
        f"38{secrets.randbelow(10)}0{secrets.randbelow(9) + 1}1{secrets.randbelow(9)}"
        + f"{secrets.randbelow(1000):03d}"
    )
    return first + ik.calc_check_digit(first + "0")


def csrf_and_ix(page: requests.Response) -> tuple[str, str]:
    """The login page's CSRF token and interaction id."""
    csrf, ix = CSRF_RE.search(page.text), IX_RE.search(page.text)
    assert csrf and ix, page.text
    return csrf.group(1), ix.group(1)


def start_eid(browser: Browser, page: requests.Response, method: str) -> requests.Response:
    """Press an eID button on the IdP's login page; return the stand-in's page."""
    csrf, ix = csrf_and_ix(page)
    resp = browser.http.post(
        f"{browser.issuer}/eid/start",
        data={"csrf_token": csrf, "ix": ix, "method": method},
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 303, resp.text
    return browser.http.get(resp.headers["Location"], allow_redirects=False, timeout=10)


def pick(
    browser: Browser, standin_page: requests.Response, isikukood: str, stop_prefix: str
) -> requests.Response:
    """Choose a person on the stand-in's page and follow back through the IdP."""
    assert standin_page.status_code == 200, standin_page.text
    request_id = REQUEST_ID_RE.search(standin_page.text)
    assert request_id
    back = browser.http.post(
        urljoin(standin_page.url, "/oidc/authorize/confirm"),
        data={"request_id": request_id.group(1), "isikukood": isikukood},
        allow_redirects=False,
        timeout=10,
    )
    assert back.status_code == 303, back.text
    return browser.follow(back.headers["Location"], stop_prefix)


def eid_login(
    browser: Browser, client: SchoolClient, isikukood: str, method: str = "idcard", **extra: str
) -> tuple[requests.Response, str]:
    """An authorization request answered by an eID login; the last response and PKCE verifier."""
    verifier, challenge = pkce_pair()
    page = browser.follow(
        authorize_url(browser.issuer, client, challenge, **extra), client.redirect_uri
    )
    assert page.status_code == 200, page.text
    final = pick(browser, start_eid(browser, page, method), isikukood, client.redirect_uri)
    return final, verifier


def signed_in(
    browser: Browser, client: SchoolClient, isikukood: str, method: str = "idcard", **extra: str
) -> dict[str, Any]:
    """Log in with eID and return our token response."""
    final, verifier = eid_login(browser, client, isikukood, method, **extra)
    params = callback_params(final)
    assert "code" in params, params
    resp = redeem(browser.issuer, client, params["code"], verifier)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def signed_in_token(
    browser: Browser, client: SchoolClient, isikukood: str, method: str = "idcard", **extra: str
) -> dict[str, Any]:
    """Log in with eID and return our ID token's claims."""
    return unverified_claims(signed_in(browser, client, isikukood, method, **extra)["id_token"])


def person_row(idp_app: Flask, sub: str) -> Any:
    """The person behind an account, read fresh from the IdP's database."""
    from idp.models import Account, Person
    from shared.db import get_db

    with idp_app.app_context():
        db = get_db()
        return db.execute(
            select(Person.given_name, Person.family_name, Person.version, Person.isikukood_source)
            .join(Account)
            .where(Account.sub == sub)
        ).one()


def test_each_method_signs_in_with_upstream_amr_and_acr(
    upstream, make_school, make_person, browser
):
    school = make_school()
    code = new_code()
    person = make_person(school, isikukood=code)
    upstream.add(code, person.given_name, person.family_name)
    for method, amr in (("idcard", "idcard"), ("mid", "mID"), ("smartid", "smartid")):
        claims = signed_in_token(Browser(browser.issuer), school, code, method)
        assert claims["sub"] == person.sub
        assert claims["amr"] == [amr] and claims["acr"] == "high"


def test_the_method_is_asked_by_scope_with_state_nonce_and_pkce(upstream, make_school, browser):
    school = make_school()
    verifier, challenge = pkce_pair()
    page = browser.follow(authorize_url(browser.issuer, school, challenge), school.redirect_uri)
    csrf, ix = csrf_and_ix(page)
    for label in ("ID-kaart", "Mobiil-ID", "Smart-ID"):
        assert label in page.text
    resp = browser.http.post(
        f"{browser.issuer}/eid/start",
        data={"csrf_token": csrf, "ix": ix, "method": "mid"},
        allow_redirects=False,
        timeout=10,
    )
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert resp.headers["Location"].startswith(upstream.url + "/oidc/authorize?")
    assert query["scope"] == ["openid mid"] and query["client_id"] == [CLIENT_ID]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32


def test_an_unknown_isikukood_gets_the_no_account_page(upstream, make_school, browser, idp_app):
    school = make_school()
    final, _verifier = eid_login(browser, school, new_code())
    assert final.status_code == 200 and NO_ACCOUNT in final.text
    assert school.name in final.text
    # The ways forward: apply for an account at this school, or ask for access details.
    assert f'href="/s/{school.slug}/new"' in final.text
    assert f'href="/s/{school.slug}/access"' in final.text
    assert not browser.http.cookies.get(idp_app.config["SSO_COOKIE_NAME"])


def test_an_account_at_another_school_is_not_this_schools(
    upstream, make_school, make_person, browser
):
    here, there = make_school(), make_school()
    code = new_code()
    make_person(there, isikukood=code)
    upstream.add(code, "Mari", "Maasikas")
    final, _verifier = eid_login(browser, here, code)
    assert final.status_code == 200 and NO_ACCOUNT in final.text


def _expired(claims: dict[str, Any], header: dict[str, Any]) -> None:
    claims["iat"], claims["nbf"], claims["exp"] = (int(time.time()) - 120,) * 2 + (
        int(time.time()) - 80,
    )


HOSTILE: dict[str, Callable[[dict[str, Any], dict[str, Any]], Any]] = {
    "wrong_iss": lambda c, h: c.update(iss="https://tara.ria.ee"),
    "wrong_aud": lambda c, h: c.update(aud=["some-other-client"]),
    "bad_signature": lambda c, h: RSAKey.generate_key(2048, private=True),
    "wrong_nonce": lambda c, h: c.update(nonce=secrets.token_urlsafe(24)),
    "expired": _expired,
    "amr_of_another_method": lambda c, h: c.update(amr=["smartid"]),
    "acr_unknown": lambda c, h: c.update(acr="very-high"),
    "sub_not_an_isikukood": lambda c, h: c.update(sub="EE12345678901"),
}


@pytest.mark.parametrize("scenario", sorted(HOSTILE))
def test_a_hostile_upstream_token_is_refused_with_a_clear_page(
    scenario, upstream, tamper, make_school, make_person, browser, idp_app
):
    school = make_school()
    code = new_code()
    make_person(school, isikukood=code)
    upstream.add(code, "Mari", "Maasikas")
    tamper(HOSTILE[scenario])
    final, _verifier = eid_login(browser, school, code, "idcard")
    assert final.status_code == 400 and REFUSED in final.text, final.text
    assert "Tagasi sisselogimise lehele" in final.text
    assert not browser.http.cookies.get(idp_app.config["SSO_COOKIE_NAME"])


def test_a_token_just_past_its_40_seconds_is_within_the_clock_skew(
    upstream, tamper, make_school, make_person, browser
):
    school = make_school()
    code = new_code()
    person = make_person(school, isikukood=code)
    upstream.add(code, person.given_name, person.family_name)
    tamper(lambda c, h: c.update(exp=int(time.time()) - 3))
    assert signed_in_token(browser, school, code)["amr"] == ["idcard"]


def test_the_upstream_answer_is_bound_to_the_browser_and_used_once(
    upstream, make_school, make_person, browser
):
    school = make_school()
    code = new_code()
    make_person(school, isikukood=code)
    upstream.add(code, "Mari", "Maasikas")
    verifier, challenge = pkce_pair()
    page = browser.follow(authorize_url(browser.issuer, school, challenge), school.redirect_uri)
    standin = start_eid(browser, page, "idcard")
    request_id = REQUEST_ID_RE.search(standin.text)
    assert request_id
    back = browser.http.post(
        f"{upstream.url}/oidc/authorize/confirm",
        data={"request_id": request_id.group(1), "isikukood": code},
        allow_redirects=False,
        timeout=10,
    )
    callback = back.headers["Location"]
    # Another browser with the same callback URL (state and code): refused, nothing signed in.
    stranger = requests.get(callback, allow_redirects=False, timeout=10)
    assert stranger.status_code == 400 and "aegus" in stranger.text
    # The state was consumed by that attempt: the right browser cannot replay it either.
    again = browser.http.get(callback, allow_redirects=False, timeout=10)
    assert again.status_code == 400


def test_cancelling_at_the_upstream_says_so(upstream, make_school, browser):
    school = make_school()
    verifier, challenge = pkce_pair()
    page = browser.follow(authorize_url(browser.issuer, school, challenge), school.redirect_uri)
    standin = start_eid(browser, page, "smartid")
    request_id = REQUEST_ID_RE.search(standin.text)
    assert request_id and "ARENDUSKESKKOND — mitte toodangus kasutamiseks" in standin.text
    back = browser.http.post(
        f"{upstream.url}/oidc/authorize/confirm",
        data={"request_id": request_id.group(1), "cancel": "1"},
        allow_redirects=False,
        timeout=10,
    )
    final = browser.follow(back.headers["Location"], school.redirect_uri)
    assert final.status_code == 200 and "katkestati" in final.text


def test_names_that_differ_from_the_schools_records_sign_nobody_in(
    upstream, make_school, make_person, browser, idp_app
):
    # The school recorded this code for Jyri Magi; the eID holder is Jüri Mägi (õ is not o, ü
    # is not y): a typo'd code must not hand someone else's account to the eID holder.
    school = make_school()
    code = new_code()
    person = make_person(school, given_name="Jyri", family_name="Magi", isikukood=code)
    before = person_row(idp_app, person.sub)
    upstream.add(code, "Jüri", "Mägi")
    final, _verifier = eid_login(browser, school, code)
    assert final.status_code == 409 and "Kooli andmed ei klapi" in final.text, final.text
    assert "klassijuhataja või kooli administraator" in final.text
    assert browser.http.cookies.get("stuudium_idp_sso") is None
    assert person_row(idp_app, person.sub) == before  # nothing taken over either


def test_the_eid_birth_date_reaches_linked_schools(
    upstream, make_school, make_person, link_account, browser, idp_app
):
    from idp.models import Account, Delivery, Person
    from shared.db import get_db

    school, other = make_school(), make_school()
    code = new_code()
    person = make_person(school, given_name="Jüri", family_name="Mägi", isikukood=code)
    link_account(person, other, ["parent"])
    with idp_app.app_context():
        db = get_db()
        row = db.scalar(select(Person).join(Account).where(Account.sub == person.sub))
        assert row is not None
        row.birth_date = ik.get_birth_date(code).replace(year=1901)  # the school's typo
        db.commit()
    before = person_row(idp_app, person.sub)
    upstream.add(code, "JÜRI", "MÄGI")
    claims = signed_in_token(browser, school, code)
    assert claims["sub"] == person.sub
    after = person_row(idp_app, person.sub)
    assert after.version > before.version and after.isikukood_source == "eid"
    with idp_app.app_context():
        events = get_db().scalars(select(Delivery).where(Delivery.kind == "event")).all()
        mine = [e.payload for e in events if e.payload.get("version") == after.version]
    assert len(mine) == 2  # one per school where the person has an account
    assert {e["reason"] for e in mine} == {"eid"}
    assert all(e["changed"] == ["birthdate"] for e in mine)


def test_the_schools_spelling_stays_when_only_case_differs(
    upstream, make_school, make_person, browser, idp_app
):
    school = make_school()
    code = new_code()
    person = make_person(school, given_name="Anna-Liis", family_name="de  la Cruz", isikukood=code)
    before = person_row(idp_app, person.sub)
    upstream.add(code, "ANNA-LIIS", "DE LA CRUZ")
    signed_in_token(browser, school, code)
    after = person_row(idp_app, person.sub)
    assert (after.given_name, after.family_name) == ("Anna-Liis", "de  la Cruz")
    assert after.version == before.version


def _password_session(browser: Browser, school: SchoolClient, person: PersonLogin) -> None:
    code, verifier = obtain_code(browser, browser.issuer, school, person)
    assert redeem(browser.issuer, school, code, verifier).status_code == 200


def test_acr_values_step_up_a_password_session_to_eid(upstream, make_school, make_person, browser):
    school = make_school()
    code = new_code()
    person = make_person(school, isikukood=code)
    upstream.add(code, person.given_name, person.family_name)
    _password_session(browser, school, person)
    # Silent: the password session (low) does not meet substantial.
    verifier, challenge = pkce_pair()
    silent = browser.follow(
        authorize_url(browser.issuer, school, challenge, prompt="none", acr_values="substantial"),
        school.redirect_uri,
    )
    assert callback_params(silent)["error"] == "login_required"
    # Interactive: the login page offers eID only, and refuses a password.
    page = browser.follow(
        authorize_url(browser.issuer, school, challenge, acr_values="substantial"),
        school.redirect_uri,
    )
    assert page.status_code == 200 and 'name="password"' not in page.text
    assert "ID-kaart" in page.text
    csrf, ix = csrf_and_ix(page)
    posted = browser.http.post(
        f"{browser.issuer}/login",
        data={"csrf_token": csrf, "ix": ix, "email": person.email, "password": person.password},
        allow_redirects=False,
        timeout=10,
    )
    assert posted.status_code == 200 and 'name="password"' not in posted.text
    final = pick(browser, start_eid(browser, page, "idcard"), code, school.redirect_uri)
    params = callback_params(final)
    claims = unverified_claims(
        redeem(browser.issuer, school, params["code"], verifier).json()["id_token"]
    )
    assert claims["acr"] == "high" and claims["amr"] == ["idcard"]
    assert claims["sub"] == person.sub
    # Now the session is high: a silent request for substantial gets a code.
    verifier, challenge = pkce_pair()
    again = browser.follow(
        authorize_url(browser.issuer, school, challenge, prompt="none", acr_values="substantial"),
        school.redirect_uri,
    )
    assert "code" in callback_params(again)


def test_a_password_login_carries_low(make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    code, verifier = obtain_code(browser, browser.issuer, school, person, acr_values="low")
    claims = unverified_claims(redeem(browser.issuer, school, code, verifier).json()["id_token"])
    assert claims["acr"] == "low" and claims["amr"] == ["pwd"]


def test_a_schools_minimum_for_a_role_steps_teachers_up(
    upstream, make_school, make_person, browser, idp_app
):
    school = make_school()
    code = new_code()
    teacher = make_person(school, roles=("teacher",), isikukood=code)
    parent = make_person(school)
    exempt = make_person(school, roles=("teacher",))
    upstream.add(code, teacher.given_name, teacher.family_name)
    idp_app.config["MIN_ACR"] = {school.slug: {"teacher": "substantial", "exempt": [exempt.sub]}}
    try:
        # The parent and the exempt teacher get in with a password.
        for who in (parent, exempt):
            code_, verifier = obtain_code(Browser(browser.issuer), browser.issuer, school, who)
            assert redeem(browser.issuer, school, code_, verifier).status_code == 200
        # The teacher's right password leads to the eID-only page, not to a code.
        verifier, challenge = pkce_pair()
        page = browser.follow(authorize_url(browser.issuer, school, challenge), school.redirect_uri)
        stepped = browser.submit_login(page, teacher.email, teacher.password, school.redirect_uri)
        assert stepped.status_code == 200 and 'name="password"' not in stepped.text
        final = pick(browser, start_eid(browser, stepped, "mid"), code, school.redirect_uri)
        claims = unverified_claims(
            redeem(browser.issuer, school, callback_params(final)["code"], verifier).json()[
                "id_token"
            ]
        )
        assert claims["acr"] == "high" and claims["amr"] == ["mID"]
    finally:
        idp_app.config["MIN_ACR"] = {}


def test_the_standin_refuses_a_production_configuration(monkeypatch):
    monkeypatch.setenv("STUUDIUM_ENV", "production")
    with pytest.raises(ConfigError):
        create_standin("http://127.0.0.1:9", {}, [])
    env = dict(os.environ, STUUDIUM_ENV="production")
    proc = subprocess.run(
        [sys.executable, "-m", "deploy.dev.eid_standin", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "development only" in proc.stderr


def test_a_new_upstream_key_is_fetched_on_its_unknown_kid(
    upstream, make_school, make_person, browser
):
    from shared import oidc_rp

    school = make_school()
    code = new_code()
    person = make_person(school, isikukood=code)
    upstream.add(code, person.given_name, person.family_name)
    signed_in_token(Browser(browser.issuer), school, code)  # the IdP has the current keys
    upstream.state.key = RSAKey.generate_key(2048, private=True)
    upstream.state.kid = "standin-rotated-" + secrets.token_hex(4)
    # As if the last fetch were a minute ago: refetches are throttled, not refused.
    oidc_rp.provider(upstream.url, 5).keys_fetched -= 60
    assert signed_in_token(browser, school, code)["sub"] == person.sub


def _eid_proof(linker: Any, attempt: str, method: str, isikukood: str) -> requests.Response:
    """Prove the other account inside a link attempt with eID; return the page it ends on."""
    page = linker.browser.http.get(f"{linker.idp}/account", timeout=10)
    sent = linker.post("/eid/start", page, attempt=attempt, method=method)
    assert sent.status_code == 303, sent.text
    standin = linker.browser.http.get(sent.headers["Location"], allow_redirects=False, timeout=10)
    return pick(linker.browser, standin, isikukood, "\x00")


def test_the_other_account_of_a_link_can_be_proven_with_eid(
    upstream, idp, make_tenant, make_person, idp_app
):
    from idp.models import Account
    from shared.db import get_db
    from tests.flows.test_linking import Linker
    from tests.support import sign_in_at_school

    kool, huvikool, kolmas = make_tenant(), make_tenant(), make_tenant()
    code = new_code()
    mine = make_person(kool.client, "Jüri", "Mägi", isikukood=code)
    theirs = make_person(huvikool.client, "Jüri", "Mägi", isikukood=code)
    upstream.add(code, "Jüri", "Mägi")
    linker = Linker(idp, Browser(idp))
    sign_in_at_school(linker.browser, kool.url, mine)
    cookie = linker.browser.http.cookies.get("stuudium_idp_sso")

    # The link login page offers eID beside the password; eID proves the account whose person
    # has that isikukood at the chosen school, and gives no session of its own.
    attempt = linker.start(kool, huvikool)
    shown = _eid_proof(linker, attempt, "smartid", code)
    assert shown.status_code == 200 and "Kinnita kontode sidumine" in shown.text, shown.text
    assert linker.browser.http.cookies.get("stuudium_idp_sso") == cookie
    done = linker.confirm(attempt)
    assert "Kontod on seotud" in done.text, done.text
    with idp_app.app_context():
        db = get_db()
        people = {
            a.sub: a.person_id
            for a in db.scalars(select(Account).where(Account.sub.in_((mine.sub, theirs.sub))))
        }
    assert people[mine.sub] == people[theirs.sub]

    # An eID whose isikukood has no account at the chosen school proves nothing.
    stranger = new_code()
    upstream.add(stranger, "Jüri", "Mägi")
    other = linker.start(kool, kolmas)
    refused = _eid_proof(linker, other, "idcard", stranger)
    assert refused.status_code == 400 and "Midagi ei seotud" in refused.text
    assert linker.confirm(other).status_code == 400  # nothing was proven
    # An attempt of another session cannot be finished with eID either.
    elsewhere = Linker(idp, Browser(idp))
    sign_in_at_school(elsewhere.browser, kool.url, mine)
    page = elsewhere.browser.http.get(f"{idp}/account", timeout=10)
    assert (
        elsewhere.post(
            "/eid/start", page, attempt=linker.start(kool, kolmas), method="idcard"
        ).status_code
        == 400
    )
