"""Helpers for the IdP's account pages in flow tests: a browser with a given User-Agent, the
sessions page as data, and whether a school still knows the browser."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import requests

from tests.support import CSRF_RE, Browser, Tenant

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
NOT_SIGNED_IN = "<h1>Sa ei ole sisse logitud</h1>"

_SESSION_RE = re.compile(r'<li class="session( current)?" data-sid="([^"]+)">(.*?)</li>', re.S)


@dataclass
class ListedSession:
    """One entry of the sessions page as a person reads it."""

    sid: str
    current: bool
    device: str
    started: str
    last_used: str
    schools: str


def browser_with(idp: str, user_agent: str) -> Browser:
    """A fresh browser that introduces itself with user_agent."""
    browser = Browser(idp)
    browser.http.headers["User-Agent"] = user_agent
    return browser


def _text(block: str, css_class: str) -> str:
    found = re.search(rf'class="{css_class}">(.*?)</(?:span|strong)>', block, re.S)
    assert found, f"{css_class} expected in a session entry"
    return html.unescape(found.group(1)).strip()


def sessions_page(browser: Browser) -> tuple[requests.Response, list[ListedSession]]:
    """Open the sessions page; the response and its entries."""
    page = browser.http.get(f"{browser.issuer}/account/sessions", timeout=10)
    assert page.status_code == 200
    listed = [
        ListedSession(
            sid=sid,
            current=bool(current),
            device=_text(block, "device"),
            started=_text(block, "started"),
            last_used=_text(block, "last-used"),
            schools=_text(block, "schools"),
        )
        for current, sid, block in _SESSION_RE.findall(page.text)
    ]
    return page, listed


def post_form(
    browser: Browser, page: requests.Response, path: str, **fields: str
) -> requests.Response:
    """Submit a form of the IdP's page with that page's CSRF token."""
    csrf = CSRF_RE.search(page.text)
    assert csrf, "a form with a CSRF token expected"
    return browser.http.post(
        f"{browser.issuer}{path}",
        data={"csrf_token": csrf.group(1), **fields},
        allow_redirects=False,
        timeout=10,
    )


def signed_in_at(browser: Browser, school: Tenant) -> bool:
    """Tell whether the school still has the browser signed in (else it sends it to log in)."""
    resp = browser.http.get(f"{school.url}/profile", allow_redirects=False, timeout=10)
    if resp.status_code == 303:
        assert "/auth/login" in resp.headers["Location"]
        return False
    assert resp.status_code == 200
    return True


def school_states(page: requests.Response) -> dict[str, str]:
    """The logout page's schools and the state of each one's logout message."""
    found = re.findall(r'<li data-state="([^"]+)"><strong>([^<]+)</strong>', page.text)
    return {html.unescape(name): state for state, name in found}


def jump_in(browser: Browser, school: Tenant) -> None:
    """Sign in at another school of the person without typing (the IdP session is live)."""
    landed = browser.follow(f"{school.url}/auth/login", stop_prefix="\x00")
    assert landed.status_code == 200 and landed.url.startswith(school.url), landed.text
    assert 'name="password"' not in landed.text
