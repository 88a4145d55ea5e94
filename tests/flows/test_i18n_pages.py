"""Every page of both apps in Estonian, Russian and English, for a parent, a teacher, an admin
and a visitor: the page says it is in that language and has no word of the others in it; and
the walk covers every GET route that shows a page."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.flows.test_diary import Laagri, laagri  # noqa: F401 (the school and its people)
from tests.i18n_support import LANGS, leaks, visible_text
from tests.support import Browser, pkce_pair, sign_in_at_school

# Names in the test school's data: they stay as they are in every language.
DATA = {
    "laagri",
    "kool",
    "tiina",
    "õunapuu",
    "peeter",
    "kuusk",
    "jüri",
    "mägi",
    "kadri",
    "tamm",
    "kaja",
    "kask",
    "oskar",
    "sofia",
    "saar",
    "matemaatika",
    "murdude",
    "liitmine",
    "eesti",
    "keel",
    "rahvaluule",
    "loodusõpetus",
    "veeringe",
    "looduses",
}
# GET routes that show no page to a person: machine endpoints, files, a framed logout.
NOT_PAGES = {
    "static",
    "healthz",
    "readyz",
    "metrics",
    "oidc.discovery",
    "oidc.jwks",
    "oidc.userinfo",
    "schools.logo",
    "admin_api.accounts",
    "admin_api.openapi",
    "admin_api.account",
    "admin_applications.pending",
    "sso.frontchannel_logout",
    "sso.login",
}
LANG_RE = re.compile(r'<html lang="(\w+)">')


def _school_paths(school: Laagri, role: str) -> list[str]:
    ids, sub = school.ids, school.juri.sub
    paths = {
        "anonymous": ["/", "/auth/callback?state=x", "/auth/logged-out", "/no-such-page"],
        "parent": ["/", "/profile", "/news", f"/children/{ids['mia']}", "/admin/classes"],
        "teacher": [
            "/",
            "/profile",
            "/news",
            "/news/new",
            f"/news/{ids['news_3a']}/edit",
            "/lessons/new",
            f"/lessons/{ids['lesson_math']}",
            "/people",
            f"/people/{sub}/correct",
        ],
        "admin": [
            "/",
            "/profile",
            "/admin/accounts",
            f"/admin/accounts/{sub}/disable",
            "/admin/classes",
            f"/admin/classes/{ids['class_3a']}",
            f"/admin/students/{ids['mia']}",
            "/admin/applications",
            "/people",
            f"/people/{sub}/correct",
            "/news/new",
        ],
    }
    return paths[role]


def _idp_paths(slug: str, role: str) -> list[str]:
    visitor = [
        "/",
        f"/s/{slug}/access",
        f"/s/{slug}/new",
        f"/s/{slug}/apply",
        f"/s/{slug}/signin",
        f"/s/{slug}/apply/confirm",
        f"/s/{slug}/apply/form",
        f"/s/{slug}/apply/done",
        "/account/email/confirm",
        "/eid/callback?state=x",
        "/login?ix=x",
        "/no-account?ix=x",
        "/authorize?client_id=nobody",
        "/authorize/resume?ix=x",
        "/no-such-page",
    ]
    if role == "anonymous":
        return [*visitor, "/account", "/logout"]
    return [
        *visitor,
        "/account",
        "/account/sessions",
        "/account/password",
        "/account/email",
        f"/link/start?school={slug}",
        "/logout",
    ]


def _switch(http: requests.Session, origin: str, lang: str) -> None:
    """Press the switch on a page of origin, as a browser sends it (same-origin POST)."""
    resp = http.post(
        f"{origin}/locale",
        data={"locale": lang, "next": "/"},
        headers={"Origin": origin},
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 303 and resp.headers["Location"] == "/", resp.text


def _content_words(idp_app: Any) -> set[str]:
    """The words of every school's name: content as entered (another test's "Teine Kool" shows
    on the linking page's list of schools), not the page's language."""
    from sqlalchemy import select

    from idp.models import School
    from shared.db import get_db

    with idp_app.app_context():
        names = get_db().scalars(select(School.name)).all()
    return DATA | {w.casefold() for name in names for w in re.findall(r"\w+", name)}


def _check(
    resp: requests.Response, lang: str, where: str, content: set[str] | frozenset[str] = frozenset()
) -> None:
    assert resp.status_code < 500, (where, resp.status_code)
    assert resp.headers["Content-Type"].startswith("text/html"), where
    found = LANG_RE.search(resp.text)
    assert found and found.group(1) == lang, (where, found and found.group(1))
    allowed = DATA | content
    assert not leaks(visible_text(resp.text), lang, allowed), (
        where,
        lang,
        leaks(visible_text(resp.text), lang, allowed),
    )


def _walk(
    idp: str, school: Laagri, role: str, lang: str, content: set[str]
) -> set[tuple[str, str]]:
    """Open every page of a role in lang; return the (app, path) opened."""
    browser = Browser(idp)
    person = {"parent": school.juri, "teacher": school.tiina, "admin": school.kaja}.get(role)
    if person is not None:
        sign_in_at_school(browser, school.school.url, person)
    _switch(browser.http, school.school.url, lang)
    if person is None:  # a visitor's choice is per browser: press the IdP's switch too
        _switch(browser.http, idp, lang)
    opened = set()
    for path in _school_paths(school, role):
        resp = browser.http.get(school.school.url + path, allow_redirects=False, timeout=10)
        _check(resp, lang, f"school {role} {path}", content)
        opened.add(("school", path))
    for path in _idp_paths(school.school.client.slug, role):
        resp = browser.http.get(idp + path, allow_redirects=False, timeout=10)
        _check(resp, lang, f"idp {role} {path}", content)
        opened.add(("idp", path))
    return opened


def _endpoints(app: Any, opened: set[str]) -> set[str]:
    adapter = app.url_map.bind("localhost")
    return {
        adapter.match(urlsplit(p).path, method="GET")[0] for p in opened if p != "/no-such-page"
    }


def _get_routes(app: Any) -> set[str]:
    return {r.endpoint for r in app.url_map.iter_rules() if "GET" in (r.methods or ())}


@pytest.mark.parametrize("lang", LANGS)
def test_every_page_in_every_language(idp, idp_app, school_app, laagri, lang):  # noqa: F811
    opened: set[tuple[str, str]] = set()
    content = _content_words(idp_app)
    for role in ("anonymous", "parent", "teacher", "admin"):
        opened |= _walk(idp, laagri, role, lang, content)
    # The walk covers every GET route that shows a person a page.
    for app, name in ((idp_app, "idp"), (school_app, "school")):
        seen = _endpoints(app, {p for a, p in opened if a == name})
        assert _get_routes(app) - NOT_PAGES - seen == set(), name


def test_ui_locales_shows_the_login_page_in_russian(idp, make_tenant):
    from tests.support import authorize_url

    school = make_tenant("Laagri Kool")
    _verifier, challenge = pkce_pair()
    browser = Browser(idp)
    page = browser.follow(
        authorize_url(idp, school.client, challenge, ui_locales="ru"), school.client.redirect_uri
    )
    assert page.status_code == 200 and 'name="password"' in page.text
    assert '<html lang="ru">' in page.text and "Войти" in page.text
    assert "Прислать мне данные для входа" in page.text
    assert not leaks(visible_text(page.text), "ru", DATA)
    # Without it, a first visit is in the browser's language (test_first_visit_language.py).
    other = Browser(idp)
    other.http.headers["Accept-Language"] = "en"
    page = other.follow(authorize_url(idp, school.client, challenge), school.client.redirect_uri)
    assert '<html lang="en">' in page.text and "Sign in" in page.text


def _lang(http: requests.Session, url: str) -> str:
    found = LANG_RE.search(http.get(url, timeout=10).text)
    assert found, url
    return found.group(1)


def test_the_choice_follows_the_person_across_the_idp_and_every_school(
    idp, make_tenant, make_person, link_account
):
    import time

    kool, lasteaed = make_tenant("Laagri Kool"), make_tenant("Laagri Lasteaed")
    person = make_person(kool.client, given_name="Tiina", family_name="Õunapuu")
    link_account(person, lasteaed.client, ["parent"])
    laptop = Browser(idp)
    sign_in_at_school(laptop, kool.url, person)
    assert _lang(laptop.http, kool.url + "/") == "et"

    # Chosen at one school: that school, the IdP and the next school speak Russian.
    _switch(laptop.http, kool.url, "ru")
    assert _lang(laptop.http, kool.url + "/") == "ru"
    assert _lang(laptop.http, idp + "/account") == "ru"
    jump = f"{lasteaed.url}/auth/login?iss={idp}&target_link_uri={lasteaed.url}/"
    landed = laptop.follow(jump, stop_prefix="\x00")
    assert landed.url == lasteaed.url + "/" and '<html lang="ru">' in landed.text

    # Chosen at the IdP: the schools where the person is signed in follow (a sync event).
    _switch(laptop.http, idp, "en")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and {
        _lang(laptop.http, kool.url + "/"),
        _lang(laptop.http, lasteaed.url + "/"),
    } != {"en"}:
        time.sleep(0.1)
    assert _lang(laptop.http, kool.url + "/") == "en"
    assert _lang(laptop.http, lasteaed.url + "/") == "en"

    # Another device: the person's choice, not that browser's language or the school's default.
    phone = Browser(idp)
    phone.http.headers["Accept-Language"] = "et"
    assert _lang(phone.http, kool.url + "/") == "et"  # a visitor there: the school's default
    sign_in_at_school(phone, kool.url, person)
    assert _lang(phone.http, kool.url + "/") == "en"


def test_the_switch_refuses_other_sites_and_the_school_path_needs_the_persons_token(
    idp, idp_app, make_tenant, make_person
):
    from idp.models import Person
    from shared.db import get_db

    kool = make_tenant("Laagri Kool")
    person = make_person(kool.client)
    browser = Browser(idp)
    sign_in_at_school(browser, kool.url, person)
    for origin in ("http://evil.example", None):
        headers = {"Origin": origin} if origin else {}
        for target in (idp, kool.url):
            resp = browser.http.post(
                f"{target}/locale",
                data={"locale": "ru", "next": "/"},
                headers=headers,
                allow_redirects=False,
                timeout=10,
            )
            assert resp.status_code == 400, (target, origin)
    assert _lang(browser.http, kool.url + "/") == "et"
    resp = browser.http.post(
        f"{idp}/locale",
        data={"locale": "ru", "next": "//evil.example/"},
        headers={"Origin": idp},
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 303 and resp.headers["Location"] == "/"

    for auth in ({}, {"Authorization": "Bearer not-a-token"}):
        refused = requests.post(f"{idp}/me/locale", json={"locale": "en"}, headers=auth, timeout=10)
        assert refused.status_code == 401
    with idp_app.app_context():
        from sqlalchemy import select

        from idp.models import Account

        stored = get_db().scalar(
            select(Person.locale).join(Account).where(Account.sub == person.sub)
        )
    assert stored == "ru"  # the IdP's own switch above; the refused calls changed nothing


def test_a_visitors_choice_becomes_the_persons_when_they_sign_in(idp, make_tenant, make_person):
    kool = make_tenant("Laagri Kool")
    person = make_person(kool.client)
    # At the school, before signing in: the IdP's login page follows (ui_locales).
    browser = Browser(idp)
    _switch(browser.http, kool.url, "ru")
    page = browser.follow(f"{kool.url}/auth/login", stop_prefix="\x00")
    assert '<html lang="ru">' in page.text and 'name="password"' in page.text
    final = browser.submit_login(page, person.email, person.password, stop_prefix="\x00")
    assert final.url == kool.url + "/" and '<html lang="ru">' in final.text
    assert _lang(browser.http, idp + "/account") == "ru"
    assert not [c for c in browser.http.cookies if c.name == "stuudium_lang"]  # spent

    # On the IdP's login page: pressed there, it is the person's once they are in.
    other = Browser(idp)
    page = other.follow(f"{kool.url}/auth/login", stop_prefix="\x00")
    assert '<html lang="et">' in page.text  # nobody known yet: the school's default
    _switch(other.http, idp, "en")
    page = other.follow(f"{kool.url}/auth/login", stop_prefix="\x00")
    assert '<html lang="en">' in page.text
    final = other.submit_login(page, person.email, person.password, stop_prefix="\x00")
    assert '<html lang="en">' in final.text
    assert _lang(browser.http, idp + "/account") == "en"  # the first browser too


def test_mail_speaks_the_recipients_language(idp, idp_app, make_tenant, make_person, inbox):
    from sqlalchemy import select, update

    from idp.models import Account, Person
    from shared.db import get_db
    from tests.flows.mail_links import link_of, post_form

    kool = make_tenant("Laagri Kool")
    person = make_person(kool.client)
    with idp_app.app_context():
        db = get_db()
        person_id = db.scalar(select(Account.person_id).where(Account.sub == person.sub))
        db.execute(update(Person).where(Person.id == person_id).values(locale="ru"))
        db.commit()
    # Asked for on an Estonian page, the login link goes out in the person's own language.
    asked = post_form(Browser(idp), f"{idp}/s/{kool.client.slug}/access", {"email": person.email})
    assert asked.status_code == 200 and '<html lang="et">' in asked.text
    [message] = inbox(person.email)
    assert message["subject"].startswith("Ссылка для входа") and "Здравствуйте" in message["body"]
    page, _token = link_of(message)  # its page speaks the mail's language too
    assert '<html lang="ru">' in requests.get(page, timeout=10).text

    # An applicant: the language they applied in, for the mail and the application form.
    applicant = Browser(idp)
    _switch(applicant.http, idp, "en")
    sent = post_form(
        applicant,
        f"{idp}/s/{kool.client.slug}/apply",
        {"email": "aino@example.ee", "child_isikukood": "51705212273"},
    )
    assert sent.status_code == 200 and '<html lang="en">' in sent.text
    [confirm] = inbox("aino@example.ee")
    assert confirm["subject"].startswith("Confirm your e-mail address"), confirm["subject"]
