"""From `make run`, seed 003 end to end: a parent without ID-card or Smart-ID applies at Laagri
Kool with her e-mail and her child's isikukood, confirms by the link in the mail (read from the
dev mail catcher's JSON list at http://localhost:8025/api/messages), fills in the application,
the school's admin approves it in the school's e-diary, the welcome link signs her straight in,
she sets a password in her profile, logs out, logs in with it and sees her child.

Screenshots go to artifacts/e2e/ (application-*.png).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.dev.diary_demo import DEMO_STUDENT_CODES
from deploy.dev.seed import DEMO_PASSWORD, DEMO_PEOPLE
from tests.e2e.mailbox import mail_link

KOOL = "http://localhost:5001"
PARENT_EMAIL = "olga.tamm@example.ee"
CHILD_CODE = DEMO_STUDENT_CODES["laagri-kool"]["Oskar"]  # Oskar Tamm, 3.a: no parent yet
ADMIN_EMAIL = DEMO_PEOPLE[2][0]
NEW_PASSWORD = "Kaks kassi jalutavad mööda katust"


@pytest.mark.e2e
def test_a_parent_applies_is_approved_and_signs_in(
    chromium, dev_system: str, artifacts: Path
) -> None:
    from playwright.sync_api import BrowserContext, Page, expect

    problems: list[str] = []

    def new_page(context: BrowserContext) -> Page:
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on(
            "console",
            lambda m: (
                problems.append(f"console: {m.text}")
                if m.type == "error" and not m.text.startswith("Failed to load resource")
                else None
            ),
        )
        return page

    parent_context = chromium.new_context(
        viewport={"width": 390, "height": 844}, locale="et-EE", is_mobile=True, has_touch=True
    )
    admin_context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="et-EE")
    parent, admin = new_page(parent_context), new_page(admin_context)

    def shot(page: Page, name: str) -> None:
        page.screenshot(path=str(artifacts / f"application-{name}.png"), full_page=True)

    try:
        # 1. Laagri Kool's front page → Logi sisse → Loo uus konto → Esita andmed ja taotle.
        parent.goto(f"{KOOL}/")
        parent.locator("#login").click()
        parent.wait_for_url(f"{dev_system}/login**")
        parent.locator("#new-account").click()
        parent.locator("#door-apply").click()
        expect(parent.locator("h1")).to_have_text("Esita taotlus sisse logimata")
        # 2. The parent's e-mail and the child's isikukood → Edasi.
        parent.locator("#email").fill(PARENT_EMAIL)
        parent.locator("#child_isikukood").fill(CHILD_CODE)
        shot(parent, "1-apply")
        parent.get_by_role("button", name="Edasi").click()
        expect(parent.locator("#sent")).to_be_visible()
        # 3–4. The mailed link opens the form with the e-mail and the code filled in.
        parent.goto(mail_link(PARENT_EMAIL, 1))
        parent.locator("#use-link").click()
        expect(parent.locator("#email")).to_have_value(PARENT_EMAIL)
        expect(parent.locator("#child_isikukood")).to_have_value(CHILD_CODE)
        parent.locator("#given_name").fill("Olga")
        parent.locator("#family_name").fill("Tamm")
        parent.locator("#phone").fill("+372 5555 1234")
        parent.locator("#relation").select_option("ema")
        shot(parent, "2-form")
        parent.locator("#submit-application").click()
        expect(parent.locator("#next")).to_contain_text("vaatab selle üle tööpäevadel")
        shot(parent, "3-submitted")

        # 5. The school's admin checks it against the roster and approves it.
        admin.goto(f"{KOOL}/")
        admin.locator("#login").click()
        admin.wait_for_url(f"{dev_system}/login**")
        admin.locator("#email").fill(ADMIN_EMAIL)
        admin.locator("#password").fill(DEMO_PASSWORD)
        admin.locator("form button[type=submit]").click()
        admin.wait_for_url(f"{KOOL}/**")
        admin.locator("#nav-applications").click()
        row = admin.locator("li.application", has_text=PARENT_EMAIL)
        expect(row).to_contain_text("Laps: Oskar Tamm, klass 3.a")
        expect(row.locator("[data-flag=not-enrolled]")).to_have_count(0)
        shot(admin, "4-review")
        # Oskar has no known guardian: the admin confirms the risk and records the guardian.
        row.locator("[name=confirm_risk]").check()
        row.locator("[name=add_guardian]").check()
        row.locator("button.approve").click()
        expect(admin.locator("li.application", has_text=PARENT_EMAIL)).to_have_count(0)

        # 6. The welcome link signs her in; with no password yet she is offered one, skips it
        # for now and is at Laagri Kool, where she sees her child.
        parent.goto(mail_link(PARENT_EMAIL, 2))
        parent.locator("#use-link").click()
        expect(parent.locator("h1")).to_have_text("Sea endale parool")
        shot(parent, "5-password-offer")
        parent.locator("#skip").click()
        parent.wait_for_url(f"{KOOL}/**")
        expect(parent.locator("details.account .who")).to_have_text("Olga Tamm")
        expect(parent.locator("#children")).to_contain_text("Oskar Tamm")
        shot(parent, "5-signed-in-by-link")

        # 7–8. Sinu profiil → Stuudium ID → Muuda parooli: the new password twice → Salvesta.
        parent.goto(f"{KOOL}/profile")
        parent.locator("#idp-account").click()
        parent.locator("#password").click()
        expect(parent.locator("#current_password")).to_have_count(0)  # she has none yet
        parent.locator("#new_password").fill(NEW_PASSWORD)
        parent.locator("#new_password_again").fill(NEW_PASSWORD)
        parent.get_by_role("button", name="Salvesta").click()
        expect(parent.locator("h1")).to_have_text("Parool on salvestatud")

        # Log out at the school, then log in with the new password and see the child.
        parent.goto(f"{KOOL}/profile")
        parent.locator("#logout").click()
        parent.wait_for_url(f"{dev_system}/logout**")
        expect(parent.locator("h1")).to_have_text("Oled välja logitud")
        # The logged-out page returns her to the school by itself.
        parent.wait_for_url(f"{KOOL}/**")
        expect(parent.locator("details.account")).to_have_count(0)
        parent.goto(f"{KOOL}/")
        parent.locator("#login").click()
        parent.wait_for_url(f"{dev_system}/login**")
        parent.locator("#email").fill(PARENT_EMAIL)
        parent.locator("#password").fill(NEW_PASSWORD)
        parent.locator("form button[type=submit]").click()
        parent.wait_for_url(f"{KOOL}/**")
        expect(parent.locator("details.account .who")).to_have_text("Olga Tamm")
        expect(parent.locator("#children")).to_contain_text("Oskar Tamm")
        shot(parent, "6-signed-in-with-password")
    finally:
        parent_context.close()
        admin_context.close()
    assert not problems, problems
