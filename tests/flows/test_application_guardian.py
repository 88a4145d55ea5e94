"""Guardianship in the application review, as an impostor would try it: knowing a parent's name
and the child's isikukood, apply with one's own e-mail. Guardianship is matched only on the
applicant's confirmed e-mail against the guardian's as the school recorded it; a name match is a
stronger warning with the real guardian's contact, never a pass. Approving someone who is not a
verified guardian takes a second confirmation and makes them a guardian only when asked."""

from __future__ import annotations

import html
import secrets
from typing import Any

import requests
from flask import Flask
from sqlalchemy import func, select

from tests.flows.mail_links import follow_to, use_link
from tests.flows.test_applications import CHILD, _application_row, _decide, _enrol
from tests.flows.test_applications import _submit_application as _submit
from tests.support import Browser, PersonLogin, Tenant, sign_in_at_school


def _address() -> str:
    """The applicant's own address, new in each test (FORM names her Olga Šmidt)."""
    return f"olga.smidt.{secrets.token_hex(3)}@example.ee"


def _listing(idp: str, tenant: Tenant, admin: PersonLogin) -> tuple[Browser, requests.Response]:
    """The admin, signed in at the school, and the applications page."""
    browser = Browser(idp)
    sign_in_at_school(browser, tenant.url, admin)
    return browser, browser.http.get(f"{tenant.url}/admin/applications", timeout=10)


def _status_at_idp(idp_app: Flask, email: str) -> tuple[str, int]:
    """The application's status at the IdP and how many accounts log in with email."""
    from idp.models import Account, Application
    from shared.db import get_db

    with idp_app.app_context():
        db = get_db()
        status = db.scalar(select(Application.status).where(Application.email == email))
        accounts = db.scalar(
            select(func.count()).select_from(Account).where(Account.login_email == email)
        )
        return str(status), int(accounts or 0)


def _guardians_recorded(school_app: Flask, student_id: int) -> list[str]:
    """The e-mails of the members the school records as the student's guardians."""
    from school_instance.models import Guardian, Member
    from shared.db import get_db

    with school_app.app_context():
        return sorted(
            str(e)
            for e in get_db().scalars(
                select(Member.email)
                .join(Guardian, Guardian.member_id == Member.id)
                .where(Guardian.student_id == student_id)
            )
        )


def _applicant_sees(
    idp: str, tenant: Tenant, inbox: Any, email: str, student_id: int
) -> tuple[bool, int]:
    """Sign in with the welcome link: is the child on the start page, and the status of the
    child's lessons and attendance page."""
    [_, welcome] = inbox(email)
    parent = Browser(idp)
    home = follow_to(parent, use_link(parent, welcome), tenant.url)
    assert "Olga Šmidt" in home.text
    child = parent.http.get(
        f"{tenant.url}/children/{student_id}", allow_redirects=False, timeout=10
    )
    return "Mia Šmidt" in home.text, child.status_code


def _flash(browser: Browser, tenant: Tenant) -> str:
    page = browser.http.get(f"{tenant.url}/admin/applications", timeout=10)
    assert 'id="none"' in page.text
    return html.unescape(page.text)


def test_a_name_match_with_another_email_is_a_stronger_warning_not_a_pass(
    idp, idp_app, make_tenant, make_person, school_app, inbox
) -> None:
    tenant, email = make_tenant(), _address()
    admin = make_person(tenant.client, "Anu", "Allikas", ("admin",))
    mia = _enrol(
        school_app,
        tenant,
        "Mia",
        "Šmidt",
        CHILD,
        guardian=("Olga", "Šmidt", "olga.real@example.ee"),
        phone="+372 5000 0001",
    )
    _submit(idp, tenant, email, inbox)  # the real Olga's name, another e-mail
    browser, listing = _listing(idp, tenant, admin)
    row = html.unescape(_application_row(listing))
    assert 'data-flag="name-only"' in row and 'data-match="name-only"' in row
    assert 'data-flag="not-guardian"' not in row and 'data-flag="verified-guardian"' not in row
    # The known guardian's contact as the school recorded it, to ask her.
    assert 'href="mailto:olga.real@example.ee"' in row and "+372 5000 0001" in row
    assert 'name="confirm_risk"' in row and 'name="add_guardian"' in row

    # Approving without the second confirmation approves nothing, and says what to confirm.
    refused = _decide(browser, tenant, listing, "approve")
    assert refused.status_code == 400
    assert "Kontrollisin taotlejat muul viisil" in html.unescape(refused.text)
    assert _status_at_idp(idp_app, email) == ("pending", 0)
    assert len(inbox(email)) == 1  # only the application's own confirmation link
    assert _decide(browser, tenant, listing, "approve", add_guardian="1").status_code == 400
    assert _status_at_idp(idp_app, email) == ("pending", 0)

    # Confirmed, without "record as the child's guardian": an account, and no guardian.
    confirmed = _decide(browser, tenant, listing, "approve", confirm_risk="not-guardian")
    assert confirmed.status_code == 303
    assert _status_at_idp(idp_app, email) == ("approved", 1)
    assert "Õpilase Mia Šmidt vanemaks teda ei märgitud" in _flash(browser, tenant)
    assert _guardians_recorded(school_app, mia) == ["olga.real@example.ee"]
    assert _applicant_sees(idp, tenant, inbox, email, mia) == (False, 404)


def test_an_email_match_is_a_verified_guardian_recorded_as_before(
    idp, idp_app, make_tenant, make_person, school_app, inbox
) -> None:
    tenant, email = make_tenant(), _address()
    admin = make_person(tenant.client, roles=("admin",))
    # As the school recorded it: another case, spaces, and a name she does not write.
    mia = _enrol(
        school_app, tenant, "Mia", "Šmidt", CHILD, guardian=("O.", "Smidt", f"  {email.upper()} ")
    )
    _submit(idp, tenant, email, inbox)
    browser, listing = _listing(idp, tenant, admin)
    row = html.unescape(_application_row(listing))
    assert 'data-flag="verified-guardian"' in row and 'data-match="verified"' in row
    assert 'data-flag="name-only"' not in row and 'data-flag="not-guardian"' not in row
    assert 'name="confirm_risk"' not in row and 'name="add_guardian"' not in row

    assert _decide(browser, tenant, listing, "approve").status_code == 303
    assert "Ta on nüüd õpilase Mia Šmidt vanem." in _flash(browser, tenant)
    assert _status_at_idp(idp_app, email) == ("approved", 1)
    assert _guardians_recorded(school_app, mia) == sorted([f"  {email.upper()} ", email])
    assert _applicant_sees(idp, tenant, inbox, email, mia) == (True, 200)


def test_neither_email_nor_name_needs_the_confirmation_too(
    idp, idp_app, make_tenant, make_person, school_app, inbox
) -> None:
    tenant, email = make_tenant(), _address()
    admin = make_person(tenant.client, roles=("admin",))
    mia = _enrol(
        school_app,
        tenant,
        "Mia",
        "Šmidt",
        CHILD,
        guardian=("Igor", "Šmidt", "igor@example.ee"),
        phone="+372 5000 0002",
    )
    _submit(idp, tenant, email, inbox)
    browser, listing = _listing(idp, tenant, admin)
    row = html.unescape(_application_row(listing))
    assert 'data-flag="not-guardian"' in row and 'data-match="none"' in row
    assert 'data-flag="name-only"' not in row and "igor@example.ee" not in row

    assert _decide(browser, tenant, listing, "approve").status_code == 400
    assert _status_at_idp(idp_app, email) == ("pending", 0)
    confirmed = _decide(browser, tenant, listing, "approve", confirm_risk="not-guardian")
    assert confirmed.status_code == 303
    assert "Õpilase Mia Šmidt vanemaks teda ei märgitud" in _flash(browser, tenant)
    assert _guardians_recorded(school_app, mia) == ["igor@example.ee"]
    assert _applicant_sees(idp, tenant, inbox, email, mia) == (False, 404)


def test_a_child_without_known_guardians_is_no_pass_either(
    idp, idp_app, make_tenant, make_person, school_app, inbox
) -> None:
    tenant, email = make_tenant(), _address()
    admin = make_person(tenant.client, roles=("admin",))
    mia = _enrol(school_app, tenant, "Mia", "Šmidt", CHILD)
    _submit(idp, tenant, email, inbox)
    browser, listing = _listing(idp, tenant, admin)
    row = html.unescape(_application_row(listing))
    assert "Koolil ei ole selle lapse vanemate andmeid." in row
    assert 'data-flag="not-guardian"' in row and 'name="confirm_risk"' in row
    assert _decide(browser, tenant, listing, "approve").status_code == 400
    assert _status_at_idp(idp_app, email) == ("pending", 0)
    # Checked by the admin and asked for: recorded, and the message says so.
    confirmed = _decide(
        browser, tenant, listing, "approve", confirm_risk="not-guardian", add_guardian="1"
    )
    assert confirmed.status_code == 303
    assert "Ta on nüüd õpilase Mia Šmidt vanem." in _flash(browser, tenant)
    assert _guardians_recorded(school_app, mia) == [email]
    assert _applicant_sees(idp, tenant, inbox, email, mia) == (True, 200)
