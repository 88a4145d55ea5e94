"""The Stuudium ID home at /: for a visitor, what it is and the schools to sign in at; for a
signed-in person, "Minu koolid" (each school opens signed in, with its logo), the account links
and "Logi välja"."""

from __future__ import annotations

import base64
import html
import re
from urllib.parse import urlencode

import requests

from tests.flows.idp_account import post_form, signed_in_at
from tests.support import Browser, Tenant, sign_in_at_school

LOGO = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwAD"
    "hgGAWjR9awAAAABJRU5ErkJggg=="
)
LINK_RE = re.compile(r'<a class="school-link" href="([^"]+)" data-school="([^"]+)">(.*?)</a>', re.S)


def school_links(page: str, list_id: str) -> dict[str, tuple[str, str]]:
    """The home's school list: slug → (href, inner HTML)."""
    listed = page.split(f'id="{list_id}"', 1)[1].split("</ul>", 1)[0]
    return {slug: (html.unescape(href), inner) for href, slug, inner in LINK_RE.findall(listed)}


def login_initiation(idp: str, school: Tenant) -> str:
    """The school's login initiation URI as the IdP builds it (OIDC Core §4)."""
    query = urlencode({"iss": idp, "target_link_uri": school.url + "/"})
    return f"{school.url}/auth/login?{query}"


def _set_logo(idp_app, slug: str, logo: str | None) -> None:
    from sqlalchemy import select

    from idp.models import School
    from shared.db import get_db

    with idp_app.app_context():
        db = get_db()
        db.scalars(select(School).where(School.slug == slug)).one().logo = logo
        db.commit()


def _shows_logo(idp: str, inner: str, slug: str) -> bool:
    """The link shows the school's logo: served by the IdP's logo address, the stored image."""
    if f'<img src="/schools/{slug}/logo" alt="" class="logo">' not in inner:
        return False
    served = requests.get(f"{idp}/schools/{slug}/logo", timeout=10)
    stored = base64.b64decode(LOGO.split(",", 1)[1])
    return served.status_code == 200 and served.content == stored


def test_a_visitor_sees_what_it_is_and_where_to_sign_in(idp, idp_app, make_tenant):
    kool = make_tenant("Laagri Kool")
    _set_logo(idp_app, kool.client.slug, LOGO)
    page = Browser(idp).http.get(f"{idp}/", timeout=10)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "<h1>Stuudium ID</h1>" in page.text and 'id="about"' in page.text
    links = school_links(page.text, "schools")
    href, inner = links[kool.client.slug]
    assert href == login_initiation(idp, kool)
    assert _shows_logo(idp, inner, kool.client.slug) and "Laagri Kool" in inner
    assert 'id="logout"' not in page.text
    # Choosing the school starts signing in there: its login page at the IdP.
    login = Browser(idp).follow(href, stop_prefix="\x00")
    assert login.status_code == 200 and login.url.startswith(f"{idp}/login")
    assert 'name="password"' in login.text


def test_a_signed_in_person_sees_their_schools_and_opens_them_signed_in(
    idp, idp_app, make_tenant, make_person, link_account
):
    kool, lasteaed, other = (
        make_tenant("Laagri Kool"),
        make_tenant("Laagri Lasteaed"),
        make_tenant("Teine Kool"),
    )
    _set_logo(idp_app, lasteaed.client.slug, LOGO)
    person = make_person(kool.client, given_name="Tiina", family_name="Õunapuu")
    link_account(person, lasteaed.client, ["parent"])
    browser = Browser(idp)
    sign_in_at_school(browser, kool.url, person)
    page = browser.http.get(f"{idp}/", timeout=10)
    assert "<h1>Minu koolid</h1>" in page.text
    assert "Sisse logitud: Tiina Õunapuu" in page.text
    mine = school_links(page.text, "my-schools")
    assert set(mine) == {kool.client.slug, lasteaed.client.slug}  # not "Teine Kool"
    assert other.client.slug not in page.text
    assert mine[lasteaed.client.slug][0] == login_initiation(idp, lasteaed)
    assert _shows_logo(idp, mine[lasteaed.client.slug][1], lasteaed.client.slug)
    assert '<span class="initial" aria-hidden="true">L</span>' in mine[kool.client.slug][1]
    for link in ('href="/account"', 'href="/account/sessions"', 'href="/account/password"'):
        assert link in page.text
    # Opening a school signs in there without the login page.
    landed = browser.follow(mine[lasteaed.client.slug][0], stop_prefix="\x00")
    assert landed.status_code == 200 and landed.url.startswith(lasteaed.url)
    assert 'name="password"' not in landed.text
    assert signed_in_at(browser, lasteaed)

    # "Logi välja" ends this browser's session: every school is told, the home is a visitor's.
    done = post_form(browser, page, "/logout", confirm="yes")
    assert done.status_code == 200 and "<h1>Oled välja logitud</h1>" in done.text
    assert not signed_in_at(browser, kool) and not signed_in_at(browser, lasteaed)
    again = browser.http.get(f"{idp}/", timeout=10)
    assert "<h1>Stuudium ID</h1>" in again.text and 'id="logout"' not in again.text


def test_every_page_has_the_way_home_in_its_header(idp):
    page = Browser(idp).http.get(f"{idp}/account", timeout=10)
    assert '<a class="brand" href="/">Stuudium ID</a>' in page.text
