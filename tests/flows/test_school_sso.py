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
