"""From `make run` (issue 5, acceptance 1): the demo parent logs in at Laagri Kool, links the
Laagri Huvialakool account by logging in to it, confirms, and from then on one login opens both:
the Huvialakool logo is in Laagri Kool's navigation and a click signs in there silently.

The launcher's state is its own per run (tests/e2e/conftest.py), so the demo accounts start
unlinked. Screenshots of the key screens go to artifacts/e2e/link-*.png.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from deploy.dev.seed import DEMO_PASSWORD, DEMO_PEOPLE
from tests.e2e.watch import watched_page

KOOL = "http://localhost:5001"
HUVIKOOL = "http://localhost:5002"
EMAIL, GIVEN, FAMILY, _CODE, MEMBERSHIPS, LINKED = DEMO_PEOPLE[1]  # the demo parent
NAME = f"{GIVEN} {FAMILY}"


@pytest.mark.e2e
def test_the_demo_parent_links_laagri_huvialakool_from_laagri_kool(
    chromium, dev_system: str, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    assert EMAIL == "lapsevanem@laagri.demo" and not LINKED
    assert [slug for slug, _roles in MEMBERSHIPS] == ["laagri-kool", "laagri-huvialakool"]
    w = watched_page(chromium, artifacts, "link-")
    page, navigations, problems, shot = w.page, w.navigations, w.problems, w.shot

    try:
        # 1. The parent signs in at Laagri Kool; no other school in the navigation yet.
        page.goto(f"{KOOL}/")
        page.locator("#login").click()
        page.wait_for_url(f"{dev_system}/login**")
        page.locator("#email").fill(EMAIL)
        page.locator("#password").fill(DEMO_PASSWORD)
        page.locator("form button[type=submit]").click()
        page.wait_for_url(f"{KOOL}/**")
        expect(page.locator("details.account .who")).to_have_text(NAME)
        expect(page.locator("nav a.school-jump")).to_have_count(0)

        # 2. The profile's button opens the IdP's linking page; the parent picks the school.
        page.locator("details.account summary").click()
        page.locator("#menu-profile").click()
        page.wait_for_url(f"{KOOL}/profile")
        shot("1-profile")
        page.locator("#link-school").click()
        page.wait_for_url(f"{dev_system}/link/start?school=laagri-kool")
        expect(page.locator("button.school-choice", has_text="Laagri Kool")).to_have_count(0)
        shot("2-choose")
        page.locator("button.school-choice", has_text="Laagri Huvialakool").click()

        # 3. The Huvialakool account's login: the proof that it is the parent's own.
        expect(page.locator("h1")).to_have_text("Logi sisse seotava kontoga")
        expect(page.locator("header .school")).to_contain_text("Laagri Huvialakool")
        page.locator("#email").fill(EMAIL)
        page.locator("#password").fill(DEMO_PASSWORD)
        shot("3-login-other")
        page.locator("form button[type=submit]").click()

        # 4. The data match: both accounts shown, the parent confirms.
        expect(page.locator("h1")).to_have_text("Kinnita kontode sidumine")
        expect(page.locator("#mine")).to_contain_text("Laagri Kool")
        expect(page.locator("#theirs")).to_contain_text("Laagri Huvialakool")
        shot("4-confirm")
        page.locator("#confirm").click()
        expect(page.locator("h1")).to_have_text("Kontod on seotud")
        shot("5-linked")

        # 5. Back at Laagri Kool (silently signed in again): the Huvialakool logo is there.
        page.locator("#back").click()
        page.wait_for_url(f"{KOOL}/profile")
        jump = page.locator("nav a.school-jump", has_text="Laagri Huvialakool")
        expect(jump).to_be_visible()
        logo = jump.locator("img")
        expect(logo).to_be_visible()
        assert logo.evaluate("img => img.complete && img.naturalWidth > 0"), problems
        expect(page.locator("#linked-schools")).to_contain_text("Laagri Huvialakool")
        shot("6-laagri-kool-linked")
        after_link = len(navigations)

        # 6. A click on the logo: signed in at Laagri Huvialakool without typing anything, and
        # its navigation shows Laagri Kool's logo.
        jump.click()
        page.wait_for_url(f"{HUVIKOOL}/**")
        page.wait_for_load_state("load")
        expect(page.locator("a.school-here .school-name")).to_have_text("Laagri Huvialakool")
        expect(page.locator("details.account .who")).to_have_text(NAME)
        expect(page.locator("input[type=password]")).to_have_count(0)
        expect(page.locator("nav a.school-jump", has_text="Laagri Kool")).to_be_visible()
        shot("7-huvialakool-signed-in")
        final_url = page.url
    finally:
        page.context.close()

    assert urlsplit(final_url).netloc == "localhost:5002", final_url
    jumped = [u for u in navigations[after_link:] if u.startswith(dev_system)]
    assert not [u for u in jumped if urlsplit(u).path.startswith("/login")], jumped
    assert not problems, problems
