"""Identity proofing, rebuilt as an attacker would try it with what a stranger can know (a
parent's name and code, a child's code): a code typed in an application is never an anchor for
eID, a code is unique among a school's active accounts, and an eID login binds to an account
only when the names match. Both apps over HTTP, the eID stand-in as the upstream."""

from __future__ import annotations

import html
import re
from typing import Any

import requests
from flask import Flask
from sqlalchemy import select

from tests.flows.conftest import Upstream
from tests.flows.mail_links import follow_to, post_form, use_link
from tests.flows.test_applications import _apply, _enrol
from tests.flows.test_eid import NO_ACCOUNT, eid_login, new_code, pick, start_eid
from tests.flows.test_linking import ATTEMPT_RE, Linker
from tests.support import CSRF_RE, Browser, PersonLogin, Tenant, sign_in_at_school

CHILD = "51107121760"


def _submit(
    idp: str, tenant: Tenant, email: str, inbox: Any, given: str, family: str, own_code: str
) -> None:
    """Apply at a school as anybody can: the child's code, then the form with a name and an
    'own' code of the applicant's choosing."""
    browser = Browser(idp)
    assert _apply(idp, tenant.client.slug, email, CHILD, browser).status_code == 200
    confirmed = use_link(browser, inbox(email)[-1])
    form_url = idp + confirmed.headers["Location"]
    done = post_form(
        browser,
        form_url,
        {
            "given_name": given,
            "family_name": family,
            "phone": "+372 5123 4567",
            "relation": "isa",
            "language": "et",
            "isikukood": own_code,
        },
    )
    assert done.status_code == 303, done.text


def _approve(idp: str, tenant: Tenant, admin: PersonLogin) -> requests.Response:
    """The school's admin approves the one pending application, confirming every risk shown."""
    browser = Browser(idp)
    sign_in_at_school(browser, tenant.url, admin)
    listing = browser.http.get(f"{tenant.url}/admin/applications", timeout=10)
    url = next(
        u
        for u in re.findall(r'<form method="post" action="([^"]+)"', listing.text)
        if u.endswith("/approve")
    )
    csrf = CSRF_RE.search(listing.text)
    assert csrf
    # The second confirmation names the risk it accepts (the checkbox's value).
    risk = re.search(r'name="confirm_risk" type="checkbox" value="([^"]+)"', listing.text)
    return browser.http.post(
        tenant.url + html.unescape(url),
        data={"csrf_token": csrf.group(1), "confirm_risk": risk.group(1) if risk else ""},
        allow_redirects=False,
        timeout=10,
    )


def _person_of(idp_app: Flask, email: str) -> Any:
    """(person id, code, provenance) of the account created for an address."""
    from idp.models import Account, Person
    from shared.db import get_db

    with idp_app.app_context():
        return (
            get_db()
            .execute(
                select(Person.id, Person.isikukood, Person.isikukood_source)
                .join(Account)
                .where(Account.login_email == email)
            )
            .one()
        )


def _eid_at_school(browser: Browser, tenant: Tenant, code: str) -> requests.Response:
    """Start at a school's login, choose eID at the IdP and pick this code at the upstream."""
    page = browser.follow(f"{tenant.url}/auth/login", stop_prefix="\x00")
    assert page.status_code == 200 and 'name="password"' in page.text, page.text
    return pick(browser, start_eid(browser, page, "idcard"), code, "\x00")


def _eid_link_proof(linker: Linker, attempt: str, code: str) -> requests.Response:
    page = linker.browser.http.get(f"{linker.idp}/account", timeout=10)
    sent = linker.post("/eid/start", page, attempt=attempt, method="idcard")
    assert sent.status_code == 303, sent.text
    standin = linker.browser.http.get(sent.headers["Location"], allow_redirects=False, timeout=10)
    return pick(linker.browser, standin, code, "\x00")


def test_a_stranger_applying_with_a_parents_code_gets_nothing_of_theirs(
    idp, idp_app, make_tenant, make_person, school_app, inbox, upstream: Upstream
) -> None:
    kool, huvikool = make_tenant("Laagri Kool"), make_tenant("Laagri Huvialakool")
    victim_code = new_code()
    victim = make_person(kool.client, "Jüri", "Mägi", isikukood=victim_code)
    upstream.add(victim_code, "JÜRI", "MÄGI")
    admin = make_person(huvikool.client, "Anu", "Allikas", ("admin",))
    _enrol(school_app, huvikool, "Mia", "Mägi", CHILD)  # a real child, no known guardian

    # The stranger applies at the hobby school as Jüri Mägi with his code as "own", is
    # approved, and keeps the welcome link unused.
    stranger_email = "not-juri@example.ee"
    _submit(idp, huvikool, stranger_email, inbox, "Jüri", "Mägi", victim_code)
    assert _approve(idp, huvikool, admin).status_code == 303
    [_, welcome] = inbox(stranger_email)
    stranger_id, code, source = _person_of(idp_app, stranger_email)
    assert (code, source) == (victim_code, "applicant")

    # The victim, signed in at his school, links the hobby school and proves it with his own
    # eID: the applicant's code is no anchor, so nothing is proven and nothing merged.
    linker = Linker(idp, Browser(idp))
    sign_in_at_school(linker.browser, kool.url, victim)
    attempt = linker.start(kool, huvikool)
    refused = _eid_link_proof(linker, attempt, victim_code)
    assert refused.status_code == 400 and "Midagi ei seotud" in refused.text, refused.text
    assert linker.confirm(attempt).status_code == 400
    victim_id = _person_of(idp_app, victim.email.lower()).id
    assert _person_of(idp_app, stranger_email).id == stranger_id != victim_id

    # The welcome link signs the stranger in at the hobby school only: the victim's school
    # does not let him in.
    stranger = Browser(idp)
    follow_to(stranger, use_link(stranger, welcome), huvikool.url)
    at_school = stranger.follow(f"{kool.url}/auth/login", stop_prefix="\x00")
    assert not at_school.url.startswith(kool.url), at_school.url
    assert stranger.http.get(
        f"{kool.url}/profile", allow_redirects=False, timeout=10
    ).status_code in (302, 303)

    # The victim's own eID login at the hobby school does not land in the stranger's account.
    own = Browser(idp)
    landed = _eid_at_school(own, huvikool, victim_code)
    assert landed.status_code == 200 and NO_ACCOUNT in landed.text, landed.text
    assert own.http.cookies.get("stuudium_idp_sso") is None


def test_an_applicant_confirms_their_own_code_from_their_session(
    idp, idp_app, make_tenant, make_person, school_app, inbox, upstream: Upstream
) -> None:
    huvikool = make_tenant()
    admin = make_person(huvikool.client, roles=("admin",))
    _enrol(school_app, huvikool, "Mia", "Kask", CHILD)
    code = new_code()
    upstream.add(code, "OLGA", "KASK")
    email = "olga.kask@example.ee"
    _submit(idp, huvikool, email, inbox, "Olga", "Kask", code)
    assert _approve(idp, huvikool, admin).status_code == 303
    [_, welcome] = inbox(email)

    # Before: her eID at the school shows the ways forward, including this one.
    before = _eid_at_school(Browser(idp), huvikool, code)
    assert NO_ACCOUNT in before.text and "näitad, et isikukood on sinu oma" in before.text

    # Signed in by the welcome link, her account page offers to confirm the code by eID.
    parent = Browser(idp)
    follow_to(parent, use_link(parent, welcome), huvikool.url)
    account = parent.http.get(f"{idp}/account", timeout=10)
    assert 'id="confirm-code"' in account.text, account.text
    csrf = CSRF_RE.search(account.text)
    assert csrf
    sent = parent.http.post(
        f"{idp}/eid/start",
        data={"csrf_token": csrf.group(1), "confirm_code": "1", "method": "smartid"},
        allow_redirects=False,
        timeout=10,
    )
    assert sent.status_code == 303, sent.text
    standin = parent.http.get(sent.headers["Location"], allow_redirects=False, timeout=10)
    done = pick(parent, standin, code, "\x00")
    assert done.status_code == 200 and "Isikukood on kinnitatud" in done.text, done.text
    assert _person_of(idp_app, email).isikukood_source == "eid"
    assert 'id="confirm-code"' not in parent.http.get(f"{idp}/account", timeout=10).text

    # Now her eID signs her in directly, in any browser.
    after = _eid_at_school(Browser(idp), huvikool, code)
    assert after.url.startswith(huvikool.url), after.url


def test_someone_elses_eid_cannot_confirm_an_applicants_code(
    idp, idp_app, make_tenant, make_person, upstream: Upstream
) -> None:
    school = make_tenant()
    code = new_code()
    person = make_person(school.client, "Olga", "Kask")
    _set_code(idp_app, person, code, "applicant")
    other = new_code()
    upstream.add(other, "OLGA", "KASK")
    browser = Browser(idp)
    sign_in_at_school(browser, school.url, person)
    account = browser.http.get(f"{idp}/account", timeout=10)
    csrf = CSRF_RE.search(account.text)
    assert csrf
    sent = browser.http.post(
        f"{idp}/eid/start",
        data={"csrf_token": csrf.group(1), "confirm_code": "1", "method": "idcard"},
        allow_redirects=False,
        timeout=10,
    )
    standin = browser.http.get(sent.headers["Location"], allow_redirects=False, timeout=10)
    refused = pick(browser, standin, other, "\x00")
    assert refused.status_code == 400 and "Isikukoodi ei kinnitatud" in refused.text
    assert _person_of(idp_app, person.email.lower()).isikukood_source == "applicant"


def _set_code(idp_app: Flask, person: PersonLogin, code: str, source: str) -> None:
    """Give a person a code of some provenance directly (as round-one data may hold it)."""
    from idp.models import Account, Person
    from shared.db import get_db

    with idp_app.app_context():
        db = get_db()
        row = db.scalar(select(Person).join(Account).where(Account.sub == person.sub))
        assert row is not None
        row.isikukood, row.isikukood_source = code, source
        db.commit()


def test_a_code_already_at_the_school_cannot_be_approved_again(
    idp, idp_app, make_tenant, make_person, school_app, inbox
) -> None:
    from idp.models import Application
    from shared.db import get_db

    huvikool = make_tenant()
    admin = make_person(huvikool.client, roles=("admin",))
    code = new_code()
    make_person(huvikool.client, "Jüri", "Mägi", isikukood=code)
    _enrol(school_app, huvikool, "Mia", "Mägi", CHILD)
    email = "second-juri@example.ee"
    _submit(idp, huvikool, email, inbox, "Jüri", "Mägi", code)
    refused = _approve(idp, huvikool, admin)
    assert refused.status_code == 409, refused.text
    assert "isikukood" in html.unescape(refused.text).lower()
    with idp_app.app_context():
        status = get_db().scalar(select(Application.status).where(Application.email == email))
    assert status == "pending"  # nothing was created; the admin can reject with a reason


def test_two_accounts_with_one_code_fail_closed(
    idp, idp_app, make_school, make_person, upstream: Upstream
) -> None:
    school = make_school()
    code = new_code()
    first = make_person(school, "Jüri", "Mägi", isikukood=code)
    second = make_person(school, "Jüri", "Mägi")
    _set_code(idp_app, second, code, "school")  # e.g. a school's typo in round-one data
    upstream.add(code, "JÜRI", "MÄGI")
    browser = Browser(idp)
    final, _verifier = eid_login(browser, school, code)
    assert final.status_code == 409 and "rohkem kui üks konto" in final.text, final.text
    assert browser.http.cookies.get("stuudium_idp_sso") is None
    assert first.sub != second.sub


def test_the_eid_proof_in_linking_needs_the_same_names(
    idp, idp_app, make_tenant, make_person, upstream: Upstream
) -> None:
    kool, huvikool = make_tenant(), make_tenant()
    code = new_code()
    mine = make_person(kool.client, "Jüri", "Mägi", isikukood=code)
    make_person(huvikool.client, "Juri", "Magi", isikukood=code)  # the school's typo
    upstream.add(code, "JÜRI", "MÄGI")
    linker = Linker(idp, Browser(idp))
    sign_in_at_school(linker.browser, kool.url, mine)
    attempt = linker.start(kool, huvikool)
    refused = _eid_link_proof(linker, attempt, code)
    assert refused.status_code == 409 and "teise inimese nimi" in refused.text, refused.text
    assert ATTEMPT_RE.search(refused.text) is None
