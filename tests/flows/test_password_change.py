"""Muuda parooli on the IdP: the rules, each refusal with its reason, and a change that ends
the person's other sessions (telling their schools) while this browser stays signed in."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from tests.flows.idp_account import (
    CHROME_LINUX,
    NOT_SIGNED_IN,
    SAFARI_IPHONE,
    browser_with,
    jump_in,
    post_form,
    school_states,
    signed_in_at,
)
from tests.flows.test_school_sso import _sign_in
from tests.support import Browser

NEW = "Kaks kassi jalutavad mööda katust"
WRONG = "E-posti aadress või parool on vale."


def _form(browser: Browser):
    page = browser.http.get(f"{browser.issuer}/account/password", timeout=10)
    assert page.status_code == 200 and "<h1>Muuda parooli</h1>" in page.text
    return page


def _change(browser: Browser, current: str, new: str, again: str | None = None):
    return post_form(
        browser,
        _form(browser),
        "/account/password",
        current_password=current,
        new_password=new,
        new_password_again=new if again is None else again,
    )


def _error(page) -> str:
    import html
    import re

    found = re.search(r'<p class="error" role="alert" id="error">([^<]+)</p>', page.text)
    assert found, "an error on the form expected"
    return html.unescape(found.group(1))


def _person_rows(idp_app, sub: str):
    """The person's sessions, their logout messages and audit events, from the IdP's tables."""
    from idp.models import Account, AuditEvent, Delivery, SsoSession
    from shared.db import get_db

    with idp_app.app_context():
        db = get_db()
        person_id = db.scalar(select(Account.person_id).where(Account.sub == sub))
        sessions = db.scalars(select(SsoSession).where(SsoSession.person_id == person_id)).all()
        sids = {s.id for s in sessions}
        deliveries = [
            d
            for d in db.scalars(select(Delivery).where(Delivery.kind == "logout"))
            if d.payload["sid"] in sids
        ]
        audit = db.scalars(select(AuditEvent).where(AuditEvent.person_id == person_id)).all()
        return (
            [(s.ended_at is not None, s.end_reason) for s in sessions],
            [(d.payload["sub"], d.state, d.last_status) for d in deliveries],
            [(a.action, a.details) for a in audit],
        )


@pytest.fixture
def family(idp, make_tenant, make_person, link_account):
    """Tiina Õunapuu, signed in at two schools on her laptop and at one on her phone."""
    kool, lasteaed = make_tenant("Laagri Kool"), make_tenant("Laagri Lasteaed")
    person = make_person(kool.client, given_name="Tiina", family_name="Õunapuu")
    lasteaed_sub = link_account(person, lasteaed.client, ["parent"])
    laptop, phone = browser_with(idp, CHROME_LINUX), browser_with(idp, SAFARI_IPHONE)
    _sign_in(laptop, kool.url, person)
    jump_in(laptop, lasteaed)
    _sign_in(phone, kool.url, person)
    return kool, lasteaed, person, lasteaed_sub, laptop, phone


@pytest.mark.parametrize(
    ("new", "again", "reason"),
    [
        ("lühike1", None, "Parool peab olema vähemalt 10 märki pikk."),
        ("Parool2024!", None, "See on levinud parool"),
        ("salasõna12345", None, "See on levinud parool"),
        ("qwerty123456", None, "See on levinud parool"),
        ("Õunapuu kasvab aias", None, "Parool ei tohi sisaldada sinu ees- ega perekonnanime."),
        ("OUNAPUU kasvab aias", None, "Parool ei tohi sisaldada sinu ees- ega perekonnanime."),
        (
            "tiina käib koolis iga päev",
            None,
            "Parool ei tohi sisaldada sinu ees- ega perekonnanime.",
        ),
        ("{email}", None, "Parool ei tohi sisaldada sinu e-posti aadressi."),
        (NEW, NEW + "!", "Uus parool ja selle kordus ei ole samad."),
    ],
)
def test_a_refused_password_says_why_and_changes_nothing(idp_app, family, new, again, reason):
    kool, lasteaed, person, _, laptop, phone = family
    new = new.replace("{email}", person.email.upper())
    page = _change(laptop, person.password, new, again)
    assert page.status_code == 200
    assert _error(page).startswith(reason)
    # The form keeps no password it was sent.
    assert new not in page.text and person.password not in page.text
    assert 'name="new_password"' in page.text
    assert signed_in_at(laptop, kool) and signed_in_at(laptop, lasteaed)
    assert signed_in_at(phone, kool)
    sessions, deliveries, audit = _person_rows(idp_app, person.sub)
    assert sessions == [(False, None), (False, None)] and deliveries == [] and audit == []


def test_a_wrong_current_password_is_refused(idp_app, family):
    kool, _, person, _, laptop, phone = family
    page = _change(laptop, person.password + "x", NEW)
    assert _error(page) == "Praegune parool on vale."
    assert signed_in_at(laptop, kool) and signed_in_at(phone, kool)
    assert _person_rows(idp_app, person.sub)[2] == []


def test_guessing_the_current_password_stops_at_the_login_cap(idp_app, family):
    _, _, person, _, laptop, _ = family
    for attempt in range(idp_app.config["LOGIN_MAX_FAILURES"]):
        assert _error(_change(laptop, f"arvatud-{attempt}", NEW)) == "Praegune parool on vale."
    # Past the cap even the right password is "wrong", until the window passes.
    assert _error(_change(laptop, person.password, NEW)) == "Praegune parool on vale."
    idp_app.extensions["redis"].delete(f"idp:fail:pwchange:{_person_id(idp_app, person.sub)}")
    assert "<h1>Parool on muudetud</h1>" in _change(laptop, person.password, NEW).text


def _person_id(idp_app, sub: str) -> int:
    from idp.models import Account
    from shared.db import get_db

    with idp_app.app_context():
        return get_db().scalars(select(Account.person_id).where(Account.sub == sub)).one()


def test_a_new_password_ends_the_other_sessions_and_tells_their_schools(idp, idp_app, family):
    kool, lasteaed, person, lasteaed_sub, laptop, phone = family
    old_cookie = laptop.http.cookies.get("stuudium_idp_sso")
    done = _change(laptop, person.password, NEW)
    assert done.status_code == 200
    assert "<h1>Parool on muudetud</h1>" in done.text
    assert "selles seadmes jääd sisse logituks" in done.text
    # Only the phone's session ended: only its school is told.
    assert school_states(done) == {"Laagri Kool": "delivered"}
    assert not signed_in_at(phone, kool)
    assert NOT_SIGNED_IN in phone.http.get(f"{idp}/account", timeout=10).text
    # The laptop goes on, at the IdP and at both schools, under a new cookie secret.
    new_cookie = laptop.http.cookies.get("stuudium_idp_sso")
    assert new_cookie and new_cookie != old_cookie
    assert signed_in_at(laptop, kool) and signed_in_at(laptop, lasteaed)
    assert NOT_SIGNED_IN not in laptop.http.get(f"{idp}/account", timeout=10).text
    stolen = Browser(idp)
    stolen.http.cookies.set("stuudium_idp_sso", old_cookie)
    assert NOT_SIGNED_IN in stolen.http.get(f"{idp}/account", timeout=10).text
    sessions, deliveries, audit = _person_rows(idp_app, person.sub)
    assert sorted(sessions, key=str) == sorted([(False, None), (True, "password_change")], key=str)
    # The school accepted its logout token (our school answers 400 to an invalid one).
    assert deliveries == [(person.sub, "delivered", 200)]
    assert audit == [("password_change", {"via": "idp_account_page"})]
    # The old password no longer logs in; the new one does.
    stranger = Browser(idp)
    page = stranger.follow(f"{kool.url}/auth/login", stop_prefix="\x00")
    refused = stranger.submit_login(page, person.email, person.password, stop_prefix="\x00")
    assert refused.status_code == 200 and WRONG in refused.text
    _sign_in(stranger, kool.url, dataclasses.replace(person, password=NEW))
    assert signed_in_at(stranger, kool)


def test_the_form_needs_its_csrf_token(idp_app, family):
    kool, _, person, _, laptop, _ = family
    resp = laptop.http.post(
        f"{idp_app.config['ISSUER']}/account/password",
        data={"current_password": person.password, "new_password": NEW, "new_password_again": NEW},
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 400 and "<h1>Vorm aegus</h1>" in resp.text
    assert signed_in_at(laptop, kool)


def test_a_person_without_a_password_sets_one(idp, idp_app, make_tenant, make_person):
    from idp.models import Account, Person
    from shared.db import get_db

    kool = make_tenant("Laagri Kool")
    person = make_person(kool.client, given_name="Jaan", family_name="Tamm")
    browser = Browser(idp)
    _sign_in(browser, kool.url, person)
    with idp_app.app_context():  # as after a login link: the person never had a password
        db = get_db()
        account = db.scalars(select(Account).where(Account.sub == person.sub)).one()
        db.get_one(Person, account.person_id).password_hash = None
        db.commit()
    page = browser.http.get(f"{idp}/account/password", timeout=10)
    assert "<h1>Sea endale parool</h1>" in page.text
    assert 'name="current_password"' not in page.text
    # Skippable: the way on is the school this browser signed in to.
    assert 'id="skip" href="' + kool.url + "/auth/login?" in page.text
    done = post_form(browser, page, "/account/password", new_password=NEW, new_password_again=NEW)
    assert "<h1>Parool on salvestatud</h1>" in done.text
    assert school_states(done) == {}  # no other session: nothing ended
    assert 'id="onward" href="' + kool.url + "/auth/login?" in done.text
    assert signed_in_at(browser, kool)
    _sign_in(Browser(idp), kool.url, dataclasses.replace(person, password=NEW))


def test_a_cyrillic_name_is_refused_in_latin_letters_too(idp, make_tenant, make_person):
    kool = make_tenant()
    person = make_person(kool.client, given_name="Ольга", family_name="Шмидт")
    browser = Browser(idp)
    _sign_in(browser, kool.url, person)
    for written in ("olga käib koolis iga päev", "Kevadine SHMIDT aias", "kevad smidt aias"):
        page = _change(browser, person.password, written)
        assert _error(page) == "Parool ei tohi sisaldada sinu ees- ega perekonnanime."


def test_a_4000_character_password_is_refused_before_hashing(idp, family):
    import time

    _, _, person, _, laptop, _ = family
    page = _form(laptop)
    started = time.perf_counter()
    refused = post_form(
        laptop,
        page,
        "/account/password",
        current_password="x" * 4000,
        new_password="y" * 4000,
        new_password_again="y" * 4000,
    )
    assert time.perf_counter() - started < 0.5
    assert _error(refused) == "Parool on liiga pikk: kõige rohkem 1024 märki."


def test_passwords_are_never_truncated_at_login(idp, idp_app, make_tenant, make_person):
    """Two long passwords equal in their first 72 bytes are different passwords, and a login
    with a password longer than any accepted one is simply wrong (not cut to fit)."""
    from idp.models import Account, Person
    from idp.people.accounts import hash_password
    from shared.db import get_db

    kool = make_tenant()
    person = make_person(kool.client)
    long_password = "Kevadine Laagri " * 6 + "A"  # 97 bytes
    with idp_app.app_context():
        db = get_db()
        account = db.scalars(select(Account).where(Account.sub == person.sub)).one()
        db.get_one(Person, account.person_id).password_hash = hash_password(long_password)
        db.commit()
    for wrong in (long_password[:-1] + "B", long_password + "x" * 2000):
        stranger = Browser(idp)
        page = stranger.follow(f"{kool.url}/auth/login", stop_prefix="\x00")
        refused = stranger.submit_login(page, person.email, wrong, stop_prefix="\x00")
        assert WRONG in refused.text
    _sign_in(Browser(idp), kool.url, dataclasses.replace(person, password=long_password))


def test_an_old_hash_is_rehashed_at_login(idp, idp_app, make_tenant, make_person):
    from argon2 import PasswordHasher

    from idp.models import Account, Person
    from idp.people.accounts import HASHER
    from shared.db import get_db

    kool = make_tenant()
    person = make_person(kool.client)
    old = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(person.password)
    with idp_app.app_context():
        db = get_db()
        person_id = db.scalars(select(Account.person_id).where(Account.sub == person.sub)).one()
        db.get_one(Person, person_id).password_hash = old
        db.commit()
    _sign_in(Browser(idp), kool.url, person)
    with idp_app.app_context():
        stored = get_db().get_one(Person, person_id).password_hash
    assert stored is not None, "the login stored a new hash"
    assert stored != old and not HASHER.check_needs_rehash(stored)
    assert "m=19456,t=2,p=1" in stored
    _sign_in(Browser(idp), kool.url, person)  # and it still verifies
