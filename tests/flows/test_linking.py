"""Seo oma konto teise kooliga: proven control of both accounts plus matching personal data, then
one person; every refusal of issue 5 merges nothing; unlink splits an account off again."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select
from stdnum.ee import ik

from tests.support import CSRF_RE, Browser, PersonLogin, Tenant, sign_in_at_school

ATTEMPT_RE = re.compile(r'name="attempt" value="([^"]+)"')


def code(ten_digits: str) -> str:
    """A checksum-valid isikukood from its first ten digits."""
    return ten_digits + ik.calc_check_digit(ten_digits + "0")


JURI = code("3800108571")
OTHER_CODE = code("3800108572")


class Linker:
    """A person's browser at the IdP's linking pages."""

    def __init__(self, idp: str, browser: Browser) -> None:
        self.idp = idp
        self.browser = browser

    def csrf(self, page: requests.Response) -> str:
        found = CSRF_RE.search(page.text)
        assert found, page.text
        return found.group(1)

    def start(self, source: Tenant, target: Tenant) -> str:
        """Open the start page as the profile's button does, choose the target; the attempt."""
        page = self.browser.http.get(
            f"{self.idp}/link/start", params={"school": source.client.slug}, timeout=10
        )
        assert page.status_code == 200 and target.client.name in page.text, page.text
        assert f'value="{source.client.slug}"' in page.text
        login = self.post("/link/start", page, target=target.client.slug, source=source.client.slug)
        assert login.status_code == 200 and 'name="password"' in login.text, login.text
        assert target.client.name in login.text
        found = ATTEMPT_RE.search(login.text)
        assert found
        return found.group(1)

    def post(self, path: str, page: requests.Response, **form: str) -> requests.Response:
        return self.browser.http.post(
            f"{self.idp}{path}",
            data={"csrf_token": self.csrf(page), **form},
            allow_redirects=False,
            timeout=10,
        )

    def prove(self, attempt: str, school: Tenant, person: PersonLogin) -> requests.Response:
        """Log in to the other account inside the attempt."""
        page = self.browser.http.get(f"{self.idp}/account", timeout=10)
        return self.post(
            "/link/login",
            page,
            attempt=attempt,
            school=school.client.slug,
            email=person.email,
            password=person.password,
        )

    def confirm(self, attempt: str, **choices: str) -> requests.Response:
        page = self.browser.http.get(f"{self.idp}/account", timeout=10)
        return self.post("/link/confirm", page, attempt=attempt, **choices)

    def link(
        self, source: Tenant, target: Tenant, person: PersonLogin, **choices: str
    ) -> requests.Response:
        attempt = self.start(source, target)
        shown = self.prove(attempt, target, person)
        assert shown.status_code == 200 and "Kinnita kontode sidumine" in shown.text, shown.text
        return self.confirm(attempt, **choices)


@pytest.fixture
def linker(idp: str) -> Callable[[Tenant, PersonLogin], Linker]:
    """A browser signed in at a school, ready to link."""

    def make(school: Tenant, person: PersonLogin) -> Linker:
        browser = Browser(idp)
        sign_in_at_school(browser, school.url, person)
        return Linker(idp, browser)

    return make


@pytest.fixture
def idp_db(idp_app: Flask) -> Callable[[Callable[[Any], Any]], Any]:
    """Run a function with the IdP's database session and commit."""
    from shared.db import get_db

    def run(fn: Callable[[Any], Any]) -> Any:
        with idp_app.app_context():
            db = get_db()
            result = fn(db)
            db.commit()
            return result

    return run


def person_of(idp_db, sub: str) -> int:
    from idp.models import Account

    return int(idp_db(lambda db: db.scalar(select(Account.person_id).where(Account.sub == sub))))


def events(idp_db, person_id: int) -> list[tuple[int, str, list[str], str]]:
    """The outbox events of the person's accounts: (version, sub, changed, reason), in order."""
    from idp.models import Account, Delivery

    def read(db):
        subs = set(db.scalars(select(Account.sub).where(Account.person_id == person_id)))
        rows = db.scalars(
            select(Delivery).where(Delivery.kind == "event").order_by(Delivery.id)
        ).all()
        return [
            (r.payload["version"], r.payload["sub"], r.payload["changed"], r.payload["reason"])
            for r in rows
            if r.payload["sub"] in subs
        ]

    return idp_db(read)


def nav_schools(browser: Browser, school: Tenant) -> str:
    """The other schools in a school's navigation bar."""
    home = browser.http.get(school.url + "/", timeout=10)
    assert home.status_code == 200
    found = re.search(r'<nav class="schools.*?</nav>', home.text, re.S)
    assert found, home.text
    return " ".join(re.findall(r'<a class="school-jump".*?</a>', found.group(0), re.S))


def test_matching_accounts_link_and_one_login_opens_both(
    idp, make_tenant, make_person, linker, idp_db
):
    kool, huvikool = make_tenant("Laagri Kool"), make_tenant("Laagri Huvialakool")
    mine = make_person(kool.client, "Jüri", "Mägi", isikukood=JURI)
    theirs = make_person(huvikool.client, " jüri ", "MÄGI", isikukood=JURI)
    # The other account is signed in elsewhere: merging ends that session.
    elsewhere = Browser(idp)
    sign_in_at_school(elsewhere, huvikool.url, theirs)
    before = max((v for v, *_ in events(idp_db, person_of(idp_db, mine.sub))), default=0)
    me = linker(kool, mine)
    assert huvikool.client.name not in nav_schools(me.browser, kool)
    profile = me.browser.http.get(kool.url + "/profile", timeout=10)
    assert f"/link/start?school={kool.client.slug}" in profile.text
    assert "Seo oma konto teise kooliga" in profile.text
    sso_cookie = me.browser.http.cookies.get("stuudium_idp_sso")

    attempt = me.start(kool, huvikool)
    shown = me.prove(attempt, huvikool, theirs)
    assert "Kinnita kontode sidumine" in shown.text
    assert "Laagri Kool" in shown.text and "Laagri Huvialakool" in shown.text
    # The e-mails differ: the person chooses; the password stays the initiator's.
    assert mine.email in shown.text and theirs.email in shown.text
    assert "Parooliks jääb sinu praegune parool" in shown.text
    # The second login gave no session and left this browser's session as it was.
    assert me.browser.http.cookies.get("stuudium_idp_sso") == sso_cookie
    done = me.confirm(attempt, email="mine")
    assert done.status_code == 200 and "Kontod on seotud" in done.text, done.text
    # Linking renews the session's cookie: the one from before the link opens nothing now.
    renewed = me.browser.http.cookies.get("stuudium_idp_sso")
    assert renewed and renewed != sso_cookie
    before_link = requests.get(
        f"{idp}/account", cookies={"stuudium_idp_sso": sso_cookie}, timeout=10
    )
    assert "Sa ei ole sisse logitud" in before_link.text

    person = person_of(idp_db, mine.sub)
    assert person_of(idp_db, theirs.sub) == person
    # The way back signs in at the school again: its navigation shows the linked school.
    back = re.search(r'id="back" href="([^"]+)"', done.text)
    assert back, done.text
    landed = me.browser.follow(back.group(1).replace("&amp;", "&"), stop_prefix="\x00")
    assert landed.status_code == 200 and landed.url.startswith(kool.url + "/profile")
    assert huvikool.client.name in nav_schools(me.browser, kool)
    jump = re.search(r'class="school-jump" href="([^"]+)"', landed.text)
    assert jump, landed.text
    there = me.browser.follow(jump.group(1).replace("&amp;", "&"), stop_prefix="\x00")
    assert there.status_code == 200 and there.url.startswith(huvikool.url)
    assert 'name="password"' not in there.text and "Jüri Mägi" in there.text
    assert kool.client.name in nav_schools(me.browser, huvikool)

    # The absorbed person's session ended; its school got a logout.
    assert "Sa ei ole sisse logitud" in elsewhere.http.get(f"{idp}/account", timeout=10).text
    assert (
        elsewhere.http.get(huvikool.url + "/profile", allow_redirects=False, timeout=10).status_code
        == 303
    )
    # Both schools were told with a newer version, the full state.
    told = events(idp_db, person)
    link_events = [e for e in told if e[3] == "link"]
    assert {e[1] for e in link_events} == {mine.sub, theirs.sub}
    assert all(e[0] > before for e in link_events)
    assert all("given_name" in e[2] and "schools" in e[2] for e in link_events)
    # One password now: the initiator's opens the other school, the absorbed one does not.
    fresh = Browser(idp)
    sign_in_at_school(fresh, huvikool.url, PersonLogin(mine.email, mine.password, "", "", ""))
    stale = Browser(idp)
    page = stale.follow(f"{huvikool.url}/auth/login", stop_prefix="\x00")
    refused = stale.submit_login(page, theirs.email, theirs.password, stop_prefix="\x00")
    assert "E-posti aadress või parool on vale" in refused.text


def test_the_contact_details_chosen_are_kept(make_tenant, make_person, linker, idp_db):
    from idp.models import Account, Person

    kool, huvikool = make_tenant(), make_tenant()
    mine = make_person(kool.client, "Anu", "Õun")
    theirs = make_person(huvikool.client, "Anu", "Õun")
    me = linker(kool, mine)
    assert "Kontod on seotud" in me.link(kool, huvikool, theirs, email="theirs").text
    person = person_of(idp_db, mine.sub)
    email, logins = idp_db(
        lambda db: (
            db.get(Person, person).email,
            set(db.scalars(select(Account.login_email).where(Account.person_id == person))),
        )
    )
    assert email == theirs.email and logins == {theirs.email}


def _mismatch(make_tenant, make_person, linker, idp_db, mine_data, their_data, tweak=None) -> str:
    kool, huvikool = make_tenant(), make_tenant()
    mine = make_person(kool.client, **mine_data)
    theirs = make_person(huvikool.client, **their_data)
    if tweak:
        idp_db(lambda db: tweak(db, person_of(idp_db, theirs.sub)))
    me = linker(kool, mine)
    attempt = me.start(kool, huvikool)
    shown = me.prove(attempt, huvikool, theirs)
    assert shown.status_code == 409 and "Andmed ei klapi" in shown.text, shown.text
    assert "klassijuhataja" in shown.text and "administraator" in shown.text
    # Nothing merged, and the attempt cannot be confirmed afterwards.
    assert person_of(idp_db, mine.sub) != person_of(idp_db, theirs.sub)
    assert "Kinnita" not in shown.text
    assert me.confirm(attempt).status_code == 400
    assert person_of(idp_db, mine.sub) != person_of(idp_db, theirs.sub)
    return shown.text


def test_a_different_isikukood_is_refused(make_tenant, make_person, linker, idp_db):
    text = _mismatch(
        make_tenant,
        make_person,
        linker,
        idp_db,
        {"given_name": "Jüri", "family_name": "Mägi", "isikukood": JURI},
        {"given_name": "Jüri", "family_name": "Mägi", "isikukood": OTHER_CODE},
    )
    assert "<li>isikukood</li>" in text
    assert OTHER_CODE not in text and JURI not in text


def test_the_same_isikukood_with_another_name_is_refused(make_tenant, make_person, linker, idp_db):
    text = _mismatch(
        make_tenant,
        make_person,
        linker,
        idp_db,
        {"given_name": "Jüri", "family_name": "Mägi", "isikukood": JURI},
        {"given_name": "Jüri", "family_name": "Magi", "isikukood": JURI},
    )
    assert "<li>perekonnanimi</li>" in text and "<li>eesnimi</li>" not in text


def test_the_same_isikukood_with_another_birth_date_is_refused(
    make_tenant, make_person, linker, idp_db
):
    from idp.models import Person

    def other_birthday(db, person_id):
        db.get(Person, person_id).birth_date = dt.date(1980, 1, 9)

    text = _mismatch(
        make_tenant,
        make_person,
        linker,
        idp_db,
        {"given_name": "Jüri", "family_name": "Mägi", "isikukood": JURI},
        {"given_name": "Jüri", "family_name": "Mägi", "isikukood": JURI},
        other_birthday,
    )
    assert "<li>sünniaeg</li>" in text


def test_only_the_email_in_common_is_refused(make_tenant, make_person, linker, idp_db):
    text = _mismatch(
        make_tenant,
        make_person,
        linker,
        idp_db,
        {"given_name": "Mari", "family_name": "Maasikas", "email": "pere@example.ee"},
        {"given_name": "Kati", "family_name": "Karu", "email": "pere@example.ee"},
    )
    assert "<li>eesnimi</li>" in text and "<li>perekonnanimi</li>" in text


@pytest.fixture
def two_schools(make_tenant, make_person, linker):
    """Two matching people at two schools, the first signed in at the first school."""
    kool, huvikool = make_tenant(), make_tenant()
    mine = make_person(kool.client, "Jüri", "Mägi", isikukood=JURI)
    theirs = make_person(huvikool.client, "Jüri", "Mägi", isikukood=JURI)
    return kool, huvikool, mine, theirs, linker(kool, mine)


def test_a_replayed_attempt_is_refused(two_schools, idp_db):
    kool, huvikool, mine, theirs, me = two_schools
    attempt = me.start(kool, huvikool)
    assert "Kinnita" in me.prove(attempt, huvikool, theirs).text
    assert "Kontod on seotud" in me.confirm(attempt).text
    again = me.confirm(attempt)
    assert again.status_code == 400 and "juba kasutatud" in again.text
    assert me.prove(attempt, huvikool, theirs).status_code == 400


def test_two_confirmations_at_once_merge_once(two_schools, idp_db):
    from concurrent.futures import ThreadPoolExecutor

    from idp.models import AuditEvent

    kool, huvikool, mine, theirs, me = two_schools
    attempt = me.start(kool, huvikool)
    assert "Kinnita" in me.prove(attempt, huvikool, theirs).text
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: me.confirm(attempt), range(2)))
    # One merges. The other finds the attempt used — or, when it is read after the first one
    # renewed the session's cookie secret, the cookie it carries dead: not signed in.
    done = [a for a in answers if a.status_code == 200 and "Kontod on seotud" in a.text]
    assert len(done) == 1, [a.text for a in answers]
    other = next(a for a in answers if a is not done[0])
    assert (other.status_code == 400 and "juba kasutatud" in other.text) or (
        other.status_code == 200 and "Sa ei ole sisse logitud" in other.text
    ), other.text
    person = person_of(idp_db, mine.sub)
    links = idp_db(
        lambda db: db.scalars(
            select(AuditEvent.id).where(
                AuditEvent.action == "person.link", AuditEvent.person_id == person
            )
        ).all()
    )
    assert len(links) == 1
    assert len([e for e in events(idp_db, person) if e[3] == "link"]) == 2


def test_an_attempt_from_another_session_is_refused(two_schools, idp, idp_db):
    kool, huvikool, mine, theirs, me = two_schools
    attempt = me.start(kool, huvikool)
    # The same person signed in in another browser: the attempt is not that session's.
    other = Linker(idp, Browser(idp))
    sign_in_at_school(other.browser, kool.url, mine)
    refused = other.prove(attempt, huvikool, theirs)
    assert refused.status_code == 400 and "teises seansis" in refused.text
    assert "Kinnita" in me.prove(attempt, huvikool, theirs).text
    refused = other.confirm(attempt)
    assert refused.status_code == 400 and "teises seansis" in refused.text
    assert person_of(idp_db, mine.sub) != person_of(idp_db, theirs.sub)


def test_an_expired_attempt_is_refused(two_schools, idp_db):
    from idp.models import LinkAttempt, utcnow

    kool, huvikool, mine, theirs, me = two_schools
    attempt = me.start(kool, huvikool)
    assert "Kinnita" in me.prove(attempt, huvikool, theirs).text

    def expire(db):
        for row in db.scalars(
            select(LinkAttempt).where(LinkAttempt.person_id == person_of(idp_db, mine.sub))
        ):
            row.expires_at = utcnow() - dt.timedelta(seconds=1)

    idp_db(expire)
    refused = me.confirm(attempt)
    assert refused.status_code == 400 and "aeg sai läbi" in refused.text
    assert person_of(idp_db, mine.sub) != person_of(idp_db, theirs.sub)


def test_an_attempt_lasts_ten_minutes(two_schools, idp_db):
    from idp.models import LinkAttempt

    kool, huvikool, mine, theirs, me = two_schools
    me.start(kool, huvikool)
    lifetime = idp_db(
        lambda db: [
            a.expires_at - a.created_at
            for a in db.scalars(
                select(LinkAttempt).where(LinkAttempt.person_id == person_of(idp_db, mine.sub))
            )
        ]
    )
    assert lifetime == [dt.timedelta(minutes=10)]


def test_a_login_at_a_third_school_is_refused(two_schools, make_tenant, make_person, idp_db):
    kool, huvikool, mine, theirs, me = two_schools
    kolmas = make_tenant()
    third = make_person(kolmas.client, "Jüri", "Mägi", isikukood=JURI)
    attempt = me.start(kool, huvikool)
    # The form sent to a third school than the one chosen.
    refused = me.prove(attempt, kolmas, third)
    assert refused.status_code == 400 and "teise kooliga" in refused.text
    # The third school's account at the chosen school's form: no such account there.
    wrong = me.prove(attempt, huvikool, third)
    assert wrong.status_code == 200 and "E-posti aadress või parool on vale" in wrong.text
    refused = me.confirm(attempt)
    assert refused.status_code == 400 and "Logi enne teise kontoga sisse" in refused.text
    assert len({person_of(idp_db, p.sub) for p in (mine, theirs, third)}) == 3


def test_linking_an_account_not_logged_in_to_is_refused(two_schools, idp_db):
    kool, huvikool, mine, theirs, me = two_schools
    attempt = me.start(kool, huvikool)
    refused = me.confirm(attempt)
    assert refused.status_code == 400 and "Logi enne teise kontoga sisse" in refused.text
    wrong = me.prove(attempt, huvikool, PersonLogin(theirs.email, "vale-parool-123", "", "", ""))
    assert "E-posti aadress või parool on vale" in wrong.text
    assert me.confirm(attempt).status_code == 400
    assert person_of(idp_db, mine.sub) != person_of(idp_db, theirs.sub)


def test_a_merge_giving_two_accounts_at_one_school_is_refused(
    two_schools, make_tenant, link_account, idp_db
):
    kool, huvikool, mine, theirs, me = two_schools
    lasteaed = make_tenant()
    link_account(mine, lasteaed.client, ["parent"])
    link_account(theirs, lasteaed.client, ["staff"])
    attempt = me.start(kool, huvikool)
    assert "Kinnita" in me.prove(attempt, huvikool, theirs).text
    refused = me.confirm(attempt)
    assert refused.status_code == 409 and "kaks kontot" in refused.text
    assert lasteaed.client.name in refused.text
    assert person_of(idp_db, mine.sub) != person_of(idp_db, theirs.sub)


def test_several_links_and_versions_only_grow(make_tenant, make_person, linker, idp_db):
    kool, huvikool, lasteaed = make_tenant(), make_tenant(), make_tenant()
    mine = make_person(kool.client, "Jüri", "Mägi", isikukood=JURI, roles=("teacher",))
    second = make_person(huvikool.client, "Jüri", "Mägi", isikukood=JURI)
    third = make_person(lasteaed.client, "Jüri", "Mägi", roles=("staff",))
    me = linker(kool, mine)
    assert "Kontod on seotud" in me.link(kool, huvikool, second).text
    start = me.browser.http.get(
        f"{me.idp}/link/start", params={"school": kool.client.slug}, timeout=10
    )
    assert huvikool.client.name not in start.text and lasteaed.client.name in start.text
    assert "Kontod on seotud" in me.link(kool, lasteaed, third).text
    person = person_of(idp_db, mine.sub)
    assert {person_of(idp_db, p.sub) for p in (second, third)} == {person}
    sign_in_at_school(fresh := Browser(me.idp), kool.url, mine)
    nav = nav_schools(fresh, kool)
    assert huvikool.client.name in nav and lasteaed.client.name in nav
    versions = [v for v, *_ in events(idp_db, person)]
    assert versions == sorted(versions)
    last_link = [e for e in events(idp_db, person) if e[3] == "link"][-3:]
    assert {e[1] for e in last_link} == {mine.sub, second.sub, third.sub}
    assert len({e[0] for e in last_link}) == 1  # one change, one version, every school


def test_unlink_splits_the_account_off_and_ends_that_school(
    make_tenant, make_person, linker, idp_db, idp
):
    from idp.models import Person

    kool, huvikool = make_tenant(), make_tenant()
    mine = make_person(kool.client, "Jüri", "Mägi", isikukood=JURI)
    theirs = make_person(huvikool.client, "Jüri", "Mägi", isikukood=JURI)
    me = linker(kool, mine)
    assert "Kontod on seotud" in me.link(kool, huvikool, theirs).text
    # This browser at both schools (no password asked: one login); another browser logged in
    # at the other school directly.
    entered = me.browser.follow(f"{huvikool.url}/auth/login", stop_prefix="\x00")
    assert entered.status_code == 200 and entered.url.startswith(huvikool.url)
    there = Browser(idp)
    sign_in_at_school(there, huvikool.url, mine)
    person = person_of(idp_db, mine.sub)
    version = idp_db(lambda db: db.get(Person, person).version)

    account = me.browser.http.get(f"{idp}/account", timeout=10)
    assert "Seotud koolid" in account.text and account.text.count("Eemalda seos") == 2
    done = me.post("/account/unlink", account, school=huvikool.client.slug)
    assert done.status_code == 200 and "Seos on eemaldatud" in done.text, done.text

    split = person_of(idp_db, theirs.sub)
    assert split != person and person_of(idp_db, mine.sub) == person
    copy = idp_db(lambda db: db.get(Person, split))
    assert (copy.given_name, copy.isikukood, copy.password_hash) == ("Jüri", JURI, None)
    # That school's session here ended; the rest continues.
    assert (
        me.browser.http.get(
            huvikool.url + "/profile", allow_redirects=False, timeout=10
        ).status_code
        == 303
    )
    assert (
        me.browser.http.get(kool.url + "/profile", allow_redirects=False, timeout=10).status_code
        == 200
    )
    page = me.browser.http.get(f"{idp}/account", timeout=10)
    assert "Sinu Stuudium ID" in page.text and "Eemalda seos" not in page.text
    # The session that logged in with the split-off account ended entirely.
    assert "Sa ei ole sisse logitud" in there.http.get(f"{idp}/account", timeout=10).text
    # Both persons' schools told, with newer versions.
    assert [e[1] for e in events(idp_db, split) if e[3] == "unlink"] == [theirs.sub]
    assert [e[1] for e in events(idp_db, person) if e[3] == "unlink"] == [mine.sub]
    assert all(
        e[0] > version for e in events(idp_db, split) + events(idp_db, person) if e[3] == "unlink"
    )


def test_unlinking_the_school_this_session_logged_in_with_ends_it(two_schools, idp, idp_db):
    kool, huvikool, mine, theirs, me = two_schools
    assert "Kontod on seotud" in me.link(kool, huvikool, theirs).text
    account = me.browser.http.get(f"{idp}/account", timeout=10)
    done = me.post("/account/unlink", account, school=kool.client.slug)
    assert done.status_code == 200 and "Seos on eemaldatud" in done.text
    assert "Sa ei ole sisse logitud" in me.browser.http.get(f"{idp}/account", timeout=10).text
    assert (
        me.browser.http.get(kool.url + "/profile", allow_redirects=False, timeout=10).status_code
        == 303
    )
    # The account at the other school stays with the person; the one logged in with is apart.
    assert person_of(idp_db, theirs.sub) != person_of(idp_db, mine.sub)
    fresh = Browser(idp)
    sign_in_at_school(fresh, huvikool.url, mine)


def test_one_school_has_nothing_to_unlink(make_tenant, make_person, linker, idp):
    kool = make_tenant()
    mine = make_person(kool.client)
    me = linker(kool, mine)
    account = me.browser.http.get(f"{idp}/account", timeout=10)
    assert "Seotud koolid" in account.text and "Eemalda seos" not in account.text
    refused = me.post("/account/unlink", account, school=kool.client.slug)
    assert refused.status_code == 400 and "Pole midagi eemaldada" in refused.text


def test_linking_needs_a_signed_in_browser(idp, make_tenant):
    kool = make_tenant()
    page = requests.get(f"{idp}/link/start", params={"school": kool.client.slug}, timeout=10)
    assert "Sa ei ole sisse logitud" in page.text
