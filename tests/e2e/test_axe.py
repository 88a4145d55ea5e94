"""axe-core on every page both apps render, for a visitor, a parent, a teacher and an admin, in
Estonian, Russian and English, on a phone (390×844): no serious or critical violation of
WCAG 2.x A/AA or axe's best practices, and every tap target at least 24×24 CSS px (the main
actions 44 px high). Forms are walked in their error states too (a failed login, fields with
errors).

The pages are enumerated from the two apps' URL maps: every GET route that renders HTML must
have been walked (a new page without a walk fails here), the rest are listed in NOT_PAGES with
the reason. Screenshots of every page go to artifacts/e2e/axe/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from deploy.dev.diary_demo import DEMO_STUDENT_CODES
from deploy.dev.seed import DEMO_PASSWORD
from tests.e2e.a11y import (
    BROWSER_LOCALES,
    PHONE,
    axe_script,
    axe_violations,
    tap_target_problems,
)
from tests.e2e.mailbox import mail_link
from tests.e2e.phone_people import (
    ADMIN,
    IDP,
    PARENT,
    SCHOOLS,
    TEACHER,
    language,
    sign_in,
    speak,
)

KOOL, LASTEAED = SCHOOLS["laagri-kool"], SCHOOLS["laagri-lasteaed"]
OSKAR = DEMO_STUDENT_CODES["laagri-kool"]["Oskar"]
LANGUAGES = ["et", "ru", "en"]
IDP_PORT = urlsplit(IDP).port

# GET routes that render no page of their own, and why.
NOT_PAGES = {
    "idp": {
        "oidc.discovery": "JSON",
        "oidc.jwks": "JSON",
        "oidc.userinfo": "JSON",
        "admin_api.accounts": "JSON (tenant admin API)",
        "admin_api.account": "JSON (tenant admin API)",
        "admin_api.openapi": "JSON (tenant admin API)",
        "admin_applications.pending": "JSON (tenant admin API)",
        "healthz": "plain text",
        "readyz": "plain text",
        "metrics": "Prometheus text",
        "static": "CSS and scripts",
        "schools.logo": "an image",
        "oidc.authorize": "redirects to the login page (its error pages are error.html)",
        "oidc.resume": "redirects back to the school",
    },
    "school": {
        "healthz": "plain text",
        "readyz": "plain text",
        "metrics": "Prometheus text",
        "static": "CSS",
        "sso.login": "redirects to the IdP",
        "sso.callback": "redirects to the page asked for",
        "sso.frontchannel_logout": "an empty document in a hidden frame",
    },
}


def _apps() -> dict[str, Flask]:
    """Both Flask apps, built only for their URL maps."""
    from idp.app import create_app as create_idp
    from school_instance import create_app as create_school

    return {"idp": create_idp(), "school": create_school()}


@pytest.fixture(scope="module")
def url_maps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Flask]:
    """The two apps (state of their own: nothing is served or migrated)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUUDIUM_VAR_DIR", str(tmp_path_factory.mktemp("axe-apps")))
        return _apps()


def html_pages(app: Flask, kind: str) -> set[str]:
    """The app's GET endpoints that render a page (NOT_PAGES aside)."""
    return {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or ()) and rule.endpoint not in NOT_PAGES[kind]
    }


@dataclass
class Walk:
    """One person's walk in one language: every page checked by axe and for tap targets."""

    page: Any
    lang: str
    who: str
    maps: dict[str, Flask]
    shots: Path
    walked: set[tuple[str, str]] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    count: int = 0

    def check(self, label: str) -> None:
        """Check the page shown now: its language, axe-core, tap targets; shoot it."""
        page = self.page
        page.wait_for_load_state("load")
        where = f"{self.who}/{self.lang} {label} ({page.url})"
        assert language(page) == self.lang, f"{where} is in {language(page)}"
        self.walked.add(self._endpoint(page.url))
        self.violations += axe_violations(page, where)
        self.targets += tap_target_problems(page, where)
        self.count += 1
        name = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        path = self.shots / f"{self.lang}-{self.who}-{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)

    def visit(self, url: str, label: str) -> None:
        """Open url and check it."""
        self.page.goto(url)
        self.check(label)

    def submit_invalid(self, form: str, label: str, fill: dict[str, str] | None = None) -> None:
        """Submit a form with what fill says (nothing by default), past the browser's own
        checks, and check the page with the server's field errors."""
        page = self.page
        page.locator(form).first.evaluate("f => { f.noValidate = true; }")
        for selector, value in (fill or {}).items():
            page.locator(selector).fill(value)
        with page.expect_navigation():
            page.locator(form).first.locator("[type=submit]").first.click()
        self.check(label)

    def _endpoint(self, url: str) -> tuple[str, str]:
        parts = urlsplit(url)
        kind = "idp" if parts.port == IDP_PORT else "school"
        adapter = self.maps[kind].url_map.bind(parts.netloc)
        try:
            endpoint, _args = adapter.match(parts.path, method="GET")
        except RequestRedirect:
            return kind, parts.path
        except HTTPException as exc:
            return kind, f"error {exc.code}"
        return kind, str(endpoint)


def _visitor(w: Walk) -> None:
    """Everything a person who is not signed in sees, and the application for an account."""
    page = w.page
    w.visit(f"{KOOL}/", "school front")
    w.visit(f"{KOOL}/auth/logged-out", "school logged out")
    w.visit(f"{KOOL}/no-such-page", "school 404")
    page.goto(f"{KOOL}/")
    page.locator("#login").click()
    page.wait_for_url(f"{IDP}/login**")
    w.check("login")
    w.submit_invalid(
        "form:has(#password)",
        "login failed",
        {"#email": f"nobody.{w.lang}@example.ee", "#password": "not the password"},
    )
    w.visit(f"{IDP}/", "idp home")
    w.visit(f"{IDP}/account", "idp account signed out")
    w.visit(f"{IDP}/no-such-page", "idp 404")
    w.visit(f"{IDP}/logout", "idp logout signed out")
    w.visit(f"{IDP}/account/email/confirm", "e-mail confirm link")
    w.visit(f"{IDP}/s/laagri-kool/signin", "login link")
    w.visit(f"{IDP}/s/laagri-kool/new", "new account")
    w.visit(f"{IDP}/s/laagri-kool/access", "access link request")
    w.submit_invalid("form:has(#email)", "access link request, no e-mail")
    w.visit(f"{IDP}/s/laagri-kool/apply", "apply")
    w.submit_invalid("form:has(#child_isikukood)", "apply, nothing filled in")
    w.submit_invalid(
        "form:has(#child_isikukood)",
        "apply, wrong code",
        {"#email": "x@", "#child_isikukood": "12345678901"},
    )
    email = f"axe.{w.lang}@example.ee"
    page.locator("#email").fill(email)
    page.locator("#child_isikukood").fill(OSKAR)
    page.locator("form:has(#child_isikukood) [type=submit]").click()
    page.locator("#sent").wait_for()
    w.check("apply sent")
    page.goto(mail_link(email, 1))
    w.check("apply link")
    page.locator("#use-link").click()
    page.locator("#given_name").wait_for()
    w.check("apply form")
    w.submit_invalid("form:has(#given_name)", "apply form, nothing filled in")
    page.locator("#given_name").fill("Axe")
    page.locator("#family_name").fill("Tamm")
    page.locator("#phone").fill("+372 5555 0000")
    page.locator("#relation").select_option("isa")
    page.locator("#submit-application").click()
    page.locator("#next").wait_for()
    w.check("apply done")
    # The same link again: used, so the page says so and offers a new one.
    page.goto(mail_link(email, 1))
    page.locator("#use-link").click()
    page.wait_for_load_state("load")
    w.check("used link")
    w.visit(f"{IDP}/eid/callback?state=not-a-state", "eID answer out of time")


def _signed_in(w: Walk, email: str) -> None:
    """Sign in at Laagri Kool and speak the walk's language."""
    sign_in(w.page, "laagri-kool", email)
    speak(w.page, w.lang)


def _first(w: Walk, selector: str, label: str) -> None:
    """Follow the first link matching selector and check where it leads."""
    link = w.page.locator(selector).first
    link.wait_for()
    link.click()
    w.check(label)


def _parent(w: Walk) -> None:
    """The parent's pages at the school and at Stuudium ID."""
    page = w.page
    _signed_in(w, PARENT)
    w.check("parent front")
    _first(w, "#children a[href*='/children/']", "child")
    w.visit(f"{KOOL}/news", "news")
    w.visit(f"{KOOL}/profile", "profile")
    w.visit(f"{KOOL}/no-such-page", "school 404 signed in")
    w.visit(f"{IDP}/", "idp home signed in")
    w.visit(f"{IDP}/account", "idp account")
    page.locator("#end-all").click()
    w.check("log out everywhere question")
    w.visit(f"{IDP}/account/sessions", "sessions")
    w.visit(f"{IDP}/account/password", "password")
    w.submit_invalid(
        "form:has(#new_password)",
        "password, errors",
        {
            "#current_password": DEMO_PASSWORD,
            "#new_password": "Kolm kassi jalutavad",
            "#new_password_again": "Neli koera",
        },
    )
    w.visit(f"{IDP}/account/email", "e-mail change")
    w.submit_invalid("form:has(#email)", "e-mail change, error", {"#email": "not an address"})
    w.visit(f"{IDP}/link/start?school=laagri-kool", "link start")
    choice = page.locator("button.school-choice")
    if choice.count():
        choice.first.click()
        page.locator("#email").wait_for()
        w.check("link login")
    w.visit(f"{IDP}/logout", "logout question")
    page.goto(f"{LASTEAED}/")
    page.locator("#login").click()
    page.wait_for_url(f"{IDP}/no-account**")
    w.check("no account at this school")


def _teacher(w: Walk) -> None:
    """A teacher's lessons, news and people."""
    page = w.page
    _signed_in(w, TEACHER)
    w.check("teacher front")
    _first(w, "a[href*='/lessons/']:not([href*='/lessons/new'])", "lesson")
    w.visit(f"{KOOL}/lessons/new", "new lesson")
    w.submit_invalid("form:has(#subject)", "new lesson, errors")
    w.visit(f"{KOOL}/news/new", "new announcement")
    w.submit_invalid("form:has(#title)", "new announcement, errors")
    page.locator("#title").fill(f"Axe {w.lang}")
    page.locator("#body").fill("Prooviteade.")
    page.locator("form:has(#title) [type=submit]").click()
    page.wait_for_url(f"{KOOL}/news**")
    w.check("news with own announcement")
    page.locator(".news-item", has_text=f"Axe {w.lang}").locator("a.edit").click()
    w.check("edit announcement")
    page.locator("#delete").click()
    w.check("delete question")
    page.locator("#confirm-delete").click()
    w.check("deleted")
    w.visit(f"{KOOL}/people", "people")
    _first(w, "a[href*='/correct']", "correct")
    w.submit_invalid(
        "form:has(#given_name)",
        "correct, errors",
        {"#given_name": "", "#birth_date": "31.02.20"},
    )


def _admin(w: Walk) -> None:
    """An admin's classes, pupils, accounts and applications."""
    _signed_in(w, ADMIN)
    w.check("admin front")
    w.visit(f"{KOOL}/admin/classes", "classes")
    _first(w, "a[href*='/admin/classes/']", "class")
    _first(w, "a[href*='/admin/students/']", "student")
    w.visit(f"{KOOL}/admin/accounts", "accounts")
    _first(w, "a[href*='/admin/accounts/']", "account action question")
    w.visit(f"{KOOL}/admin/applications", "applications")
    w.visit(f"{KOOL}/people", "people (admin)")


WALKS = {"visitor": (_visitor, None), "parent": (_parent, PARENT)}
WALKS |= {"teacher": (_teacher, TEACHER), "admin": (_admin, ADMIN)}


@pytest.mark.e2e
@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_page_passes_axe_and_tap_targets(
    chromium: Any, dev_system: str, artifacts: Path, url_maps: dict[str, Flask], lang: str
) -> None:
    axe_script()
    shots = artifacts / "axe"
    shots.mkdir(parents=True, exist_ok=True)
    walked: set[tuple[str, str]] = set()
    violations: list[str] = []
    targets: list[str] = []
    for who, (walk, email) in WALKS.items():
        # The pages' CSP forbids inline scripts, axe's injected one too: bypassed for the walk.
        ctx = chromium.new_context(locale=BROWSER_LOCALES[lang], bypass_csp=True, **PHONE)
        ctx.set_default_timeout(15_000)
        w = Walk(ctx.new_page(), lang, who, url_maps, shots)
        try:
            walk(w)
        finally:
            if email is not None:  # the person's language back to the seed's Estonian
                w.page.goto(f"{KOOL}/")
                speak(w.page, "et")
            ctx.close()
        walked |= w.walked
        violations += w.violations
        targets += w.targets
    missing = sorted(
        f"{kind}: {endpoint}"
        for kind, app in url_maps.items()
        for endpoint in html_pages(app, kind)
        if (kind, endpoint) not in walked
    )
    assert not missing, "pages no walk reaches (walk them or list them in NOT_PAGES):\n" + (
        "\n".join(missing)
    )
    assert not violations, f"{len(violations)} axe violations:\n" + "\n".join(violations)
    assert not targets, f"{len(targets)} tap targets too small:\n" + "\n".join(targets)


def test_the_pages_that_are_not_walked_exist(url_maps: dict[str, Flask]) -> None:
    """Every endpoint NOT_PAGES excuses is still in its app's URL map (no stale excuses)."""
    for kind, app in url_maps.items():
        endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
        assert set(NOT_PAGES[kind]) <= endpoints, set(NOT_PAGES[kind]) - endpoints
        assert html_pages(app, kind), kind


@pytest.mark.e2e
def test_the_checks_find_what_they_look_for(chromium: Any) -> None:
    """axe-core and the tap-target check report a known-bad page (so a clean walk means
    something)."""
    ctx = chromium.new_context(**PHONE)
    try:
        page = ctx.new_page()
        page.set_content(
            '<html lang="et"><title>x</title><main><button></button>'
            '<p><a href="/a">a</a></p><form><button type="submit" style="height:30px">'
            "Saada</button></form></main></html>"
        )
        rules = " ".join(axe_violations(page, "test page"))
        targets = " ".join(tap_target_problems(page, "test page"))
    finally:
        ctx.close()
    assert "button-name" in rules, rules
    assert "under 24 px: a" in targets and "main action under 44 px" in targets, targets
