"""Every page that ends a task has a way onward: "Tagasi kooli <name>" to the school the
person came from when it is known (the `school` parameter, the sign-in's client, the session's
last school), else the Stuudium ID home."""

from __future__ import annotations

import html
import re
import secrets

import requests
from sqlalchemy import select

from tests.flows.idp_account import post_form, sessions_page, signed_in_at
from tests.flows.mail_links import link_of
from tests.flows.mail_links import post_form as post_public_form
from tests.flows.test_home import login_initiation
from tests.support import CSRF_RE, IX_RE, Browser, Tenant, sign_in_at_school

ONWARD_RE = re.compile(r'<a class="button" id="onward" href="([^"]+)">([^<]+)</a>')
HOME = '<a class="button" id="home" href="/">Stuudium ID avalehele</a>'


def onward(page: requests.Response) -> tuple[str, str] | None:
    """The page's way back to a school: (href, label)."""
    found = ONWARD_RE.search(page.text)
    return (html.unescape(found.group(1)), found.group(2)) if found else None


def onward_url(page: requests.Response) -> str:
    """The href of the page's way back to a school (there must be one)."""
    found = onward(page)
    assert found, "a way back to the school expected"
    return found[0]


def test_password_saved_and_session_ended_lead_back_to_the_school(idp, make_tenant, make_person):
    kool = make_tenant("Laagri Kool")
    person = make_person(kool.client)
    laptop, phone = Browser(idp), Browser(idp)
    sign_in_at_school(laptop, kool.url, person)
    sign_in_at_school(phone, kool.url, person)
    page, listed = sessions_page(laptop)
    ended = post_form(laptop, page, "/account/sessions/end", sid=listed[1].sid)
    assert 'id="back" href="/account/sessions"' in ended.text
    assert onward(ended) == (login_initiation(idp, kool), "Tagasi kooli Laagri Kool")
    form = laptop.http.get(f"{idp}/account/password", timeout=10)
    new = "Kaks kassi jalutavad mööda katust"
    saved = post_form(
        laptop,
        form,
        "/account/password",
        current_password=person.password,
        new_password=new,
        new_password_again=new,
    )
    assert "<h1>Parool on muudetud</h1>" in saved.text
    assert onward(saved) == (login_initiation(idp, kool), "Tagasi kooli Laagri Kool")
    landed = laptop.follow(onward_url(saved), stop_prefix="\x00")  # signed in there silently
    assert landed.status_code == 200 and landed.url.startswith(kool.url)


def test_the_email_changed_page_leads_back_to_the_school(idp, make_tenant, make_person, inbox):
    kool = make_tenant("Laagri Kool")
    person = make_person(kool.client)
    browser = Browser(idp)
    sign_in_at_school(browser, kool.url, person)
    new = f"uus-{secrets.token_hex(3)}@example.ee"
    post_public_form(browser, f"{idp}/account/email", {"email": new})
    [message] = inbox(new)
    page_url, token = link_of(message)
    done = post_public_form(browser, page_url, {"token": token})
    assert done.status_code == 200 and "E-posti aadress on muudetud" in done.text
    assert onward(done) == (login_initiation(idp, kool), "Tagasi kooli Laagri Kool")
    # Opened in a browser without a session: the person's only school, at its front page.
    other = f"teine-{secrets.token_hex(3)}@example.ee"
    post_public_form(browser, f"{idp}/account/email", {"email": other})
    [message] = inbox(other)
    page_url, token = link_of(message)
    done = post_public_form(Browser(idp), page_url, {"token": token})
    assert onward(done) == (kool.url, "Tagasi kooli Laagri Kool")


def _login_form(idp: str, browser: Browser, school: Tenant) -> requests.Response:
    page = browser.follow(login_initiation(idp, school).replace("iss=", "x="), "\x00")
    assert page.status_code == 200 and 'name="password"' in page.text
    return page


def test_an_expired_sign_in_restarts_at_its_school(idp, idp_app, make_tenant, make_person):
    kool = make_tenant("Laagri Kool")
    person = make_person(kool.client)
    browser = Browser(idp)
    page = _login_form(idp, browser, kool)
    assert f'name="school" value="{kool.client.slug}"' in page.text
    ix, csrf = IX_RE.search(page.text), CSRF_RE.search(page.text)
    assert ix and csrf
    idp_app.extensions["redis"].delete(f"idp:ix:{ix.group(1)}")  # as after 15 minutes
    late = browser.http.post(
        f"{idp}/login",
        data={
            "csrf_token": csrf.group(1),
            "ix": ix.group(1),
            "school": kool.client.slug,
            "email": person.email,
            "password": person.password,
        },
        timeout=10,
    )
    assert late.status_code == 400 and "<h1>Sisselogimine aegus</h1>" in late.text
    assert onward(late) == (login_initiation(idp, kool), "Alusta sisselogimist uuesti")
    again = browser.follow(onward_url(late), stop_prefix="\x00")
    assert again.status_code == 200 and 'name="password"' in again.text  # the login page anew
    # With no school known: the home, whose list has every school.
    unknown = Browser(idp).http.get(f"{idp}/authorize/resume?ix=gone", timeout=10)
    assert unknown.status_code == 400 and HOME in unknown.text and onward(unknown) is None


def test_error_pages_lead_home_or_to_the_school(idp, make_tenant, make_person):
    kool = make_tenant("Laagri Kool")
    stranger = Browser(idp)
    missing = stranger.http.get(f"{idp}/no-such-page", timeout=10)
    assert missing.status_code == 404 and HOME in missing.text
    reopened = stranger.http.get(f"{idp}/link/confirm", timeout=10)
    assert reopened.status_code == 405 and "<h1>Lubamatu päring</h1>" in reopened.text
    assert HOME in reopened.text
    browser = Browser(idp)
    sign_in_at_school(browser, kool.url, make_person(kool.client))
    reopened = browser.http.get(f"{idp}/link/confirm", timeout=10)
    assert onward(reopened) == (login_initiation(idp, kool), "Tagasi kooli Laagri Kool")


def test_a_page_answering_a_form_switches_language_without_a_dead_end(
    idp, make_tenant, make_person
):
    kool = make_tenant()
    browser = Browser(idp)
    sign_in_at_school(browser, kool.url, make_person(kool.client))
    page, _ = sessions_page(browser)
    asked = post_form(browser, page, "/account/sessions/end-all")
    # The switch on a page that answered a POST returns to a page that opens by its address.
    assert '<input type="hidden" name="next" value="/account/sessions">' in asked.text


def test_a_link_sign_in_without_a_password_offers_to_set_one(
    idp, idp_app, make_tenant, make_person, inbox
):
    from idp.models import Account, Person
    from shared.db import get_db

    kool = make_tenant("Laagri Kool")
    person = make_person(kool.client)
    with idp_app.app_context():  # a parent whose account came from an application
        db = get_db()
        account = db.scalars(select(Account).where(Account.sub == person.sub)).one()
        db.get_one(Person, account.person_id).password_hash = None
        db.commit()
    browser = Browser(idp)
    post_public_form(browser, f"{idp}/s/{kool.client.slug}/access", {"email": person.email})
    [message] = inbox(person.email)
    page_url, token = link_of(message)
    used = post_public_form(browser, page_url, {"token": token})
    assert used.status_code == 303
    assert used.headers["Location"] == f"/account/password?school={kool.client.slug}"
    offer = browser.http.get(f"{idp}{used.headers['Location']}", timeout=10)
    assert "<h1>Sea endale parool</h1>" in offer.text
    skip = re.search(r'id="skip" href="([^"]+)">([^<]+)</a>', offer.text)
    assert skip and skip.group(2) == "Jäta vahele ja mine kooli Laagri Kool"
    assert html.unescape(skip.group(1)) == login_initiation(idp, kool)
    new = "Kaks kassi jalutavad mööda katust"
    saved = post_form(browser, offer, "/account/password", new_password=new, new_password_again=new)
    assert "<h1>Parool on salvestatud</h1>" in saved.text
    assert onward(saved) == (login_initiation(idp, kool), "Tagasi kooli Laagri Kool")
    landed = browser.follow(onward_url(saved), stop_prefix="\x00")
    assert landed.url.startswith(kool.url) and signed_in_at(browser, kool)
