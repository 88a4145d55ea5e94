"""Esita andmed ja taotle kontot: apply with the parent's e-mail and the child's isikukood,
confirm by mail, fill the form, and the school's admin approves (the account is created at the
IdP, a welcome link mailed; the guardian recorded at the school when verified or when the admin
says so) or rejects (the reason is mailed). No answer tells whether an address is known; no
school sees another's applications. Guardianship itself: tests/flows/test_application_guardian.py.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
import requests

from tests.flows.mail_links import follow_to, link_of, post_form, use_link
from tests.support import CSRF_RE, Browser, Tenant, sign_in_at_school

CHILD = "51107121760"  # a real-looking code: checksum and birth date valid
OTHER_CHILD = "60001019906"
PARENT = "48706124214"


def _enrol(
    school_app: Any,
    tenant: Tenant,
    given: str,
    family: str,
    code: str,
    guardian: tuple[str, str, str] | None = None,
    phone: str | None = None,
) -> int:
    """Put a child on the school's roster (in class 3.a), optionally with a known guardian (and
    the guardian's phone); return the student's id."""
    from sqlalchemy import select

    from school_instance.models import Guardian, Member, SchoolClass, Student
    from school_instance.models import Tenant as Row
    from shared.db import get_db

    with school_app.app_context():
        db = get_db()
        tenant_id = db.scalar(select(Row.id).where(Row.slug == tenant.client.slug))
        cls = SchoolClass(tenant_id=tenant_id, name="3.a")
        db.add(cls)
        db.flush()
        student = Student(
            tenant_id=tenant_id,
            class_id=cls.id,
            given_name=given,
            family_name=family,
            isikukood=code,
        )
        db.add(student)
        if guardian:
            member = Member(
                tenant_id=tenant_id,
                given_name=guardian[0],
                family_name=guardian[1],
                email=guardian[2],
                phone=phone,
                roles=["parent"],
            )
            db.add(member)
            db.flush()
            db.add(Guardian(tenant_id=tenant_id, student_id=student.id, member_id=member.id))
        db.commit()
        return student.id


def _apply(
    idp: str, slug: str, email: str, code: str, browser: Browser | None = None
) -> requests.Response:
    return post_form(
        browser or Browser(idp), f"{idp}/s/{slug}/apply", {"email": email, "child_isikukood": code}
    )


FORM = {
    "given_name": "Olga",
    "family_name": "Šmidt",
    "phone": "+372 5123 4567",
    "relation": "ema",
    "language": "et",
    "isikukood": "",
}


def _submit_application(
    idp: str, tenant: Tenant, email: str, inbox: Any, code: str = CHILD, own_code: str = ""
) -> None:
    """Apply, confirm by the mailed link and submit the form, in one browser."""
    browser = Browser(idp)
    assert _apply(idp, tenant.client.slug, email, code, browser).status_code == 200
    confirmed = use_link(browser, inbox(email)[-1])
    assert confirmed.status_code == 303
    form = browser.http.get(idp + confirmed.headers["Location"], timeout=10)
    assert form.status_code == 200
    assert f'value="{email}" readonly' in form.text and f'value="{code}" readonly' in form.text
    if own_code:  # the parent's own code is checked like the child's
        wrong = post_form(browser, form.url, {**FORM, "isikukood": own_code[:-1]})
        assert wrong.status_code == 400
        assert "Isikukood on täpselt 11 numbrit pikk; sisestatud on 10." in html.unescape(
            wrong.text
        )
    done = post_form(browser, form.url, {**FORM, "isikukood": own_code})
    assert done.status_code == 303, done.text
    page = browser.http.get(idp + done.headers["Location"], timeout=10)
    assert "vaatab selle üle tööpäevadel" in page.text


def _application_row(page: requests.Response) -> str:
    rows = re.findall(
        r'<li class="application".*?class="secondary reject".*?</li>', page.text, re.S
    )
    assert len(rows) == 1, page.text
    return rows[0]


def _decide(
    browser: Browser,
    tenant: Tenant,
    listing: requests.Response,
    action: str,
    reason: str = "",
    **ticked: str,
) -> requests.Response:
    """Press approve or reject on the one application listed (ticked: the form's checkboxes)."""
    forms = re.findall(r'<form method="post" action="([^"]+)">', _application_row(listing))
    url = next(f for f in forms if f.endswith("/" + action))
    csrf = CSRF_RE.search(listing.text)
    assert csrf
    return browser.http.post(
        tenant.url + html.unescape(url),
        data={"csrf_token": csrf.group(1), "reason": reason, **ticked},
        allow_redirects=False,
        timeout=10,
    )


def test_apply_confirm_approve_and_sign_in_with_the_welcome_link(
    idp, idp_app, make_tenant, make_person, school_app, inbox
) -> None:
    from sqlalchemy import select

    tenant = make_tenant("Pae Kool")
    admin = make_person(tenant.client, "Anu", "Allikas", ("admin",))
    _enrol(school_app, tenant, "Mia", "Šmidt", CHILD, guardian=("Igor", "Šmidt", "igor@example.ee"))
    email = "olga.smidt@example.ee"
    # Seed 003's way in: the school's front page, and the school's login page at the IdP.
    front = Browser(idp).http.get(f"{tenant.url}/", timeout=10)
    assert f'href="{idp}/s/{tenant.client.slug}/new">Loo uus konto</a>' in front.text
    login = Browser(idp).follow(f"{tenant.url}/auth/login", stop_prefix="\x00")
    assert f'href="/s/{tenant.client.slug}/new">Loo uus konto</a>' in login.text
    assert f'href="/s/{tenant.client.slug}/access">Saada mulle ligipääsuandmed</a>' in login.text
    new = Browser(idp).http.get(f"{idp}/s/{tenant.client.slug}/new", timeout=10)
    assert f'href="/s/{tenant.client.slug}/apply">Esita andmed ja taotle kontot</a>' in new.text
    _submit_application(idp, tenant, email, inbox, own_code=PARENT)

    admin_browser = Browser(idp)
    sign_in_at_school(admin_browser, tenant.url, admin)
    listing = admin_browser.http.get(f"{tenant.url}/admin/applications", timeout=10)
    row = html.unescape(_application_row(listing))
    assert "Olga Šmidt" in row and email in row
    assert "Laps: Mia Šmidt, klass 3.a" in row and "Igor Šmidt" in row
    assert 'data-flag="not-guardian"' in row  # knowing a child's code proves nothing
    assert 'data-flag="email-in-use"' not in row and 'data-flag="not-enrolled"' not in row

    # Not a known guardian: the admin confirms the risk and, having checked, records her.
    approved = _decide(
        admin_browser, tenant, listing, "approve", confirm_risk="not-guardian", add_guardian="1"
    )
    assert approved.status_code == 303, approved.text
    after = admin_browser.http.get(f"{tenant.url}/admin/applications", timeout=10)
    assert 'id="none"' in after.text
    assert "Ta on nüüd õpilase Mia Šmidt vanem." in html.unescape(after.text)
    [_, welcome] = inbox(email)
    assert "Pae Kool" in welcome["subject"]
    parent = Browser(idp)
    home = follow_to(parent, use_link(parent, welcome), tenant.url)
    assert "Olga Šmidt" in home.text and "Mia Šmidt" in home.text  # the child, as guardian
    assert use_link(Browser(idp), welcome).status_code == 410
    # A new person, with the code she gave (a later ID-card login finds her) and her phone.
    from idp.models import Person
    from shared.db import get_db

    with idp_app.app_context():
        people = get_db().scalars(select(Person).where(Person.email == email)).all()
        assert [(p.isikukood, p.phone, p.email_verified) for p in people] == [
            (PARENT, "+372 5123 4567", True)
        ]


def test_rejection_mails_the_reason(idp, make_tenant, make_person, school_app, inbox) -> None:
    tenant = make_tenant()
    admin = make_person(tenant.client, roles=("admin",))
    email = "reject-me@example.ee"
    _submit_application(idp, tenant, email, inbox, code=OTHER_CHILD)
    browser = Browser(idp)
    sign_in_at_school(browser, tenant.url, admin)
    listing = browser.http.get(f"{tenant.url}/admin/applications", timeout=10)
    assert 'data-flag="not-enrolled"' in _application_row(listing)
    assert _decide(browser, tenant, listing, "reject").status_code == 400  # a reason is needed
    assert (
        _decide(
            browser, tenant, listing, "reject", "Lapse isikukoodiga õpilast meie koolis ei ole."
        ).status_code
        == 303
    )
    [_, rejected] = inbox(email)
    assert "Lapse isikukoodiga õpilast meie koolis ei ole." in rejected["body"]


def test_one_school_cannot_see_or_decide_anothers_applications(
    idp, idp_app, make_tenant, make_person, inbox
) -> None:
    from sqlalchemy import select

    from idp.models import Application
    from shared.db import get_db

    first, second = make_tenant(), make_tenant()
    admin = make_person(first.client, roles=("admin",))
    other_admin = make_person(second.client, roles=("admin",))
    email = "first-school@example.ee"
    _submit_application(idp, first, email, inbox)
    with idp_app.app_context():
        application_id = get_db().scalar(
            select(Application.id).where(
                Application.email == email, Application.status == "pending"
            )
        )
    browser = Browser(idp)
    sign_in_at_school(browser, second.url, other_admin)
    listing = browser.http.get(f"{second.url}/admin/applications", timeout=10)
    assert 'id="none"' in listing.text and email not in listing.text
    csrf = CSRF_RE.search(browser.http.get(f"{second.url}/admin/classes", timeout=10).text)
    assert csrf
    for action in ("approve", "reject"):
        resp = browser.http.post(
            f"{second.url}/admin/applications/{application_id}/{action}",
            data={"csrf_token": csrf.group(1), "reason": "ei"},
            allow_redirects=False,
            timeout=10,
        )
        assert resp.status_code == 404, resp.text
    own = Browser(idp)
    sign_in_at_school(own, first.url, admin)
    still = own.http.get(f"{first.url}/admin/applications", timeout=10)
    assert f'data-id="{application_id}"' in still.text and len(inbox(email)) == 1


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("51107121761", "viimane (kontroll)number ei klapi"),
        ("51113321760", "sünnikuupäeva ei ole olemas"),
        ("5110712176", "täpselt 11 numbrit pikk; sisestatud on 10"),
        ("511071217601", "täpselt 11 numbrit pikk; sisestatud on 12"),
        ("5110712176\u0660", "ainult numbritest 0–9"),
        ("５１１０７１２１７６０", "ainult numbritest 0–9"),
    ],
)
def test_invalid_child_isikukood_refused_with_a_reason(
    idp, make_tenant, inbox, code, message
) -> None:
    tenant = make_tenant()
    resp = _apply(idp, tenant.client.slug, "wrong-code@example.ee", code)
    assert resp.status_code == 400
    assert message in html.unescape(resp.text)
    assert inbox("wrong-code@example.ee") == []


def test_same_answer_for_known_and_unknown_addresses(idp, make_tenant, make_person, inbox) -> None:
    tenant = make_tenant()
    known = make_person(tenant.client)
    answers = {
        (r.status_code, r.text)
        for r in (
            _apply(idp, tenant.client.slug, known.email, CHILD),
            _apply(idp, tenant.client.slug, "unknown-" + known.email, CHILD),
        )
    }
    assert len(answers) == 1 and next(iter(answers))[0] == 200


def test_links_are_bound_to_their_purpose(idp, make_tenant, make_person, inbox) -> None:
    tenant = make_tenant()
    person = make_person(tenant.client)
    _apply(idp, tenant.client.slug, person.email, CHILD)
    [confirmation] = inbox(person.email)
    _, token = link_of(confirmation)
    # A confirmation link cannot log in ...
    assert (
        post_form(
            Browser(idp), f"{idp}/s/{tenant.client.slug}/signin", {"token": token}
        ).status_code
        == 410
    )
    post_form(Browser(idp), f"{idp}/s/{tenant.client.slug}/access", {"email": person.email})
    login = inbox(person.email)[-1]
    _, login_token = link_of(login)
    # ... nor a login link confirm an application; each still works for its own purpose.
    assert (
        post_form(
            Browser(idp), f"{idp}/s/{tenant.client.slug}/apply/confirm", {"token": login_token}
        ).status_code
        == 410
    )
    assert use_link(Browser(idp), confirmation).status_code == 303
    assert use_link(Browser(idp), login).status_code == 303
