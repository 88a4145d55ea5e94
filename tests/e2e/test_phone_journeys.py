"""The two seed documents' journeys on a phone (390×844), in Estonian and in Russian.

Seed 000: the demo parent logs in at Laagri Kool, links the Laagri Huvialakool account, jumps
there by its logo in the bar, logs out at the hobby school, is returned there by the IdP's
logged-out page by itself, and is signed out at both. Seed 003: a parent without an account
applies at Laagri Huvialakool for Hugo Rebane by his isikukood, the admin approves, the welcome
link signs her in, she is offered a password, sets it and sees her child.

Every page on the way must be in the journey's language, have a way onward (a link or button
besides the language switch) and, at a school, show the schools' names in the bar. Screenshots
go to artifacts/e2e/phone/. The demo parent and the admin are put back as seeded afterwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from deploy.dev.diary_demo import DEMO_STUDENT_CODES
from deploy.dev.seed import DEMO_PASSWORD
from tests.e2e.a11y import BROWSER_LOCALES, PHONE, assert_school_in_bar, assert_way_onward
from tests.e2e.mailbox import mail_link
from tests.e2e.phone_people import (
    ADMIN,
    IDP,
    NAMES,
    PARENT,
    SCHOOLS,
    language,
    reset_demo_parent,
    restore_language,
    sign_in,
    speak,
)

KOOL, HOBBY = SCHOOLS["laagri-kool"], SCHOOLS["laagri-huvialakool"]
HUGO = DEMO_STUDENT_CODES["laagri-huvialakool"]["Hugo"]
NEW_PASSWORD = "Kaks kassi jalutavad mööda katust"
RETURN_SECONDS = 2.0  # the logged-out page returns to the school after at most this long
LANGUAGES = ["et", "ru"]


@dataclass
class Journey:
    """A phone page walking one journey in one language; each step is checked and shot."""

    page: Any
    lang: str
    shots: Path
    name: str
    problems: list[str] = field(default_factory=list)
    count: int = 0

    def step(self, title: str, *, bar: tuple[str, ...] = ()) -> None:
        """Check the page (language, a way onward, the schools in the bar) and shoot it."""
        self.page.wait_for_load_state("load")
        assert language(self.page) == self.lang, f"{title}: {self.page.url} is not in {self.lang}"
        assert_way_onward(self.page)
        for number, slug in enumerate(bar):
            assert_school_in_bar(self.page, NAMES[slug], here=number == 0)
        self.count += 1
        path = self.shots / f"{self.name}-{self.lang}-{self.count:02d}-{title}.png"
        self.page.screenshot(path=str(path), full_page=True)


def _journey(chromium: Any, artifacts: Path, name: str, lang: str) -> Journey:
    """A new phone context in the language's browser locale, its problems recorded."""
    shots = artifacts / "phone"
    shots.mkdir(parents=True, exist_ok=True)
    ctx = chromium.new_context(locale=BROWSER_LOCALES[lang], **PHONE)
    ctx.set_default_timeout(15_000)
    page = ctx.new_page()
    j = Journey(page, lang, shots, name)
    page.on("pageerror", lambda e: j.problems.append(f"page error: {e}"))
    page.on(
        "console",
        lambda m: (
            j.problems.append(f"console: {m.text}")
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: j.problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    return j


def _open_account_menu(page: Any) -> None:
    page.locator("details.account summary").click()


@pytest.mark.e2e
@pytest.mark.parametrize("lang", LANGUAGES)
def test_seed_000_link_jump_and_log_out_everywhere_on_a_phone(
    chromium: Any, dev_system: str, artifacts: Path, lang: str
) -> None:
    from playwright.sync_api import expect

    reset_demo_parent(chromium)  # an earlier browser test may have linked the two accounts
    j = _journey(chromium, artifacts, "seed000", lang)
    page, step = j.page, j.step
    try:
        # Laagri Kool's front page, then Stuudium ID's login.
        page.goto(f"{KOOL}/")
        step("kool-front", bar=("laagri-kool",))
        page.locator("#login").click()
        page.wait_for_url(f"{IDP}/login**")
        step("login")
        page.locator("#email").fill(PARENT)
        page.locator("#password").fill(DEMO_PASSWORD)
        page.locator("form button[type=submit]").click()
        page.wait_for_url(f"{KOOL}/**")
        speak(page, lang)  # the parent's language from now on, at every school
        step("kool-signed-in", bar=("laagri-kool",))
        expect(page.locator("header.bar a.school-jump")).to_have_count(0)

        # Profile → "Seo oma konto teise kooliga" → Laagri Huvialakool → its login → confirm.
        _open_account_menu(page)
        page.locator("#menu-profile").click()
        page.wait_for_url(f"{KOOL}/profile")
        step("profile", bar=("laagri-kool",))
        page.locator("#link-school").click()
        page.wait_for_url(f"{IDP}/link/start**")
        step("link-choose")
        page.locator("button.school-choice", has_text=NAMES["laagri-huvialakool"]).click()
        page.locator("#email").wait_for()
        step("link-login")
        page.locator("#email").fill(PARENT)
        page.locator("#password").fill(DEMO_PASSWORD)
        page.locator("form button[type=submit]").click()
        page.locator("#confirm").wait_for()
        step("link-confirm")
        page.locator("#confirm").click()
        page.locator("#back").wait_for()
        step("linked")
        page.locator("#back").click()
        page.wait_for_url(f"{KOOL}/**")
        step("kool-linked", bar=("laagri-kool", "laagri-huvialakool"))

        # The hobby school's logo in the bar: signed in there without typing anything.
        page.locator("header.bar a.school-jump", has_text=NAMES["laagri-huvialakool"]).click()
        page.wait_for_url(f"{HOBBY}/**")
        step("hobby-signed-in", bar=("laagri-huvialakool", "laagri-kool"))
        expect(page.locator("input[type=password]")).to_have_count(0)

        # Log out at the hobby school: the IdP's page says so and returns there by itself.
        _open_account_menu(page)
        page.locator("#menu-logout").click()
        page.wait_for_url(f"{IDP}/logout**")
        expect(page.locator("#schools li[data-state=delivered]")).to_have_count(2)
        shown = time.monotonic()
        step("logged-out")
        page.wait_for_url(f"{HOBBY}/**", timeout=(RETURN_SECONDS + 3) * 1000)
        waited = time.monotonic() - shown
        assert waited <= RETURN_SECONDS + 1.0, f"returned after {waited:.1f} s"
        step("hobby-returned", bar=("laagri-huvialakool",))
        expect(page.locator("details.account")).to_have_count(0)

        # Signed out at both schools.
        for slug in ("laagri-huvialakool", "laagri-kool"):
            page.goto(f"{SCHOOLS[slug]}/")
            expect(page.locator("#login")).to_be_visible()
            expect(page.locator("details.account")).to_have_count(0)
            step(f"{slug}-signed-out", bar=(slug,))
    finally:
        page.context.close()
        reset_demo_parent(chromium)
    assert not j.problems, j.problems


@pytest.mark.e2e
@pytest.mark.parametrize("lang", LANGUAGES)
def test_seed_003_a_parent_applies_at_laagri_huvialakool_on_a_phone(
    chromium: Any, dev_system: str, artifacts: Path, lang: str
) -> None:
    from playwright.sync_api import expect

    email = f"{'kadri' if lang == 'et' else 'svetlana'}.rebane.{lang}@example.ee"
    parent = _journey(chromium, artifacts, "seed003", lang)
    admin = _journey(chromium, artifacts, "seed003-admin", lang)
    page, step = parent.page, parent.step
    try:
        # 1. The hobby school's front page → "Loo uus konto" → "Esita andmed ja taotle kontot".
        page.goto(f"{HOBBY}/")
        step("front", bar=("laagri-huvialakool",))
        page.locator("#new-account").click()
        page.wait_for_url(f"{IDP}/s/laagri-huvialakool/new")
        step("new-account")
        page.locator("#door-apply").click()
        page.locator("details summary").click()  # "Lisainfo & abi"
        step("apply")
        # 2. Her e-mail and the child's isikukood → "Edasi".
        page.locator("#email").fill(email)
        page.locator("#child_isikukood").fill(HUGO)
        page.locator("form button[type=submit]").click()
        expect(page.locator("#sent")).to_be_visible()
        step("apply-sent")
        # 3–4. The mailed link: the form with the e-mail and the code filled in.
        page.goto(mail_link(email, 1))
        step("apply-link")
        page.locator("#use-link").click()
        expect(page.locator("#email")).to_have_value(email)
        expect(page.locator("#child_isikukood")).to_have_value(HUGO)
        page.locator("#given_name").fill("Kadri" if lang == "et" else "Светлана")
        page.locator("#family_name").fill("Rebane")
        page.locator("#phone").fill("+372 5555 1234")
        page.locator("#relation").select_option("ema")
        page.locator("#language").select_option(lang)
        step("apply-form")
        page.locator("#submit-application").click()
        expect(page.locator("#next")).to_be_visible()
        step("apply-done")

        # 5. The admin, on her phone too, checks it and approves it.
        sign_in(admin.page, "laagri-huvialakool", ADMIN)
        speak(admin.page, lang)
        admin.step("admin-front", bar=("laagri-huvialakool", "laagri-kool", "laagri-lasteaed"))
        admin.page.locator("#nav-applications").click()
        row = admin.page.locator("li.application", has_text=email)
        expect(row).to_contain_text("Hugo Rebane")
        for name in ("confirm_risk", "add_guardian"):
            box = row.locator(f"[name={name}]")
            if box.count():
                box.check()
        admin.step("admin-review", bar=("laagri-huvialakool",))
        row.locator("button.approve").click()
        expect(admin.page.locator("li.application", has_text=email)).to_have_count(0)
        admin.step("admin-approved", bar=("laagri-huvialakool",))

        # 6. The welcome link signs her in; she is offered a password and sets one.
        page.goto(mail_link(email, 2))
        step("welcome-link")
        page.locator("#use-link").click()
        expect(page.locator("#no-password")).to_be_visible()
        expect(page.locator("#skip")).to_be_visible()
        step("password-offer")
        page.locator("#new_password").fill(NEW_PASSWORD)
        page.locator("#new_password_again").fill(NEW_PASSWORD)
        page.locator("form button[type=submit]").click()
        page.locator("#onward").wait_for()
        step("password-saved")
        # 7. Onward to the hobby school, where she sees her child.
        page.locator("#onward").click()
        page.wait_for_url(f"{HOBBY}/**")
        expect(page.locator("#children")).to_contain_text("Hugo Rebane")
        step("hobby-child", bar=("laagri-huvialakool",))
    finally:
        page.context.close()
        admin.page.context.close()
        restore_language(chromium, "laagri-huvialakool", ADMIN)
    assert not parent.problems, parent.problems
    assert not admin.problems, admin.problems
