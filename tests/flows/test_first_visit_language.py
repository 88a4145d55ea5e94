"""A first visit is in the browser's language: with no choice made (no person's choice, no
visitor's switch, no ui_locales), Accept-Language wins over the school's default on the IdP's
pages; ui_locales and any later choice still win over it."""

from __future__ import annotations

import re

from tests.support import Browser, Tenant, authorize_url, pkce_pair, sign_in_at_school

LANG_RE = re.compile(r'<html lang="(\w+)">')


def _browser(idp: str, accept_language: str | None) -> Browser:
    browser = Browser(idp)
    if accept_language:
        browser.http.headers["Accept-Language"] = accept_language
    return browser


def _login_page(idp: str, browser: Browser, school: Tenant, **extra: str) -> str:
    """The IdP's login page for an authorization request of the school; its language."""
    _, challenge = pkce_pair()
    page = browser.follow(authorize_url(idp, school.client, challenge, **extra), "\x00")
    assert page.status_code == 200 and 'name="password"' in page.text
    found = LANG_RE.search(page.text)
    assert found
    return found.group(1)


def _lang(browser: Browser, url: str) -> str:
    found = LANG_RE.search(browser.http.get(url, timeout=10).text)
    assert found, url
    return found.group(1)


def test_a_russian_browser_gets_russian_pages_on_its_first_visit(idp, make_tenant):
    school = make_tenant("Laagri Kool")  # its default language is Estonian
    russian = _browser(idp, "ru-RU,ru;q=0.9,en;q=0.8")
    assert _login_page(idp, russian, school) == "ru"
    page = russian.http.get(f"{idp}/", timeout=10)
    assert '<html lang="ru">' in page.text and "Войдите через свою школу" in page.text
    assert _lang(russian, f"{idp}/s/{school.client.slug}/access") == "ru"
    # A browser naming none of ours, or none at all, gets the school's default.
    assert _login_page(idp, _browser(idp, "de-DE,de;q=0.9"), school) == "et"
    assert _login_page(idp, _browser(idp, "*"), school) == "et"
    assert _login_page(idp, _browser(idp, None), school) == "et"


def test_ui_locales_and_a_later_choice_win_over_the_browser(idp, make_tenant, make_person):
    school = make_tenant("Laagri Kool")
    russian = _browser(idp, "ru")
    assert _login_page(idp, russian, school, ui_locales="en") == "en"
    # The visitor's switch: from then on Estonian in this browser, whatever it asks for.
    resp = russian.http.post(
        f"{idp}/locale",
        data={"locale": "et", "next": "/"},
        headers={"Origin": idp},
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 303
    assert _login_page(idp, russian, school) == "et"
    assert _lang(russian, f"{idp}/") == "et"
    # A signed-in person's own choice wins in another Russian browser too.
    person = make_person(school.client)
    sign_in_at_school(russian, school.url, person)  # the visitor's choice became the person's
    other = _browser(idp, "ru")
    sign_in_at_school(other, school.url, person)
    assert _lang(other, f"{idp}/account") == "et"
