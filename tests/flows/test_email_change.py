"""Muuda e-posti aadressi: the change takes effect only when the new address confirms its link;
the old address is told, every account's login e-mail follows, linked schools get a sync event,
and the person's other sessions end. An address in use at one of the person's schools is
refused with a clear reason when its link is used; asking answers a taken address as it
answers a free one (no one signed in can ask who else logs in with an address)."""

from __future__ import annotations

import dataclasses
import html

from sqlalchemy import select

from tests.flows.idp_account import NOT_SIGNED_IN, signed_in_at
from tests.flows.mail_links import link_of, post_form, use_link
from tests.flows.test_school_sso import _sign_in
from tests.support import Browser


def _ask(browser: Browser, email: str):
    return post_form(browser, f"{browser.issuer}/account/email", {"email": email})


def _state(idp_app, sub: str):
    """The person's e-mail, their accounts' login e-mails, and the queued sync events."""
    from idp.models import Account, Delivery, Person
    from shared.db import get_db

    with idp_app.app_context():
        db = get_db()
        person_id = db.scalar(select(Account.person_id).where(Account.sub == sub))
        person = db.get(Person, person_id)
        assert person is not None, f"no person has the account {sub}"
        subs = {
            a.sub: a.login_email
            for a in db.scalars(select(Account).where(Account.person_id == person_id))
        }
        events = [
            d.payload
            for d in db.scalars(select(Delivery).where(Delivery.kind == "event"))
            if d.payload["sub"] in subs
        ]
        return person.email, subs, events


def test_change_takes_effect_when_the_new_address_confirms(
    idp, idp_app, make_tenant, make_person, link_account, inbox
) -> None:
    kool, lasteaed = make_tenant(), make_tenant()
    person = make_person(kool.client, given_name="Mari", family_name="Mänd")
    lasteaed_sub = link_account(person, lasteaed.client, ["parent"])
    laptop, phone = Browser(idp), Browser(idp)
    _sign_in(laptop, kool.url, person)
    _sign_in(phone, kool.url, person)
    new = "mari.uus@example.ee"

    sent = _ask(laptop, new)
    assert sent.status_code == 200 and 'id="sent"' in sent.text
    assert _state(idp_app, person.sub)[0] == person.email  # nothing changed yet
    [message] = inbox(new)
    page, token = link_of(message)
    for method in ("GET", "HEAD"):
        assert laptop.http.request(method, page, timeout=10).status_code == 200
    assert _state(idp_app, person.sub)[0] == person.email  # opening the link changes nothing

    done = use_link(laptop, message)
    assert done.status_code == 200 and new in html.unescape(done.text)
    email, subs, events = _state(idp_app, person.sub)
    assert email == new and set(subs.values()) == {new}
    # Both schools are told (the sync outbox).
    assert sorted(e["sub"] for e in events) == sorted([person.sub, lasteaed_sub])
    assert all("email" in e["changed"] for e in events)  # their tokens carry the data when sent
    # The old address is told what happened and to what.
    [notice] = inbox(person.email)
    assert new in notice["body"] and person.email in notice["body"]
    # The other session ended; this one goes on.
    assert not signed_in_at(phone, kool)
    assert NOT_SIGNED_IN in phone.http.get(f"{idp}/account", timeout=10).text
    assert signed_in_at(laptop, kool)
    # The login e-mail followed.
    _sign_in(Browser(idp), kool.url, dataclasses.replace(person, email=new))
    assert use_link(Browser(idp), message).status_code == 410  # single use


def test_a_taken_address_is_answered_like_a_free_one_and_refused_by_its_link(
    idp, idp_app, make_tenant, make_person, inbox
) -> None:
    kool = make_tenant("Laagri Kool")
    person = make_person(kool.client)
    other = make_person(kool.client)
    browser = Browser(idp)
    _sign_in(browser, kool.url, person)
    taken, free = other.email.upper(), "vaba-" + person.email
    asked = _ask(browser, taken)
    # The link goes to the taken address too; using it says why the address cannot be used.
    [message] = inbox(other.email)
    refused = use_link(browser, message)
    assert refused.status_code == 409
    assert "Selle e-posti aadressiga on juba teine konto koolis Laagri Kool." in html.unescape(
        refused.text
    )
    assert _state(idp_app, person.sub)[0] == person.email
    # The answer to asking is the same page, status and all, whichever address was asked.
    answered = _ask(browser, free)
    assert asked.status_code == answered.status_code == 200 and 'id="sent"' in asked.text
    assert asked.text.replace(taken, "ADDRESS") == answered.text.replace(free, "ADDRESS")
    # Taken between the request and the confirmation: refused when the link is used.
    [message] = inbox(free)
    third = make_person(kool.client, email=free)
    late = use_link(browser, message)
    assert late.status_code == 409 and "Laagri Kool" in late.text
    assert _state(idp_app, person.sub)[0] == person.email and third.email == free


def test_own_and_invalid_addresses_are_still_refused(idp, make_tenant, make_person, inbox) -> None:
    kool = make_tenant()
    person = make_person(kool.client)
    browser = Browser(idp)
    _sign_in(browser, kool.url, person)
    own = _ask(browser, " " + person.email.upper())
    assert own.status_code == 400 and "See on juba sinu e-posti aadress." in own.text
    invalid = _ask(browser, "pole-aadress")
    assert invalid.status_code == 400 and 'id="error"' in invalid.text
    assert inbox(person.email) == [] and inbox("pole-aadress") == []
