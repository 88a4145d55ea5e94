"""The school's accounts page: an admin disables or enables an account, and the school calls the
IdP's tenant admin API over HTTP with the admin's own access token."""

from __future__ import annotations

import html
import re

import requests

from tests.flows.test_admin_api import _lands_on_login, _password_login_works
from tests.flows.test_school_sso import _sign_in
from tests.support import CSRF_RE, Browser, Tenant, free_port

CONFIRM_RE = re.compile(r'<form method="post" action="([^"]+)">')


def _row(page: requests.Response, sub: str) -> str:
    """The accounts page's row of one account."""
    match = re.search(rf'<li data-sub="{re.escape(sub)}".*?</li>', page.text, re.S)
    assert match, page.text
    return match.group(0)


def _confirm_page(browser: Browser, school: Tenant, sub: str, action: str) -> requests.Response:
    listing = browser.http.get(f"{school.url}/admin/accounts", timeout=10)
    link = re.search(r'href="([^"]+)"', _row(listing, sub))
    assert link and link.group(1) == f"/admin/accounts/{sub}/{action}"
    page = browser.http.get(school.url + link.group(1), timeout=10)
    assert page.status_code == 200
    return page


def _submit(
    browser: Browser, school: Tenant, page: requests.Response, csrf: bool = True
) -> requests.Response:
    action = CONFIRM_RE.search(page.text)
    token = CSRF_RE.search(page.text)
    assert action and token
    data = {"csrf_token": token.group(1)} if csrf else {}
    return browser.http.post(
        school.url + html.unescape(action.group(1)), data=data, allow_redirects=False, timeout=10
    )


def test_an_admin_disables_and_enables_an_account_from_the_school(idp, make_tenant, make_person):
    school = make_tenant("Vahtra Kool")
    admin = make_person(school.client, "Anu", "Allikas", ("admin",))
    parent = make_person(school.client, "Priit", "Pärn")
    admin_browser, parent_browser = Browser(idp), Browser(idp)
    _sign_in(admin_browser, school.url, admin)
    _sign_in(parent_browser, school.url, parent)

    home = admin_browser.http.get(school.url + "/", timeout=10)
    assert '<a href="/admin/accounts">Kontod</a>' in home.text
    listing = admin_browser.http.get(f"{school.url}/admin/accounts", timeout=10)
    assert "Priit Pärn" in _row(listing, parent.sub) and "aktiivne" in _row(listing, parent.sub)
    assert "Keela konto" not in _row(listing, admin.sub)  # not one's own

    page = _confirm_page(admin_browser, school, parent.sub, "disable")
    text = html.unescape(page.text)
    assert "Kas keelata Priit Pärn konto?" in text
    assert "Kõik selle konto seansid lõpetatakse kohe" in text

    forged = _submit(admin_browser, school, page, csrf=False)
    assert forged.status_code == 400 and "Vorm aegus" in forged.text
    stranger = _submit(Browser(idp), school, page)  # a browser without the admin's session
    assert stranger.status_code == 303 and stranger.headers["Location"].startswith("/auth/login")
    assert not _lands_on_login(parent_browser, school, "Priit Pärn")

    done = _submit(admin_browser, school, page)
    assert done.status_code == 303 and done.headers["Location"] == "/admin/accounts"
    listing = admin_browser.http.get(f"{school.url}/admin/accounts", timeout=10)
    assert "Konto on keelatud; kõik selle konto seansid on lõpetatud." in html.unescape(
        listing.text
    )
    assert 'data-status="disabled"' in _row(listing, parent.sub)
    assert _lands_on_login(parent_browser, school, "Priit Pärn")
    assert not _password_login_works(idp, school, parent)

    page = _confirm_page(admin_browser, school, parent.sub, "enable")
    assert "Kas lubada Priit Pärn konto?" in html.unescape(page.text)
    assert _submit(admin_browser, school, page).status_code == 303
    listing = admin_browser.http.get(f"{school.url}/admin/accounts", timeout=10)
    assert "Konto on lubatud" in html.unescape(listing.text)
    assert 'data-status="active"' in _row(listing, parent.sub)
    assert _password_login_works(idp, school, parent)


def test_a_non_admin_cannot_reach_the_accounts_page(idp, make_tenant, make_person):
    school = make_tenant()
    teacher = make_person(school.client, "Tõnu", "Tamm", ("teacher", "parent"))
    other = make_person(school.client, "Olga", "Oja")
    browser = Browser(idp)
    _sign_in(browser, school.url, teacher)
    assert "/admin/accounts" not in browser.http.get(school.url + "/", timeout=10).text
    for resp in (
        browser.http.get(f"{school.url}/admin/accounts", timeout=10),
        browser.http.get(f"{school.url}/admin/accounts/{other.sub}/disable", timeout=10),
        browser.http.post(f"{school.url}/admin/accounts/{other.sub}/disable", timeout=10),
    ):
        assert resp.status_code == 403
        assert "Sul ei ole sellele lehele ligipääsu" in resp.text
    assert _password_login_works(idp, school, other)


def test_the_idps_refusal_or_silence_gets_a_page(
    idp, idp_app, school_app, make_tenant, make_person
):
    from sqlalchemy import update

    from idp.models import Account
    from school_instance.cli import add_tenant
    from shared.db import get_db

    school = make_tenant()
    admin = make_person(school.client, "Aare", "Alev", ("admin",))
    browser = Browser(idp)
    _sign_in(browser, school.url, admin)
    assert browser.http.get(f"{school.url}/admin/accounts", timeout=10).status_code == 200

    # The school still thinks they are an admin; the IdP no longer does.
    with idp_app.app_context():
        db = get_db()
        db.execute(update(Account).where(Account.sub == admin.sub).values(roles=["teacher"]))
        db.commit()
    refused = browser.http.get(f"{school.url}/admin/accounts", timeout=10)
    assert refused.status_code == 403
    assert "Sul ei ole õigust kontosid muuta" in html.unescape(refused.text)

    # The IdP does not answer at all.
    c = school.client
    add_tenant(
        school_app,
        slug=c.slug,
        name=c.name,
        url=school.url,
        issuer=f"http://127.0.0.1:{free_port()}",
        client_id=c.client_id,
        client_secret=c.client_secret or "",
        hosts=[school.url.split("//")[1]],
    )
    silent = browser.http.get(f"{school.url}/admin/accounts", timeout=10)
    assert silent.status_code == 503
    assert "Stuudium ID ei vasta" in silent.text
