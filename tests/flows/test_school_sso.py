"""One login across schools: sign in at one school, jump to another without typing anything."""

from __future__ import annotations

from tests.support import sign_in_at_school as _sign_in


def test_sign_in_at_a_school_shows_the_diary(browser, make_tenant, make_person):
    school = make_tenant("Laagri Kool")
    person = make_person(
        school.client, given_name="Tiina", family_name="Õunapuu", roles=("teacher",)
    )
    _sign_in(browser, school.url, person)
    home = browser.http.get(school.url + "/", timeout=10)
    assert "Tiina Õunapuu" in home.text


def test_jump_to_a_linked_school_signs_in_silently(browser, make_tenant, make_person, link_account):
    kool = make_tenant("Laagri Kool")
    lasteaed = make_tenant("Laagri Lasteaed")
    teacher = make_person(
        kool.client, given_name="Tiina", family_name="Õunapuu", roles=("teacher",)
    )
    link_account(teacher, lasteaed.client, ["parent"])
    _sign_in(browser, kool.url, teacher)
    home = browser.http.get(kool.url + "/", timeout=10)
    assert "Laagri Lasteaed" in home.text
    import re

    jump = re.search(r'class="school-jump" href="([^"]+)"', home.text)
    assert jump, home.text
    landed = browser.follow(jump.group(1).replace("&amp;", "&"), stop_prefix="\x00")
    assert landed.status_code == 200
    assert landed.url.startswith(lasteaed.url)
    assert "Tiina Õunapuu" in landed.text
    assert 'name="password"' not in landed.text


def test_signing_in_again_brings_the_schools_copy_up_to_date(
    browser, idp_app, school_app, make_tenant, make_person
):
    """The school's copy of a person follows the ID token at each sign-in: what the IdP changed
    is written, what the school alone keeps (the phone) and the row itself stay."""
    from sqlalchemy import select, update

    from idp.models import Account, Person
    from school_instance.models import Member
    from shared.db import get_db
    from tests.support import Browser

    school = make_tenant("Laagri Kool")
    person = make_person(school.client, given_name="Tiina", family_name="Õunapuu")
    _sign_in(browser, school.url, person)

    def member() -> dict:
        with school_app.app_context():
            row = get_db().execute(select(Member.__table__).where(Member.sub == person.sub)).one()
            return row._asdict()

    first = member()
    assert (first["given_name"], first["family_name"], first["roles"]) == (
        "Tiina",
        "Õunapuu",
        ["parent"],
    )
    with school_app.app_context():
        get_db().execute(
            update(Member).where(Member.id == first["id"]).values(phone="+372 5555 1234")
        )
        get_db().commit()
    with idp_app.app_context():
        db = get_db()
        person_id = db.scalar(select(Account.person_id).where(Account.sub == person.sub))
        db.execute(update(Person).where(Person.id == person_id).values(family_name="Kask"))
        db.commit()

    _sign_in(Browser(browser.issuer), school.url, person)
    again = member()
    assert again["id"] == first["id"]
    assert (again["given_name"], again["family_name"]) == ("Tiina", "Kask")
    assert (again["email"], again["roles"], again["phone"]) == (
        first["email"],
        ["parent"],
        "+372 5555 1234",
    )
