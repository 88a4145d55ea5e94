"""The demo people as the phone journeys and the axe walk use them: signing in at a school,
speaking a language, and putting the demo parent back as the seed made her (not linked,
Estonian) so that every browser test finds the same starting point."""

from __future__ import annotations

from typing import Any

from deploy.dev.seed import DEMO_PASSWORD, DEMO_PEOPLE, DEMO_SCHOOLS
from tests.e2e.mailbox import mail_link, mail_to

IDP = "http://localhost:5000"
SCHOOLS = {slug: f"http://localhost:{port}" for slug, _name, port in DEMO_SCHOOLS}
NAMES = {slug: name for slug, name, _port in DEMO_SCHOOLS}
TEACHER, PARENT, ADMIN = (person[0] for person in DEMO_PEOPLE[:3])


def sign_in(page: Any, slug: str, email: str, password: str = DEMO_PASSWORD) -> None:
    """Log in at the school's front page with e-mail and password; end on the school."""
    page.goto(f"{SCHOOLS[slug]}/")
    page.locator("#login").click()
    page.wait_for_url(f"{IDP}/login**")
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"{SCHOOLS[slug]}/**")


def language(page: Any) -> str:
    """The language the page says it is in (html lang)."""
    return str(page.locator("html").get_attribute("lang"))


def speak(page: Any, lang: str) -> None:
    """Make the page (and a signed-in person) speak lang with the page's language switch."""
    if language(page) != lang:
        with page.expect_navigation():
            page.locator(f"form.lang-switch button[value={lang}]").click()
    assert language(page) == lang, page.url


def reset_demo_parent(chromium: Any) -> None:
    """Put the demo parent back as seeded: Estonian, the Laagri Huvialakool account not linked
    and opened by the demo password (an unlinked account has no password of its own, so it is
    set through the school's access link, as a parent would)."""
    ctx = chromium.new_context(locale="et-EE")
    ctx.set_default_timeout(15_000)
    page = ctx.new_page()
    try:
        sign_in(page, "laagri-kool", PARENT)
        speak(page, "et")
        page.goto(f"{IDP}/account")
        hobby = page.locator("#linked li[data-school=laagri-huvialakool]")
        if not hobby.count():
            return
        hobby.locator("button.unlink").click()
        page.wait_for_load_state("load")
        sent = len(mail_to(PARENT))
        page.goto(f"{IDP}/s/laagri-huvialakool/access")
        page.locator("#email").fill(PARENT)
        page.locator("form button[type=submit]").click()
        page.locator("#sent").wait_for()
        page.goto(mail_link(PARENT, sent + 1))
        page.locator("#use-link").click()
        page.locator("#new_password").fill(DEMO_PASSWORD)
        page.locator("#new_password_again").fill(DEMO_PASSWORD)
        page.locator("form button[type=submit]").click()
        page.locator("#onward, #home").first.wait_for()
    finally:
        ctx.close()


def restore_language(chromium: Any, slug: str, email: str) -> None:
    """Sign the person in at the school and switch their language back to Estonian."""
    ctx = chromium.new_context(locale="et-EE")
    ctx.set_default_timeout(15_000)
    try:
        page = ctx.new_page()
        sign_in(page, slug, email)
        speak(page, "et")
    finally:
        ctx.close()
