"""The IdP's own pages: "Sinu Stuudium ID", the sessions page (device, started, last used,
schools), ending one session or all of them, and what a browser without a session sees."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import requests

from tests.flows.idp_account import (
    CHROME_LINUX,
    NOT_SIGNED_IN,
    SAFARI_IPHONE,
    browser_with,
    jump_in,
    post_form,
    school_states,
    sessions_page,
    signed_in_at,
)
from tests.flows.test_school_sso import _sign_in
from tests.support import Browser

TALLINN = ZoneInfo("Europe/Tallinn")


def _tallinn_minutes(*minutes_ago: int) -> set[str]:
    now = dt.datetime.now(TALLINN)
    return {(now - dt.timedelta(minutes=m)).strftime("%d.%m.%Y %H:%M") for m in minutes_ago}


def _two_browsers(idp, make_tenant, make_person, link_account):
    """One person on a laptop (at two schools) and a phone (at one)."""
    kool, lasteaed = make_tenant("Laagri Kool"), make_tenant("Laagri Lasteaed")
    person = make_person(kool.client, given_name="Tiina", family_name="Õunapuu")
    link_account(person, lasteaed.client, ["parent"])
    laptop, phone = browser_with(idp, CHROME_LINUX), browser_with(idp, SAFARI_IPHONE)
    _sign_in(laptop, kool.url, person)
    jump_in(laptop, lasteaed)
    _sign_in(phone, kool.url, person)
    return kool, lasteaed, person, laptop, phone


def test_the_sessions_page_lists_every_device_with_its_schools(
    idp, make_tenant, make_person, link_account
):
    kool, lasteaed, _, laptop, phone = _two_browsers(idp, make_tenant, make_person, link_account)
    page, listed = sessions_page(laptop)
    assert "<h1>Sinu seansid</h1>" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert len(listed) == 2
    this, other = listed
    assert this.current and not other.current
    assert "(see seade)" in page.text.split(f'data-sid="{other.sid}"')[0]
    assert (this.device, this.schools) == ("Chrome, Linux", "Koolid: Laagri Kool, Laagri Lasteaed")
    assert (other.device, other.schools) == ("Safari, iPhone", "Koolid: Laagri Kool")
    recent = _tallinn_minutes(0, 1)
    for entry in listed:
        assert entry.started in recent and entry.last_used in recent
    # The phone sees the same two sessions, itself as "see seade".
    _, seen_by_phone = sessions_page(phone)
    assert [(s.sid, s.current) for s in seen_by_phone] == [(other.sid, True), (this.sid, False)]


def test_each_button_says_which_session_it_ends(idp, make_tenant, make_person, link_account):
    _, _, _, laptop, _ = _two_browsers(idp, make_tenant, make_person, link_account)
    page, listed = sessions_page(laptop)
    this, other = (page.text.split(f'data-sid="{s.sid}"')[1].split("</li>")[0] for s in listed)
    # Per-session buttons are secondary; "Logi välja kõikjal" stays the page's main action.
    assert '<button type="submit" class="secondary end-one">Logi välja siin (see seade)' in this
    assert '<button type="submit" class="secondary end-one">Lõpeta seanss: Safari, iPhone' in other
    assert "see seade" not in other


def _seen(idp_app, sid: str, sql_minutes_ago: int, redis_minutes_ago: int) -> None:
    """As if the session's last refresh (SQL) and last renewal (Redis) were that long ago."""
    from idp.models import SsoSession, utcnow
    from shared.db import get_db

    with idp_app.app_context():
        db = get_db()
        db.get_one(SsoSession, sid).last_seen = utcnow() - dt.timedelta(minutes=sql_minutes_ago)
        db.commit()
    idle = idp_app.config["SESSION_IDLE_SECONDS"]
    idp_app.extensions["redis"].expire(f"idp:sid:{sid}", idle - 60 * redis_minutes_ago)


def test_last_used_is_the_later_of_refresh_and_renewal(
    idp, idp_app, make_tenant, make_person, link_account
):
    _, _, _, laptop, _ = _two_browsers(idp, make_tenant, make_person, link_account)
    _, listed = sessions_page(laptop)
    phone_sid = listed[1].sid
    _seen(idp_app, phone_sid, sql_minutes_ago=20, redis_minutes_ago=10)
    _, listed = sessions_page(laptop)
    assert listed[1].sid == phone_sid
    assert listed[1].last_used in _tallinn_minutes(10, 11)
    assert listed[1].started in _tallinn_minutes(0, 1)
    _seen(idp_app, phone_sid, sql_minutes_ago=5, redis_minutes_ago=10)
    assert sessions_page(laptop)[1][1].last_used in _tallinn_minutes(5, 6)
    # Opening the page is using this browser's session.
    assert sessions_page(laptop)[1][0].last_used in _tallinn_minutes(0, 1)


def test_ending_the_other_device_ends_only_it(idp, make_tenant, make_person, link_account):
    kool, lasteaed, _, laptop, phone = _two_browsers(idp, make_tenant, make_person, link_account)
    page, listed = sessions_page(laptop)
    phone_sid = listed[1].sid
    done = post_form(laptop, page, "/account/sessions/end", sid=phone_sid)
    assert done.status_code == 200
    assert "<h1>Seanss on lõpetatud</h1>" in done.text
    assert school_states(done) == {"Laagri Kool": "delivered"}
    assert 'id="back" href="/account/sessions"' in done.text
    assert "stuudium_idp_sso" in laptop.http.cookies.get_dict()
    # The phone is out of the school and of the IdP; the laptop is in both schools still.
    assert not signed_in_at(phone, kool)
    assert NOT_SIGNED_IN in phone.http.get(f"{idp}/account/sessions", timeout=10).text
    assert signed_in_at(laptop, kool) and signed_in_at(laptop, lasteaed)
    _, listed = sessions_page(laptop)
    assert [(s.device, s.current) for s in listed] == [("Chrome, Linux", True)]


def test_ending_this_device_from_the_list_logs_it_out(idp, make_tenant, make_person, link_account):
    kool, lasteaed, _, laptop, phone = _two_browsers(idp, make_tenant, make_person, link_account)
    page, listed = sessions_page(laptop)
    done = post_form(laptop, page, "/account/sessions/end", sid=listed[0].sid)
    assert "<h1>Oled välja logitud</h1>" in done.text
    assert school_states(done) == {"Laagri Kool": "delivered", "Laagri Lasteaed": "delivered"}
    assert "stuudium_idp_sso" not in laptop.http.cookies.get_dict()
    assert not signed_in_at(laptop, kool) and not signed_in_at(laptop, lasteaed)
    assert signed_in_at(phone, kool)


def test_log_out_everywhere_ends_every_session_and_tells_every_school(
    idp, make_tenant, make_person, link_account
):
    kool, lasteaed, _, laptop, phone = _two_browsers(idp, make_tenant, make_person, link_account)
    # Offered on the sessions page and on the overview.
    assert 'id="end-all">Logi välja kõikjal</button>' in sessions_page(phone)[0].text
    page = phone.http.get(f"{idp}/account", timeout=10)
    assert 'id="end-all">Logi välja kõikjal</button>' in page.text
    # Asked first: the question lists what ends, and ends nothing yet.
    asked = post_form(phone, page, "/account/sessions/end-all")
    assert asked.status_code == 200 and "<h1>Kas logid välja kõikjal?</h1>" in asked.text
    assert asked.text.count('<li class="session-summary">') == 2
    assert "Chrome, Linux: Laagri Kool, Laagri Lasteaed" in asked.text
    assert 'id="cancel" href="/account/sessions"' in asked.text
    assert all(signed_in_at(b, s) for b, s in ((laptop, kool), (laptop, lasteaed), (phone, kool)))
    done = post_form(phone, asked, "/account/sessions/end-all", confirm="yes")
    assert done.status_code == 200
    assert "<h1>Oled kõikjal välja logitud</h1>" in done.text
    # The way on: the school this phone signed in to, at its front page.
    assert f'id="onward" href="{kool.url}">Tagasi kooli Laagri Kool</a>' in done.text
    # One logout message per school and session: Laagri Kool twice (laptop and phone).
    assert school_states(done) == {"Laagri Kool": "delivered", "Laagri Lasteaed": "delivered"}
    assert done.text.count('data-state="delivered"') == 3
    assert "stuudium_idp_sso" not in phone.http.cookies.get_dict()
    for browser, school in ((laptop, kool), (laptop, lasteaed), (phone, kool)):
        assert not signed_in_at(browser, school)
    for browser in (laptop, phone):
        assert NOT_SIGNED_IN in browser.http.get(f"{idp}/account", timeout=10).text


def test_another_persons_session_cannot_be_ended(idp, make_tenant, make_person):
    kool = make_tenant("Laagri Kool")
    mari, jaan = make_person(kool.client), make_person(kool.client, "Jaan", "Tamm")
    mine, theirs = browser_with(idp, CHROME_LINUX), browser_with(idp, SAFARI_IPHONE)
    _sign_in(mine, kool.url, mari)
    _sign_in(theirs, kool.url, jaan)
    _, their_list = sessions_page(theirs)
    page, _ = sessions_page(mine)
    refused = post_form(mine, page, "/account/sessions/end", sid=their_list[0].sid)
    assert refused.status_code == 404
    assert "<h1>Seanssi ei leitud</h1>" in refused.text
    unknown = post_form(mine, page, "/account/sessions/end", sid="no-such-session")
    assert unknown.status_code == 404
    assert signed_in_at(theirs, kool) and signed_in_at(mine, kool)
    assert [s.sid for s in sessions_page(theirs)[1]] == [their_list[0].sid]


def test_forms_without_the_csrf_token_end_nothing(idp, make_tenant, make_person):
    kool = make_tenant()
    person = make_person(kool.client)
    laptop, phone = browser_with(idp, CHROME_LINUX), browser_with(idp, SAFARI_IPHONE)
    _sign_in(laptop, kool.url, person)
    _sign_in(phone, kool.url, person)
    _, listed = sessions_page(laptop)
    for path, data in (
        ("/account/sessions/end", {"sid": listed[1].sid}),
        ("/account/sessions/end-all", {}),
        ("/account/sessions/end-all", {"csrf_token": "forged"}),
        ("/account/sessions/end-all", {"confirm": "yes"}),
    ):
        resp = laptop.http.post(f"{idp}{path}", data=data, allow_redirects=False, timeout=10)
        assert resp.status_code == 400 and "<h1>Vorm aegus</h1>" in resp.text
    assert signed_in_at(laptop, kool) and signed_in_at(phone, kool)
    assert len(sessions_page(laptop)[1]) == 2


def test_the_overview_and_the_schools_profile_link(idp, make_tenant, make_person):
    kool = make_tenant("Laagri Kool")
    person = make_person(kool.client, given_name="Tiina", family_name="Õunapuu")
    browser = Browser(idp)
    _sign_in(browser, kool.url, person)
    profile = browser.http.get(f"{kool.url}/profile", timeout=10)
    assert (
        f'<a id="idp-account" href="{idp}/account">Stuudium ID: seansid ja parool</a>'
        in profile.text
    )
    page = browser.http.get(f"{idp}/account", timeout=10)
    assert page.status_code == 200 and "<h1>Sinu Stuudium ID</h1>" in page.text
    assert '<strong id="name">Tiina Õunapuu</strong>' in page.text
    assert person.email in page.text
    assert 'href="/account/sessions"' in page.text and 'href="/account/password"' in page.text


def test_without_a_session_the_pages_say_how_to_sign_in(idp, make_tenant, make_person):
    stranger = Browser(idp)
    for path in ("/account", "/account/sessions", "/account/password"):
        page = stranger.http.get(f"{idp}{path}", timeout=10)
        assert page.status_code == 200 and NOT_SIGNED_IN in page.text
        # The way to sign in: every active school, through its login initiation URI.
        assert "Logi sisse oma kooli kaudu" in page.text and 'id="schools"' in page.text
    # A cookie that names no session is no session either.
    stranger.http.cookies.set("stuudium_idp_sso", "made-up", domain="127.0.0.1")
    page = stranger.http.get(f"{idp}/account/sessions", timeout=10)
    assert NOT_SIGNED_IN in page.text
    resp = requests.post(f"{idp}/account/sessions/end-all", timeout=10)
    assert NOT_SIGNED_IN in resp.text
