"""From `make run`: log in at Laagri Kool as the demo teacher, click the Laagri Lasteaed logo and
land signed in there without entering anything (silent sign-in with prompt=none).

Screenshots of the key screens go to artifacts/e2e/ (desktop-*.png and phone-*.png).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from deploy.dev.seed import DEMO_PASSWORD, DEMO_PEOPLE
from tests.e2e.watch import watched_page

KOOL = "http://localhost:5001"
LASTEAED = "http://localhost:5003"
EMAIL, GIVEN, FAMILY = DEMO_PEOPLE[0][:3]  # the demo teacher: Laagri Kool + Laagri Lasteaed
NAME = f"{GIVEN} {FAMILY}"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.mark.e2e
@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_jump_from_laagri_kool_to_laagri_lasteaed_signs_in_silently(
    chromium, dev_system: str, artifacts: Path, device: str
) -> None:
    from playwright.sync_api import expect

    assert EMAIL == "opetaja@laagri.demo"
    phone = device == "phone"
    w = watched_page(
        chromium,
        artifacts,
        f"{device}-",
        viewport=VIEWPORTS[device],
        is_mobile=phone,
        has_touch=phone,
        device_scale_factor=2 if phone else 1,
    )
    page, navigations, problems, shot = w.page, w.navigations, w.problems, w.shot

    try:
        # 1. Laagri Kool's front page, not signed in.
        page.goto(f"{KOOL}/")
        expect(page.locator("#login")).to_be_visible()
        shot("1-laagri-kool")

        # 2. "Logi sisse" leads to the IdP's login page; the teacher types e-mail and password.
        page.locator("#login").click()
        page.wait_for_url(f"{dev_system}/login**")
        page.locator("#email").fill(EMAIL)
        page.locator("#password").fill(DEMO_PASSWORD)
        shot("2-idp-login")
        page.locator("form button[type=submit]").click()

        # 3. Back at Laagri Kool, signed in.
        page.wait_for_url(f"{KOOL}/**")
        expect(page.locator("details.account .who")).to_have_text(NAME)
        expect(page.locator("main")).to_contain_text(NAME)
        jump = page.locator("nav a.school-jump", has_text="Laagri Lasteaed")
        expect(jump).to_be_visible()
        logo = jump.locator("img")
        expect(logo).to_be_visible()
        assert logo.evaluate("img => img.complete && img.naturalWidth > 0"), (
            f"the Laagri Lasteaed logo did not load: {logo.get_attribute('src')} {problems}"
        )
        shot("3-laagri-kool-signed-in")
        after_login = len(navigations)

        # 4. The Laagri Lasteaed logo in the navigation bar: signed in there, nothing typed.
        jump.click()
        page.wait_for_url(f"{LASTEAED}/**")
        page.wait_for_load_state("load")
        expect(page.locator("details.account .who")).to_have_text(NAME)
        expect(page.locator("main")).to_contain_text(NAME)
        expect(page.locator("a.school-here .school-name")).to_have_text("Laagri Lasteaed")
        expect(page.locator("input[type=password]")).to_have_count(0)
        shot("4-laagri-lasteaed-signed-in")
        final_url = page.url
    finally:
        page.context.close()

    assert urlsplit(final_url).netloc == "localhost:5003", final_url
    jumped = navigations[after_login:]
    idp_pages = [u for u in jumped if u.startswith(dev_system)]
    assert not [u for u in idp_pages if urlsplit(u).path.startswith("/login")], (
        f"the IdP's login page was shown after the first login: {jumped}"
    )
    # The jump went through the IdP silently: an authorization request with prompt=none.
    assert any(parse_qs(urlsplit(u).query).get("prompt") == ["none"] for u in idp_pages), jumped
    assert not problems, problems
