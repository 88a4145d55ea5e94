"""The password login page and the SSO session it starts (cookie, Redis, SQL, re-login)."""

from __future__ import annotations

import json
import re

import pytest

from tests.support import (
    CSRF_RE,
    IX_RE,
    authorize_url,
    pkce_pair,
    token_request,
    unverified_claims,
)

WRONG = "E-posti aadress või parool on vale."


def _login_page(browser, idp, school):
    _, challenge = pkce_pair()
    page = browser.follow(
        authorize_url(idp, school, challenge, prompt="login"), school.redirect_uri
    )
    assert page.status_code == 200 and 'name="password"' in page.text
    return page


def _post(browser, idp, page, email, password, csrf=None):
    ix = IX_RE.search(page.text)
    assert ix, "login form expected"
    if csrf is None:
        found = CSRF_RE.search(page.text)
        assert found, "login form expected"
        csrf = found.group(1)
    return browser.http.post(
        f"{idp}/login",
        data={"csrf_token": csrf, "ix": ix.group(1), "email": email, "password": password},
        allow_redirects=False,
        timeout=10,
    )


def test_login_sets_a_session_cookie_with_safe_flags(
    idp, idp_app, make_school, make_person, browser
):
    school = make_school()
    person = make_person(school)
    resp = _post(browser, idp, _login_page(browser, idp, school), person.email, person.password)
    assert resp.status_code == 303
    raw = resp.raw.headers.getlist("Set-Cookie")
    cookie = next(c for c in raw if c.startswith(idp_app.config["SSO_COOKIE_NAME"] + "="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    secret = cookie.split(";")[0].split("=", 1)[1]
    assert len(secret) >= 43  # 256 bits, base64url


@pytest.mark.parametrize("which", ["unknown-email", "wrong-password"])
def test_wrong_credentials_look_the_same(idp, make_school, make_person, browser, which):
    school = make_school()
    person = make_person(school)
    email = "nobody-" + person.email if which == "unknown-email" else person.email
    resp = _post(browser, idp, _login_page(browser, idp, school), email, "not-the-password-1")
    assert resp.status_code == 200
    assert WRONG in resp.text
    assert "Set-Cookie" not in resp.headers or "stuudium_idp_sso" not in resp.headers["Set-Cookie"]


def test_login_without_csrf_token_is_refused(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    resp = _post(
        browser,
        idp,
        _login_page(browser, idp, school),
        person.email,
        person.password,
        csrf="forged",
    )
    assert resp.status_code == 400
    assert "Location" not in resp.headers


def test_account_locks_after_repeated_failures_and_says_nothing_new(
    idp, idp_app, make_school, make_person, browser
):
    school = make_school()
    person = make_person(school)
    for _ in range(idp_app.config["LOGIN_MAX_FAILURES"]):
        resp = _post(browser, idp, _login_page(browser, idp, school), person.email, "wrong-pass-1")
        assert WRONG in resp.text
    resp = _post(browser, idp, _login_page(browser, idp, school), person.email, person.password)
    assert resp.status_code == 200 and WRONG in resp.text  # locked looks like wrong


def test_successful_login_refunds_its_failure_count(
    idp, idp_app, make_school, make_person, browser
):
    school = make_school()
    person = make_person(school)
    for _ in range(3):
        _post(browser, idp, _login_page(browser, idp, school), person.email, person.password)
    r = idp_app.extensions["redis"]
    key = f"idp:fail:acct:{_school_id(idp_app, school)}:{person.email}"
    assert int(r.get(key) or 0) == 0


def _school_id(idp_app, school):
    from idp.tenants.schools import school_by_slug
    from shared.db import get_db

    with idp_app.app_context():
        return school_by_slug(get_db(), school.slug).id


def test_session_slides_in_redis_and_is_capped_in_sql(
    idp, idp_app, make_school, make_person, browser
):
    from idp.models import SsoSession
    from shared.db import get_db

    school = make_school()
    person = make_person(school)
    verifier, challenge = pkce_pair()
    params = browser.login(authorize_url(idp, school, challenge), person, school)
    tokens = token_request(
        idp,
        school,
        {
            "grant_type": "authorization_code",
            "code": params["code"],
            "code_verifier": verifier,
            "redirect_uri": school.redirect_uri,
        },
    ).json()
    sid = unverified_claims(tokens["id_token"])["sid"]
    r = idp_app.extensions["redis"]
    ttl = r.ttl(f"idp:sid:{sid}")
    assert 0 < ttl <= idp_app.config["SESSION_IDLE_SECONDS"]
    with idp_app.app_context():
        row = get_db().get(SsoSession, sid)
        assert row is not None, f"no SQL row for the session {sid}"
        lifetime = (row.expires_at - row.created_at).total_seconds()
    assert lifetime == pytest.approx(idp_app.config["SESSION_MAX_SECONDS"], abs=2)


def test_logging_in_as_another_person_ends_the_first_session(
    idp, make_school, make_person, browser
):
    school = make_school()
    first, second = make_person(school), make_person(school, given_name="Jaan")
    verifier, challenge = pkce_pair()
    params = browser.login(
        authorize_url(idp, school, challenge, scope="openid offline_access"), first, school
    )
    tokens = token_request(
        idp,
        school,
        {
            "grant_type": "authorization_code",
            "code": params["code"],
            "code_verifier": verifier,
            "redirect_uri": school.redirect_uri,
        },
    ).json()
    _, challenge2 = pkce_pair()
    page = browser.follow(
        authorize_url(idp, school, challenge2, prompt="login"), school.redirect_uri
    )
    browser.submit_login(page, second.email, second.password, school.redirect_uri)
    refused = token_request(
        idp, school, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_relogin_of_the_same_person_renews_the_cookie_but_keeps_the_session(
    idp, make_school, make_person, browser, idp_app
):
    school = make_school()
    person = make_person(school)
    verifier, challenge = pkce_pair()
    params = browser.login(
        authorize_url(idp, school, challenge, scope="openid offline_access"), person, school
    )
    tokens = token_request(
        idp,
        school,
        {
            "grant_type": "authorization_code",
            "code": params["code"],
            "code_verifier": verifier,
            "redirect_uri": school.redirect_uri,
        },
    ).json()
    name = idp_app.config["SSO_COOKIE_NAME"]
    before = browser.http.cookies.get(name)
    _, challenge2 = pkce_pair()
    params2 = browser.login(authorize_url(idp, school, challenge2, prompt="login"), person, school)
    assert "code" in params2
    assert browser.http.cookies.get(name) != before
    refreshed = token_request(
        idp, school, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text


def test_login_page_is_branded_for_the_school(idp, make_school, browser):
    school = make_school()
    page = _login_page(browser, idp, school)
    assert re.search(re.escape(school.name), page.text)


def test_the_authorization_response_after_a_login_is_answered_again_briefly_and_only_there(
    browser, idp, idp_app, make_school, make_person
):
    """A proxy passes a resume whose first try died with its process on to another process:
    the same browser gets an answer again for a short while; another browser never does."""
    from idp.store import interactions
    from tests.support import Browser, callback_params

    school = make_school()
    person = make_person(school)
    done = _post(browser, idp, _login_page(browser, idp, school), person.email, person.password)
    assert done.status_code == 303
    resume = f"{idp}{done.headers['Location']}"
    first = callback_params(browser.http.get(resume, allow_redirects=False, timeout=10))
    again = callback_params(browser.http.get(resume, allow_redirects=False, timeout=10))
    assert first["code"] != again["code"] and first["state"] == again["state"]
    stranger = Browser(idp).http.get(resume, allow_redirects=False, timeout=10)
    assert stranger.status_code == 400 and "Sisselogimine aegus" in stranger.text
    # Once the window has passed, the same browser is refused too.
    ix = resume.split("ix=", 1)[1]
    with idp_app.app_context():
        data = interactions.load(ix)
        assert data is not None
        data["resumed_at"] -= interactions.RESUME_REPLAY_SECONDS + 1
        idp_app.extensions["redis"].set(interactions.INTERACTION_KEY + ix, json.dumps(data), ex=60)
    late = browser.http.get(resume, allow_redirects=False, timeout=10)
    assert late.status_code == 400 and "Sisselogimine aegus" in late.text
