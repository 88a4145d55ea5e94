"""A one-time link dies with the facts it was issued for (ARCHITECTURE "Identity proofing"): an
unused login or e-mail link mailed before an e-mail change (by the person or by the school), a
merge, an unlink, a disable or a password change is refused afterwards like a used one and signs
no one in; a login link is refused once the address it was sent to is no longer its account's
login e-mail, whatever changed it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text, update

from tests.flows.idp_account import post_form as post_page
from tests.flows.mail_links import link_of, post_form, use_link
from tests.flows.sync_support import api, client_token, eventually, person_id
from tests.flows.test_access_links import _ask
from tests.flows.test_linking import JURI, Linker
from tests.flows.test_password_change import NEW
from tests.support import Browser, PersonLogin, Tenant, sign_in_at_school

Inbox = Callable[[str], list[dict[str, Any]]]


def _login_link(idp: str, school: Tenant, email: str, inbox: Inbox) -> dict[str, Any]:
    """Ask for a login link at the school as a person would; the mail it came in."""
    status, body, _ = _ask(idp, school.client.slug, email)
    assert status == 200 and 'id="sent"' in body
    return inbox(email)[-1]


def _refused(idp_app: Flask, school: Tenant, message: dict[str, Any]) -> None:
    """The link's button shows the used-link page and signs no one in, here or at the school."""
    browser = Browser(idp_app.config["ISSUER"])
    resp = use_link(browser, message)
    assert resp.status_code == 410 and 'id="invalid"' in resp.text, resp.text
    assert idp_app.config["SSO_COOKIE_NAME"] not in browser.http.cookies
    # The school's login goes on to the IdP's login form: no session carries it through.
    page = browser.follow(f"{school.url}/auth/login", stop_prefix="\x00")
    assert page.status_code == 200 and 'name="password"' in page.text, page.url


def _works(idp: str, school: Tenant, message: dict[str, Any]) -> None:
    """A link issued after the change signs in as ever (the refusals are not a broken path)."""
    resp = use_link(Browser(idp), message)
    assert resp.status_code == 303, resp.text


def _unused(idp_app: Flask, message: dict[str, Any]) -> bool:
    """Whether the link in a message is still unused in SQL (not voided, not consumed)."""
    from idp.models import OneTimeLink
    from shared.db import get_db
    from shared.security import sha256_hex

    _, token = link_of(message)
    with idp_app.app_context():
        used = get_db().scalar(
            select(OneTimeLink.used_at).where(OneTimeLink.token_hash == sha256_hex(token))
        )
    return used is None


def _email_of(idp_app: Flask, sub: str) -> str | None:
    from idp.models import Account, Person
    from shared.db import get_db

    with idp_app.app_context():
        db = get_db()
        return db.scalar(
            select(Person.email)
            .join(Account, Account.person_id == Person.id)
            .where(Account.sub == sub)
        )


def test_the_persons_email_change_kills_the_old_addresss_link(
    idp, idp_app, make_tenant, make_person, inbox
) -> None:
    kool = make_tenant()
    person = make_person(kool.client)
    stale = _login_link(idp, kool, person.email, inbox)
    browser = Browser(idp)
    sign_in_at_school(browser, kool.url, person)
    new = "uus-" + person.email
    assert post_form(browser, f"{idp}/account/email", {"email": new}).status_code == 200
    assert use_link(browser, inbox(new)[-1]).status_code == 200
    assert _email_of(idp_app, person.sub) == new

    _refused(idp_app, kool, stale)
    _works(idp, kool, _login_link(idp, kool, new, inbox))


def test_a_schools_email_change_kills_the_old_addresss_links(
    idp, idp_app, make_tenant, make_person, inbox
) -> None:
    kool = make_tenant()
    admin = make_person(kool.client, "Kaja", "Kask", ("admin",))
    parent = make_person(kool.client, "Jüri", "Mägi")
    stale = _login_link(idp, kool, parent.email, inbox)
    # The parent had asked to move to another address; the school's change comes first.
    browser = Browser(idp)
    sign_in_at_school(browser, kool.url, parent)
    asked = "jyri-soovis-" + parent.email
    assert post_form(browser, f"{idp}/account/email", {"email": asked}).status_code == 200
    [confirm] = inbox(asked)
    token = client_token(idp, kool.client)
    now = api(idp, token, "GET", f"/accounts/{parent.sub}", acting=admin.sub).json()
    new = "kool-muutis-" + parent.email
    done = api(
        idp,
        token,
        "PATCH",
        f"/accounts/{parent.sub}/person",
        acting=admin.sub,
        body={"email": new},
        if_match=now["version"],
    )
    assert done.status_code == 200, done.text

    _refused(idp_app, kool, stale)
    refused = use_link(Browser(idp), confirm)
    assert refused.status_code == 410 and 'id="invalid"' in refused.text
    assert _email_of(idp_app, parent.sub) == new
    _works(idp, kool, _login_link(idp, kool, new, inbox))


def test_a_merge_kills_the_absorbed_accounts_link(
    idp, idp_app, make_tenant, make_person, inbox
) -> None:
    kool, huvikool = make_tenant(), make_tenant()
    mine = make_person(kool.client, "Jüri", "Mägi", isikukood=JURI)
    theirs = make_person(huvikool.client, "Jüri", "Mägi", isikukood=JURI)
    absorbed = _login_link(idp, huvikool, theirs.email, inbox)
    initiators = _login_link(idp, kool, mine.email, inbox)
    browser = Browser(idp)
    sign_in_at_school(browser, kool.url, mine)
    # The absorbed account's address is kept: its link would still match, and dies all the same.
    done = Linker(idp, browser).link(kool, huvikool, theirs, email="theirs")
    assert done.status_code == 200 and "Kontod on seotud" in done.text, done.text

    _refused(idp_app, huvikool, absorbed)
    _refused(idp_app, kool, initiators)
    _works(idp, huvikool, _login_link(idp, huvikool, theirs.email, inbox))


def test_an_unlink_kills_the_links_of_both_sides(
    idp, idp_app, make_tenant, make_person, inbox
) -> None:
    kool, huvikool = make_tenant(), make_tenant()
    mine = make_person(kool.client, "Jüri", "Mägi", isikukood=JURI)
    theirs = make_person(huvikool.client, "Jüri", "Mägi", isikukood=JURI)
    browser = Browser(idp)
    sign_in_at_school(browser, kool.url, mine)
    linker = Linker(idp, browser)
    assert "Kontod on seotud" in linker.link(kool, huvikool, theirs).text  # mine's e-mail kept
    split_off = _login_link(idp, huvikool, mine.email, inbox)
    staying = _login_link(idp, kool, mine.email, inbox)
    account = browser.http.get(f"{idp}/account", timeout=10)
    done = linker.post("/account/unlink", account, school=huvikool.client.slug)
    assert done.status_code == 200 and "Seos on eemaldatud" in done.text, done.text

    _refused(idp_app, huvikool, split_off)
    _refused(idp_app, kool, staying)
    _works(idp, huvikool, _login_link(idp, huvikool, mine.email, inbox))


def _welcome_link(
    idp_app: Flask, school: Tenant, person: PersonLogin, inbox: Inbox
) -> dict[str, Any]:
    """The welcome mail an approved application sends (idp.admin.applications), sent for real."""
    from idp.models import Account
    from idp.outbox.queue import queue_mail
    from shared.db import get_db

    with idp_app.app_context():
        db = get_db()
        account = db.scalar(select(Account).where(Account.sub == person.sub))
        assert account is not None
        queue_mail(
            db,
            person.email,
            "welcome",
            school_id=account.school_id,
            given_name=person.given_name,
            one_time_link={"purpose": "welcome", "subject": f"account:{account.id}"},
        )
        db.commit()
    return [m for m in inbox(person.email) if school.client.name in m["subject"]][-1]


def test_a_disable_kills_the_links_for_good(idp, idp_app, make_tenant, make_person, inbox) -> None:
    kool = make_tenant()
    admin = make_person(kool.client, "Kaja", "Kask", ("admin",))
    parent = make_person(kool.client, "Jüri", "Mägi")
    welcome = _welcome_link(idp_app, kool, parent, inbox)
    access = _login_link(idp, kool, parent.email, inbox)
    token = client_token(idp, kool.client)
    for step in ("disable", "enable"):
        resp = api(idp, token, "POST", f"/accounts/{parent.sub}/{step}", acting=admin.sub)
        assert resp.status_code == 200 and resp.json()["changed"] is True, resp.text

    # Active again with the same login e-mail: the links issued before still do not work.
    _refused(idp_app, kool, welcome)
    _refused(idp_app, kool, access)
    _works(idp, kool, _login_link(idp, kool, parent.email, inbox))


def _change_password(browser: Browser, current: str) -> None:
    page = browser.http.get(f"{browser.issuer}/account/password", timeout=10)
    done = post_page(
        browser,
        page,
        "/account/password",
        current_password=current,
        new_password=NEW,
        new_password_again=NEW,
    )
    assert done.status_code == 200 and "Parool on muudetud" in done.text, done.text


def test_a_password_change_kills_login_and_email_links(
    idp, idp_app, make_tenant, make_person, inbox
) -> None:
    kool = make_tenant()
    person = make_person(kool.client, "Tiina", "Õunapuu")
    access = _login_link(idp, kool, person.email, inbox)
    browser = Browser(idp)
    sign_in_at_school(browser, kool.url, person)
    new = "uus-" + person.email
    assert post_form(browser, f"{idp}/account/email", {"email": new}).status_code == 200
    [confirm] = inbox(new)
    _change_password(browser, person.password)

    _refused(idp_app, kool, access)
    refused = use_link(browser, confirm)
    assert refused.status_code == 410 and 'id="invalid"' in refused.text
    assert _email_of(idp_app, person.sub) == person.email  # the address did not change
    _works(idp, kool, _login_link(idp, kool, person.email, inbox))


@pytest.mark.parametrize("new_login", ["muu@example.ee", None])
def test_a_link_works_only_while_it_went_to_the_login_email(
    idp, idp_app, make_tenant, make_person, inbox, new_login: str | None
) -> None:
    from idp.models import Account
    from shared.db import get_db

    kool = make_tenant()
    person = make_person(kool.client)
    link = _login_link(idp, kool, person.email, inbox)
    with idp_app.app_context():  # a route that voids nothing, as a repair by hand would be
        db = get_db()
        db.execute(update(Account).where(Account.sub == person.sub).values(login_email=new_login))
        db.commit()

    _refused(idp_app, kool, link)
    assert _unused(idp_app, link)  # refused for its address, not voided


def _someone_waits_for_a_lock(idp_app: Flask) -> bool:
    with idp_app.extensions["db_engine"].connect() as conn:
        return bool(
            conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
            )
        )


def _change_factor(db: Any, pid: int, errors: list[Exception]) -> None:
    """What every change of a person's factors does: the person's row, then their links."""
    from idp.models import Person, utcnow
    from idp.people import one_time_links as links

    try:
        db.execute(update(Person).where(Person.id == pid).values(updated_at=utcnow()))
        links.void_for_person(db, pid)
        db.commit()
    except Exception as exc:  # a deadlock PostgreSQL broke: the failure this test looks for
        errors.append(exc)
        db.rollback()


def test_an_email_link_used_during_a_factor_change_takes_the_person_first(
    idp, idp_app, make_tenant, make_person, inbox
) -> None:
    """Lock order: using a person's link takes the person's row before the link's, as every
    change of the person does, so the two wait for each other in turn and never deadlock."""
    from idp.models import Person
    from idp.people import one_time_links as links

    if idp_app.extensions["db_engine"].dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL only")
    kool = make_tenant()
    person = make_person(kool.client)
    browser = Browser(idp)
    sign_in_at_school(browser, kool.url, person)
    new = "uus-" + person.email
    assert post_form(browser, f"{idp}/account/email", {"email": new}).status_code == 200
    _, token = link_of(inbox(new)[-1])
    pid = person_id(idp_app, person.sub)
    errors: list[Exception] = []
    make = idp_app.extensions["db_sessionmaker"]
    using, changing = make(), make()
    try:
        assert links.consume(using, token, ("email",)) is not None
        change = threading.Thread(target=_change_factor, args=(changing, pid, errors))
        change.start()
        assert eventually(lambda: _someone_waits_for_a_lock(idp_app))  # for the person's row
        using.execute(update(Person).where(Person.id == pid).values(email=new))
        links.void_for_person(using, pid)
        using.commit()
        change.join(timeout=10)
        assert not change.is_alive() and errors == []
    finally:
        using.close()
        changing.close()


def test_a_login_mail_still_waiting_in_the_outbox_dies_with_a_password_change(
    idp, idp_app, make_tenant, make_person, inbox
) -> None:
    from idp.models import MailOutbox
    from shared.db import get_db

    kool = make_tenant()
    person = make_person(kool.client, "Tiina", "Õunapuu")
    browser = Browser(idp)
    sign_in_at_school(browser, kool.url, person)
    status, body, _ = _ask(idp, kool.client.slug, person.email)  # queued, not yet sent
    assert status == 200 and 'id="sent"' in body
    _change_password(browser, person.password)
    # The mail would mint its link only now, after the change: it is dropped instead.
    assert [m for m in inbox(person.email) if "#" in " ".join(m["links"])] == []
    with idp_app.app_context():
        states = (
            get_db()
            .scalars(
                select(MailOutbox.state).where(
                    MailOutbox.kind == "access", MailOutbox.recipient == person.email
                )
            )
            .all()
        )
    assert list(states) == ["dropped"]
    _works(idp, kool, _login_link(idp, kool, person.email, inbox))
