"""Helpers for the flows that go through e-mail: reading a one-time link out of a message,
opening it like a person (the page, then its button), and posting the IdP's public forms."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urljoin

import requests

from tests.support import CSRF_RE, Browser

SKIP_RE = re.compile(r'<a class="button secondary" id="skip" href="([^"]+)"')


def link_of(message: dict[str, Any]) -> tuple[str, str]:
    """The (page URL, token) of the one-time link in a message (the token is the fragment)."""
    links = [u for u in message["links"] if "#" in u]
    assert len(links) == 1, message["links"]
    page, _, token = links[0].partition("#")
    return page, token


def post_form(browser: Browser, url: str, data: dict[str, str]) -> requests.Response:
    """Open a page with a form and post it with the page's CSRF token (no redirects followed)."""
    page = browser.http.get(url, timeout=10)
    assert page.status_code == 200, page.text
    csrf = CSRF_RE.search(page.text)
    assert csrf, "a form expected"
    return browser.http.post(
        url, data={"csrf_token": csrf.group(1), **data}, allow_redirects=False, timeout=10
    )


def use_link(browser: Browser, message: dict[str, Any]) -> requests.Response:
    """Open a mailed link's page and press its button (the POST that uses the link)."""
    page, token = link_of(message)
    return post_form(browser, page, {"token": token})


def follow_to(browser: Browser, resp: requests.Response, prefix: str) -> requests.Response:
    """Follow redirects from resp until a page is shown; it must be under prefix."""
    assert resp.status_code == 303, resp.text
    final = browser.follow(urljoin(resp.url, resp.headers["Location"]), stop_prefix="\x00")
    assert final.status_code == 200, final.text
    skip = SKIP_RE.search(final.text)
    if skip and final.url.startswith(browser.issuer):
        # Signed in by a link without a password: the offer to set one, skipped.
        final = browser.follow(html.unescape(skip.group(1)), stop_prefix="\x00")
        assert final.status_code == 200, final.text
    assert final.url.startswith(prefix), final.url
    return final
