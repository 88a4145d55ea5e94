"""From `make run` (issue 7, acceptance 1; seed 003's way out): a parent whose account e-mail the
school typed wrong logs in at Laagri Kool with ID-kaart through the eID stand-in
(http://localhost:5009), corrects the e-mail in her Stuudium ID profile, confirms it by the link
mailed to the new address (read from the mail catcher's JSON at :8025), and from then on
"Saada mulle ligipääsuandmed" with the corrected address brings her a link that signs her in. The
old, mistyped address gets the change notice and nothing else.

Screenshots go to artifacts/e2e/ (eid-email-*.png).
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from deploy.dev.diary_demo import MISTYPED
from deploy.dev.seed import DEMO_PEOPLE
from tests.e2e.mailbox import mail_link, mail_to
from tests.e2e.watch import watched_page

KOOL = "http://localhost:5001"
STANDIN = "http://localhost:5009"
OLD_EMAIL, GIVEN, FAMILY, ISIKUKOOD, MEMBERSHIPS, _LINKED = DEMO_PEOPLE[3]  # Mari Maasikas
NAME = f"{GIVEN} {FAMILY}"
NEW_EMAIL = "mari.maasikas@gmail.ee"
CHILD = "Liisa Maasikas"  # her child in 3.a


@pytest.mark.e2e
def test_a_parent_with_a_mistyped_email_corrects_it_after_eid_and_gets_access_links(
    chromium, dev_system: str, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    assert OLD_EMAIL == MISTYPED and MEMBERSHIPS == [("laagri-kool", ["parent"])]
    w = watched_page(chromium, artifacts, "eid-email-")
    page, problems, shot = w.page, w.problems, w.shot

    def ask_for_access_link(email: str) -> None:
        page.goto(f"{KOOL}/")
        page.locator("#login").click()
        page.wait_for_url(f"{dev_system}/login**")
        page.locator("#send-access").click()
        expect(page.locator("h1")).to_have_text("Saada mulle ligipääsuandmed")
        page.locator("#email").fill(email)
        page.get_by_role("button", name="Saada link").click()
        expect(page.locator("#sent")).to_be_visible()

    try:
        # 1. Laagri Kool → Logi sisse → ID-kaart → the stand-in: she picks herself by isikukood.
        page.goto(f"{KOOL}/")
        page.locator("#login").click()
        page.wait_for_url(f"{dev_system}/login**")
        expect(page.locator("button.eid", has_text="ID-kaart")).to_be_visible()
        shot("1-idp-login")
        page.locator("button.eid", has_text="ID-kaart").click()
        page.wait_for_url(f"{STANDIN}/oidc/authorize**")
        expect(page.locator(".banner")).to_have_text(
            "ARENDUSKESKKOND — mitte toodangus kasutamiseks"
        )
        shot("2-standin")
        page.locator("button", has_text=ISIKUKOOD).click()

        # 2. Signed in at Laagri Kool without e-mail or password; her child is there.
        page.wait_for_url(f"{KOOL}/**")
        expect(page.locator("details.account .who")).to_have_text(NAME)
        expect(page.locator("#children")).to_contain_text(CHILD)
        shot("3-laagri-kool-signed-in")

        # 3. Profile → Stuudium ID → Muuda e-posti aadressi: the mistyped address is shown.
        page.locator("details.account summary").click()
        page.locator("#menu-profile").click()
        page.wait_for_url(f"{KOOL}/profile")
        page.locator("#idp-account").click()
        page.wait_for_url(f"{dev_system}/account")
        expect(page.locator("#email")).to_have_text(OLD_EMAIL)
        page.locator("#change-email").click()
        expect(page.locator("h1")).to_have_text("Muuda e-posti aadressi")
        page.locator("#email").fill(NEW_EMAIL)
        shot("4-change-email")
        page.get_by_role("button", name="Saada kinnituslink").click()
        expect(page.locator("#sent")).to_contain_text(NEW_EMAIL)

        # 4. The confirmation mail to the new address: its link, then the page's button.
        page.goto(mail_link(NEW_EMAIL, 1))
        expect(page.locator("h1")).to_have_text("Kinnita uus e-posti aadress")
        shot("5-confirm")
        page.locator("#use-link").click()
        expect(page.locator("h1")).to_have_text("E-posti aadress on muudetud")
        expect(page.locator("main")).to_contain_text(NEW_EMAIL)
        shot("6-changed")
        page.goto(f"{dev_system}/account")
        expect(page.locator("#email")).to_have_text(NEW_EMAIL)

        # 5. The mistyped address got the notice (it may well reach someone else: no link in it).
        deadline = time.monotonic() + 30
        while not mail_to(OLD_EMAIL) and time.monotonic() < deadline:
            time.sleep(0.3)
        notices = mail_to(OLD_EMAIL)
        assert [m["subject"] for m in notices] == ["Sinu Stuudium ID e-posti aadress muudeti"]
        assert not [u for u in notices[0]["links"] if "#" in u], notices[0]

        # 6. Log out at the school.
        page.goto(f"{KOOL}/profile")
        page.locator("#logout").click()
        page.wait_for_url(f"{dev_system}/logout**")
        expect(page.locator("h1")).to_have_text("Oled välja logitud")
        page.wait_for_url(f"{KOOL}/**")

        # 7. "Saada mulle ligipääsuandmed": first the old address (the page answers the same, the
        # outbox drops it), then the corrected one — queued after it, so its mail arriving means
        # the old request has been dealt with.
        ask_for_access_link(OLD_EMAIL)
        ask_for_access_link(NEW_EMAIL)
        shot("7-access-sent")
        access = mail_link(NEW_EMAIL, 2)
        assert mail_to(NEW_EMAIL)[1]["subject"] == "Sisselogimise link: Laagri Kool"
        assert mail_to(OLD_EMAIL) == notices

        # 8. The access link signs her in at Laagri Kool.
        page.goto(access)
        page.locator("#use-link").click()
        page.wait_for_url(f"{KOOL}/**")
        expect(page.locator("details.account .who")).to_have_text(NAME)
        expect(page.locator("#children")).to_contain_text(CHILD)
        shot("8-signed-in-by-link")
        final_url = page.url
    finally:
        page.context.close()

    assert urlsplit(final_url).netloc == "localhost:5001", final_url
    assert not problems, problems
