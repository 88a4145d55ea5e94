"""From `make run`: the demo admin (an account at all three demo schools) signs in at Laagri
Kool, jumps by the logos to the other two schools (signed in silently), logs out at Laagri
Huvialakool, and is then signed out at every school: each front page shows the sign-in button,
and a silent sign-in attempt (prompt=none) answers login_required and ends on the login page.

Screenshots go to artifacts/e2e/ (logout-*.png).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from deploy.dev.seed import DEMO_PASSWORD, DEMO_PEOPLE, DEMO_SCHOOLS
from tests.e2e.watch import watched_page

EMAIL, GIVEN, FAMILY = DEMO_PEOPLE[2][:3]  # the demo admin: every demo school
NAME = f"{GIVEN} {FAMILY}"
SCHOOLS = {name: f"http://localhost:{port}" for _slug, name, port in DEMO_SCHOOLS}
KOOL, HUVIALAKOOL, LASTEAED = SCHOOLS


@pytest.mark.e2e
def test_logout_at_one_school_signs_out_at_all_three(
    chromium, dev_system: str, artifacts: Path
) -> None:
    from playwright.sync_api import Page, expect

    assert EMAIL == "admin@laagri.demo" and len(DEMO_PEOPLE[2][4]) == len(SCHOOLS) == 3
    w = watched_page(chromium, artifacts, "logout-")
    page, navigations, problems, shot = w.page, w.navigations, w.problems, w.shot

    def signed_in_at(p: Page, school: str) -> None:
        expect(p.locator("a.school-here .school-name")).to_have_text(school)
        expect(p.locator("details.account .who")).to_have_text(NAME)
        expect(p.locator("input[type=password]")).to_have_count(0)

    try:
        # 1. Sign in at Laagri Kool with e-mail and password.
        page.goto(f"{SCHOOLS[KOOL]}/")
        page.locator("#login").click()
        page.wait_for_url(f"{dev_system}/login**")
        page.locator("#email").fill(EMAIL)
        page.locator("#password").fill(DEMO_PASSWORD)
        page.locator("form button[type=submit]").click()
        page.wait_for_url(f"{SCHOOLS[KOOL]}/**")
        signed_in_at(page, KOOL)
        shot("1-laagri-kool-signed-in")
        typed_once = len(navigations)

        # 2. The logos: Laagri Huvialakool, then from there Laagri Lasteaed, nothing typed.
        for number, (here, there) in enumerate(
            ((KOOL, HUVIALAKOOL), (HUVIALAKOOL, LASTEAED)), start=2
        ):
            page.locator("nav a.school-jump", has_text=there).click()
            page.wait_for_url(f"{SCHOOLS[there]}/**")
            page.wait_for_load_state("load")
            signed_in_at(page, there)
            shot(f"{number}-{there.lower().replace(' ', '-')}-signed-in")
        jumped = navigations[typed_once:]
        assert not [u for u in jumped if u.startswith(f"{dev_system}/login")], jumped

        # 3. Log out at Laagri Huvialakool (its profile page's "Logi välja").
        page.goto(f"{SCHOOLS[HUVIALAKOOL]}/profile")
        page.locator("#logout").click()
        page.wait_for_url(f"{dev_system}/logout**")
        expect(page.locator("h1")).to_have_text("Oled välja logitud")
        expect(page.locator("#schools li[data-state=delivered]")).to_have_count(3)
        shot("4-idp-logged-out")
        # With its states shown, the page returns to the school that asked, by itself.
        page.wait_for_url(f"{SCHOOLS[HUVIALAKOOL]}/**")

        # 4. Every school: the sign-in button, and a silent attempt ends on the login page.
        for number, school in enumerate(SCHOOLS, start=5):
            base = SCHOOLS[school]
            page.goto(f"{base}/")
            expect(page.locator("#login")).to_be_visible()
            expect(page.locator("details.account")).to_have_count(0)
            shot(f"{number}-{school.lower().replace(' ', '-')}-signed-out")
            before = len(navigations)
            page.goto(
                f"{base}/auth/login?"
                + urlencode({"iss": dev_system, "target_link_uri": f"{base}/"})
            )
            page.wait_for_url(f"{dev_system}/login**")
            expect(page.locator("#password")).to_be_visible()
            silent = [u for u in navigations[before:] if u.startswith(f"{base}/auth/callback")]
            assert [parse_qs(urlsplit(u).query).get("error") for u in silent] == [
                ["login_required"]
            ], navigations[before:]
        shot("8-idp-login")
    finally:
        page.context.close()
    assert not problems, problems
