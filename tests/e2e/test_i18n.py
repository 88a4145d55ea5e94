"""From `make run`, in Estonian, Russian and English: a visitor at Laagri Kool presses the language
switch; the IdP's login page, the application form (through the mailed confirmation link) and,
once the demo parent signs in, the parent's view of the school speak that language.

Screenshots go to artifacts/e2e/i18n/ ({lang}-1-login.png, {lang}-2-application-form.png,
{lang}-3-parent-view.png). The demo parent's language is set back to Estonian at the end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.dev.diary_demo import DEMO_STUDENT_CODES
from deploy.dev.seed import DEMO_PASSWORD, DEMO_PEOPLE
from tests.e2e.mailbox import MAIL, mail_link
from tests.e2e.watch import watched_page

KOOL = "http://localhost:5001"
PARENT_EMAIL, PARENT_GIVEN, PARENT_FAMILY = DEMO_PEOPLE[1][:3]  # Jüri Mägi, Mia's parent
CHILD_CODE = DEMO_STUDENT_CODES["laagri-kool"]["Emma"]
BROWSER_LOCALES = {"et": "et-EE", "ru": "ru-RU", "en": "en-GB"}
# What each language calls the login button and the parent's children: read on the pages.
SIGN_IN = {"et": "Logi sisse", "ru": "Войти", "en": "Sign in"}
CHILDREN = {"et": "Sinu lapsed", "ru": "Ваши дети", "en": "Your children"}
CONFIRM_SUBJECT = {
    "et": "Kinnita oma e-posti aadress",
    "ru": "Подтвердите свой адрес e-mail",
    "en": "Confirm your e-mail address",
}


def _press(page: object, lang: str) -> None:
    """Press the language switch in the page's header (the current language is disabled)."""
    button = page.locator(f"form.lang-switch button[value={lang}]")  # type: ignore[attr-defined]
    if button.is_enabled():
        button.click()
        page.wait_for_load_state("load")  # type: ignore[attr-defined]


@pytest.mark.e2e
@pytest.mark.parametrize("lang", ["et", "ru", "en"])
def test_login_application_and_parent_view_in_each_language(
    chromium, dev_system: str, artifacts: Path, lang: str
) -> None:
    import requests
    from playwright.sync_api import expect

    shots = artifacts / "i18n"
    shots.mkdir(parents=True, exist_ok=True)
    w = watched_page(chromium, shots, f"{lang}-", locale=BROWSER_LOCALES[lang])
    page, problems = w.page, w.problems
    applicant = f"i18n-{lang}@example.ee"
    signed_in = False
    try:
        # 1. Laagri Kool as a visitor: the switch, then the IdP's login page in that language.
        page.goto(f"{KOOL}/")
        _press(page, lang)
        expect(page.locator("html")).to_have_attribute("lang", lang)
        page.locator("#login").click()
        page.wait_for_url(f"{dev_system}/login**")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page.locator("form button[type=submit]")).to_have_text(SIGN_IN[lang])
        w.shot("1-login")

        # 2. Loo uus konto → Esita andmed: the e-mail and the child's code; the mailed link
        # opens the application form, in the language of the application.
        page.locator("#new-account").click()
        page.locator("#door-apply").click()
        page.locator("#email").fill(applicant)
        page.locator("#child_isikukood").fill(CHILD_CODE)
        page.locator("form button[type=submit]").click()
        expect(page.locator("#sent")).to_be_visible()
        link = mail_link(applicant, 1)
        mails = [
            m for m in requests.get(MAIL, timeout=5).json()["messages"] if applicant in m["to"]
        ]
        assert mails[0]["subject"].strip().startswith(CONFIRM_SUBJECT[lang]), mails[0]["subject"]
        page.goto(link)
        page.locator("#use-link").click()
        expect(page.locator("#submit-application")).to_be_visible()
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page.locator("#language")).to_have_value(lang)
        page.locator("#given_name").fill("Aino")
        page.locator("#family_name").fill("Kask")
        w.shot("2-application-form")

        # 3. The demo parent signs in from the school (the visitor's choice becomes theirs).
        page.goto(f"{KOOL}/")
        page.locator("#login").click()
        page.wait_for_url(f"{dev_system}/login**")
        page.locator("#email").fill(PARENT_EMAIL)
        page.locator("#password").fill(DEMO_PASSWORD)
        page.locator("form button[type=submit]").click()
        page.wait_for_url(f"{KOOL}/**")
        signed_in = True
        expect(page.locator("details.account .who")).to_have_text(f"{PARENT_GIVEN} {PARENT_FAMILY}")
        # Her own language (another test may have left her choice at Estonian): the switch.
        _press(page, lang)
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page.locator("#children")).to_contain_text(CHILDREN[lang])
        w.shot("3-parent-view")
    finally:
        if signed_in:  # the other browser tests expect the demo parent in Estonian
            _press(page, "et")
            expect(page.locator("html")).to_have_attribute("lang", "et")
        page.context.close()
    assert not problems, problems
