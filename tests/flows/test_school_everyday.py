"""Everyday use of a school's pages (issue 19), over real HTTP: the bar names the person's
schools and marks this one, the account menu's "Logi välja" logs out, a first visit speaks the
browser's language, a school's other host sends the browser to its registered address, and an
application whose child is not on the roster is approved only with a second confirmation that
names that risk; a teacher's news reaches one class or the whole school and its author edits
and deletes it."""

from __future__ import annotations

import html
import re
from typing import Any

import requests
from flask import Flask
from sqlalchemy import select

from tests.flows.test_application_guardian import _address, _listing, _status_at_idp
from tests.flows.test_applications import OTHER_CHILD, _application_row, _decide
from tests.flows.test_applications import _submit_application as _submit
from tests.flows.test_diary import laagri  # noqa: F401 (a fixture)
from tests.support import Browser, Tenant, sign_in_at_school


def _bar(page: requests.Response) -> str:
    found = re.search(r'<nav class="schools.*?</nav>', page.text, re.S)
    assert found, page.text
    return html.unescape(found.group(0))


def test_the_bar_names_every_school_and_marks_this_one(
    idp, make_tenant, make_person, link_account
) -> None:
    kool, huvikool = make_tenant("Laagri Kool"), make_tenant("Laagri Huvialakool")
    person = make_person(kool.client, "Jüri", "Mägi")
    link_account(person, huvikool.client, ["parent"])
    browser = Browser(idp)
    sign_in_at_school(browser, kool.url, person)
    bar = _bar(browser.http.get(kool.url + "/", timeout=10))
    # This school, marked; the other one a jump away; both named (the shared first word is
    # hidden on a phone only, never from a screen reader).
    here = re.search(r'<a class="school-here" href="/" aria-current="true".*?</a>', bar, re.S)
    assert here and '<span class="shared">Laagri </span>Kool' in here.group(0)
    jump = re.search(r'<a class="school-jump" href="([^"]+)".*?</a>', bar, re.S)
    assert jump and '<span class="shared">Laagri </span>Huvialakool' in jump.group(0)
    assert jump.group(1).startswith(f"{huvikool.url}/auth/login?iss=")
    assert bar.count("aria-current") == 1
    # Two schools fit side by side: no "Minu koolid" menu.
    assert "school-menu" not in bar and "many-phone" not in bar

    # A visitor's bar has only the school itself, and no account menu.
    visitor = requests.get(kool.url + "/", timeout=10)
    assert 'class="school-jump"' not in visitor.text and 'class="menu account"' not in visitor.text
    assert re.search(r'<div class="schools">.*?aria-current="true".*?</div>', visitor.text, re.S)


def test_many_schools_collapse_into_my_schools(idp, make_tenant, make_person, link_account) -> None:
    schools = [make_tenant(f"Kool {n}") for n in ("Üks", "Kaks", "Kolm", "Neli")]
    person = make_person(schools[0].client)
    for other in schools[1:]:
        link_account(person, other.client, ["parent"])
    browser = Browser(idp)
    sign_in_at_school(browser, schools[0].url, person)
    bar = _bar(browser.http.get(schools[0].url + "/", timeout=10))
    assert 'class="schools many-phone"' in bar  # more than fit on a phone
    menu = re.search(r'<details class="menu school-menu">.*?</details>', bar, re.S)
    assert menu and menu.group(0).count('class="school-option"') == 4
    assert "<summary>Minu koolid" in menu.group(0)


def test_the_account_menu_logs_out(idp, make_tenant, make_person) -> None:
    school = make_tenant("Laagri Kool")
    person = make_person(school.client, "Kaja", "Kask")
    browser = Browser(idp)
    sign_in_at_school(browser, school.url, person)
    home = browser.http.get(school.url + "/", timeout=10)
    menu = re.search(r'<details class="menu account">.*?</details>', home.text, re.S)
    assert menu, home.text
    text = html.unescape(menu.group(0))
    assert "Kaja Kask" in text and 'href="/profile">Profiil<' in text
    assert f'href="{idp}/account">Stuudium ID<' in text
    action = re.search(r'<form class="menu-logout" method="post" action="([^"]+)">', text)
    assert action and action.group(1) == "/auth/logout"

    # No token in the menu's form: another site's POST is refused, the school's own is not.
    forged = browser.http.post(
        school.url + "/auth/logout",
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        allow_redirects=False,
        timeout=10,
    )
    assert forged.status_code == 400
    assert "Kaja Kask" in browser.http.get(school.url + "/", timeout=10).text
    out = browser.http.post(
        school.url + "/auth/logout",
        headers={"Origin": school.url, "Sec-Fetch-Site": "same-origin"},
        allow_redirects=False,
        timeout=10,
    )
    assert out.status_code == 303 and out.headers["Location"].startswith(f"{idp}/logout?")
    browser.follow(out.headers["Location"], stop_prefix="\x00")
    after = browser.http.get(school.url + "/", timeout=10)
    assert 'id="login"' in after.text and "Kaja Kask" not in after.text


def test_a_first_visit_speaks_the_browsers_language(idp, make_tenant, make_person) -> None:
    school = make_tenant("Laagri Kool")
    visitor = requests.Session()
    visitor.headers["Accept-Language"] = "ru-RU,ru;q=0.9,en;q=0.5"
    page = visitor.get(school.url + "/", timeout=10)
    assert '<html lang="ru">' in page.text and "Войти" in page.text
    # The switch's choice wins over the browser's language ...
    visitor.cookies.set("stuudium_lang", "en", domain="127.0.0.1")
    assert '<html lang="en">' in visitor.get(school.url + "/", timeout=10).text
    # ... and a browser that names none of ours gets the school's default.
    other = requests.get(school.url + "/", headers={"Accept-Language": "fi"}, timeout=10)
    assert '<html lang="et">' in other.text

    # Signed in without having chosen a language: still the browser's.
    person = make_person(school.client, "Mari", "Maasikas")
    browser = Browser(idp)
    browser.http.headers["Accept-Language"] = "ru"
    sign_in_at_school(browser, school.url, person)
    assert '<html lang="ru">' in browser.http.get(school.url + "/", timeout=10).text
    # Once she chooses Estonian with the switch, that is her language, in this browser at once
    # and at her next sign-in in a Russian browser elsewhere (the IdP's locale claim).
    chose = browser.http.post(
        school.url + "/locale",
        data={"locale": "et", "next": "/"},
        headers={"Origin": school.url},
        allow_redirects=False,
        timeout=10,
    )
    assert chose.status_code == 303
    assert '<html lang="et">' in browser.http.get(school.url + "/", timeout=10).text
    elsewhere = Browser(idp)
    elsewhere.http.headers["Accept-Language"] = "ru"
    sign_in_at_school(elsewhere, school.url, person)
    assert '<html lang="et">' in elsewhere.http.get(school.url + "/", timeout=10).text


def _alias(school_app: Flask, tenant: Tenant, host: str) -> None:
    """Let the school answer at another host too (as 127.0.0.1 beside localhost in make run)."""
    from school_instance.models import Tenant as Row
    from shared.db import get_db

    with school_app.app_context():
        db = get_db()
        row = db.scalar(select(Row).where(Row.slug == tenant.client.slug))
        assert row is not None
        row.hosts = [*row.hosts, host]
        db.commit()


def test_another_host_of_a_school_goes_to_its_registered_address(
    make_tenant, school_app: Flask
) -> None:
    school = make_tenant("Laagri Kool")
    port = school.url.rsplit(":", 1)[1]
    _alias(school_app, school, f"localhost:{port}")
    at_alias: dict[str, Any] = {"headers": {"Host": f"localhost:{port}"}, "timeout": 10}
    moved = requests.get(school.url + "/news?page=2", allow_redirects=False, **at_alias)
    assert moved.status_code == 308
    assert moved.headers["Location"] == f"{school.url}/news?page=2"
    assert "Set-Cookie" not in moved.headers
    head = requests.head(school.url + "/", allow_redirects=False, **at_alias)
    assert head.status_code == 308 and head.headers["Location"] == f"{school.url}/"

    # A form is not re-sent to another origin: a page with the way to the school instead.
    posted = requests.post(school.url + "/locale", data={"locale": "ru"}, **at_alias)
    assert posted.status_code == 421
    text = html.unescape(posted.text)
    assert "Kool on teisel aadressil" in text
    assert f'<a class="button" href="{school.url}/">Ava Laagri Kool</a>' in text

    # The registered address itself is served; a host no school has is not found.
    assert requests.get(school.url + "/", allow_redirects=False, timeout=10).status_code == 200
    unknown = requests.get(
        school.url + "/", headers={"Host": "nobody.example"}, allow_redirects=False, timeout=10
    )
    assert unknown.status_code == 404


def test_an_off_roster_application_needs_a_confirmation_of_that_risk(
    idp, idp_app, make_tenant, make_person, inbox
) -> None:
    tenant, email = make_tenant(), _address()
    admin = make_person(tenant.client, roles=("admin",))
    _submit(idp, tenant, email, inbox, code=OTHER_CHILD)  # no such child on the roster
    browser, listing = _listing(idp, tenant, admin)
    assert listing.headers["Cache-Control"] == "no-store"
    row = html.unescape(_application_row(listing))
    # What the admin needs to judge: the code as typed, when, in which language.
    assert f'data-field="child-code">{OTHER_CHILD}<' in row
    assert re.search(r'data-field="submitted">\d\d\.\d\d\.\d{4} \d\d:\d\d<', row)
    assert 'data-field="language" lang="et">Eesti<' in row
    assert 'data-flag="not-enrolled"' in row and 'name="confirm_risk"' in row
    assert 'value="not-enrolled" required' in row and 'class="approve risky"' in row
    assert "kuigi selle isikukoodiga last kooli nimekirjas ei ole" in row
    # The admin's menu counts it.
    assert re.search(r'id="pending-count">1<', listing.text)

    # One click approves nothing; nor does a confirmation of another risk.
    refused = _decide(browser, tenant, listing, "approve")
    assert refused.status_code == 400
    assert "Selle isikukoodiga last kooli nimekirjas ei ole" in html.unescape(refused.text)
    assert _status_at_idp(idp_app, email) == ("pending", 0)
    other_risk = _decide(browser, tenant, listing, "approve", confirm_risk="not-guardian")
    assert other_risk.status_code == 400
    assert _status_at_idp(idp_app, email) == ("pending", 0)

    confirmed = _decide(browser, tenant, listing, "approve", confirm_risk="not-enrolled")
    assert confirmed.status_code == 303
    assert _status_at_idp(idp_app, email) == ("approved", 1)
    after = browser.http.get(f"{tenant.url}/admin/applications", timeout=10)
    assert 'id="none"' in after.text and 'id="pending-count"' not in after.text
    # The child's code never travels in a URL or a mail.
    assert all(OTHER_CHILD not in m["body"] for m in inbox(email)[1:])


def test_news_to_one_class_edited_and_deleted_by_its_author(laagri, idp) -> None:  # noqa: F811
    url, news_id = laagri.school.url, laagri.ids["news_3a"]
    edit_url = f"{url}/news/{news_id}/edit"
    readers = {}
    for name in ("tiina", "peeter", "juri", "kaja"):
        readers[name] = Browser(idp)
        sign_in_at_school(readers[name], url, getattr(laagri, name))

    def sees(name: str) -> bool:
        page = readers[name].http.get(url + "/news", timeout=10)
        return "Murdude liitmine" in page.text and "klassile 3.a" in page.text

    # 3.a's teacher and a 3.a parent see it, and staff; another class's teacher does not.
    assert [sees(n) for n in ("tiina", "juri", "kaja", "peeter")] == [True, True, True, False]
    news = readers["tiina"].http.get(url + "/news", timeout=10).text
    assert f'href="/news/{news_id}/edit">Muuda või kustuta<' in news
    assert "Muuda või kustuta" not in readers["juri"].http.get(url + "/news", timeout=10).text
    refused = readers["kaja"].http.get(edit_url, timeout=10)  # not the author, even an admin
    assert refused.status_code == 403 and "ainult selle autor" in html.unescape(refused.text)

    # The author edits it: the whole school now, and the audience list has only her classes.
    form = readers["tiina"].http.get(edit_url, timeout=10)
    assert form.status_code == 200 and "Klassile 3.a" in form.text and "4.b" not in form.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf
    token = csrf.group(1)
    stranger_class = readers["tiina"].http.post(
        edit_url,
        data={"csrf_token": token, "title": "Matemaatika", "body": "x", "audience": "999999"},
        allow_redirects=False,
        timeout=10,
    )
    assert stranger_class.status_code == 400 and 'aria-invalid="true"' in stranger_class.text
    saved = readers["tiina"].http.post(
        edit_url,
        data={
            "csrf_token": token,
            "title": "Matemaatika",
            "body": "Murdude liitmine ja lahutamine",
            "audience": "school",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert saved.status_code == 303
    assert "Murdude liitmine ja lahutamine" in readers["peeter"].http.get(url + "/news").text

    # Deleting asks first, then deletes.
    delete_url = f"{url}/news/{news_id}/delete"
    asked = readers["tiina"].http.post(delete_url, data={"csrf_token": token}, timeout=10)
    assert asked.status_code == 200 and 'id="confirm-delete"' in asked.text
    assert "Murdude liitmine" in readers["juri"].http.get(url + "/news").text
    gone = readers["tiina"].http.post(
        delete_url, data={"csrf_token": token, "confirm": "1"}, allow_redirects=False, timeout=10
    )
    assert gone.status_code == 303
    assert "Murdude liitmine" not in readers["juri"].http.get(url + "/news").text
    assert readers["tiina"].http.get(edit_url, timeout=10).status_code == 404


def test_another_schools_news_is_not_found(laagri, idp, make_tenant, make_person) -> None:  # noqa: F811
    other = make_tenant("Teine Kool")
    teacher = make_person(other.client, "Tõnu", "Teine", roles=("teacher",))
    browser = Browser(idp)
    sign_in_at_school(browser, other.url, teacher)
    news_id = laagri.ids["news_3a"]
    assert browser.http.get(f"{other.url}/news/{news_id}/edit", timeout=10).status_code == 404
    token = re.search(
        r'name="csrf_token" value="([^"]+)"', browser.http.get(f"{other.url}/news/new").text
    )
    assert token
    for action in ("edit", "delete"):
        resp = browser.http.post(
            f"{other.url}/news/{news_id}/{action}",
            data={"csrf_token": token.group(1), "confirm": "1", "title": "x", "body": "y"},
            allow_redirects=False,
            timeout=10,
        )
        assert resp.status_code == 404
    # And the other side: the school's own people still see it, unchanged.
    own = Browser(idp)
    sign_in_at_school(own, laagri.school.url, laagri.juri)
    assert "Murdude liitmine" in own.http.get(f"{laagri.school.url}/news", timeout=10).text
    assert "Matemaatika" not in browser.http.get(f"{other.url}/news", timeout=10).text
