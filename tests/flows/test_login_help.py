"""The login page after wrong answers: from the third one it offers the other ways in — a
sign-in link by e-mail and eID — and after any wrong answer it points out a likely typo in a
common e-mail domain. Neither depends on whether an account exists."""

from __future__ import annotations

import re

import requests

from tests.support import CSRF_RE, IX_RE, Browser, Tenant, authorize_url, pkce_pair

WRONG = "E-posti aadress või parool on vale."


def _login_page(idp: str, browser: Browser, school: Tenant) -> requests.Response:
    _, challenge = pkce_pair()
    page = browser.follow(authorize_url(idp, school.client, challenge), "\x00")
    assert page.status_code == 200 and 'name="password"' in page.text
    return page


def _wrong(browser: Browser, page: requests.Response, email: str) -> requests.Response:
    """Post the login form shown on page (with its hidden fields) with a wrong password."""
    csrf, ix = CSRF_RE.search(page.text), IX_RE.search(page.text)
    assert csrf and ix
    hidden = dict(
        re.findall(r'<input type="hidden" name="(school|failures)" value="([^"]*)">', page.text)
    )
    resp = browser.http.post(
        f"{browser.issuer}/login",
        data={
            "csrf_token": csrf.group(1),
            "ix": ix.group(1),
            "email": email,
            "password": "vale",
            **hidden,
        },
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 200 and WRONG in resp.text
    return resp


def test_after_three_failures_the_page_offers_a_link_and_eid(
    idp, upstream, make_tenant, make_person, inbox
):
    school = make_tenant("Laagri Kool")
    person = make_person(school.client)
    for email in (person.email, "nobody-" + person.email):  # an account or none: the same
        browser = Browser(idp)
        page = _login_page(idp, browser, school)
        assert 'id="other-ways"' not in page.text
        for attempt in (1, 2, 3):
            page = _wrong(browser, page, email)
            offered = 'id="other-ways"' in page.text
            assert offered == (attempt >= 3), attempt
        assert "Saada mulle sisselogimise link" in page.text
        assert f'action="/s/{school.client.slug}/access"' in page.text
        assert f'id="link-email" name="email" type="email" value="{email}"' in page.text
        other_ways = page.text.split('id="other-ways"')[1]
        for method in ("idcard", "mid", "smartid"):
            assert f'name="method" value="{method}"' in other_ways
        assert page.text.count('name="method" value="idcard"') == 1  # not twice on the page
    # The offered form sends the link (the access request's same answer either way).
    form = page.text.split('id="other-ways"')[1]
    csrf = CSRF_RE.search(form)
    assert csrf
    sent = browser.http.post(
        f"{idp}/s/{school.client.slug}/access",
        data={"csrf_token": csrf.group(1), "email": person.email},
        timeout=10,
    )
    assert sent.status_code == 200 and 'id="sent"' in sent.text
    assert len(inbox(person.email)) == 1


def test_a_likely_typo_in_a_common_domain_is_pointed_out(idp, make_tenant):
    school = make_tenant()
    browser = Browser(idp)
    page = _wrong(browser, _login_page(idp, browser, school), "mari@gmial.ee")
    assert '<p class="hint" id="typo">Kas mõtlesid: mari@gmail.com?</p>' in page.text
    page = _wrong(browser, page, "mari@hotmial.com")
    assert "Kas mõtlesid: mari@hotmail.com?" in page.text
    for fine in ("mari@gmail.com", "mari@mail.ee", "mari@kool.ee"):
        assert 'id="typo"' not in _wrong(browser, page, fine).text


def test_the_domain_guess(idp_app):
    from idp.views.typos import suggestion

    assert suggestion("mari@gmial.ee") == "mari@gmail.com"
    assert suggestion("mari@gmail.ee") == "mari@gmail.com"
    assert suggestion("Mari.Maasikas@Hotnail.com") == "Mari.Maasikas@hotmail.com"
    assert suggestion("mari@nett.ee") == "mari@neti.ee"
    assert suggestion("mari@outlok.com") == "mari@outlook.com"
    for exact in ("mari@gmail.com", "mari@hot.ee", "mari@mail.ee", "mari@mail.com"):
        assert suggestion(exact) is None
    for other in ("mari@laagri.edu.ee", "mari@example.ee", "not-an-address", "@gmial.ee"):
        assert suggestion(other) is None
