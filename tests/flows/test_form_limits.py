"""The coarse per-address limit on the forms a person posts (the limits library, its windows
in the app's Redis): past it the page says to wait and carries Retry-After; the exact failure
counters stay the brute-force guard, and the protocol's endpoints are not limited by it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from tests.support import Browser, authorize_url, pkce_pair


@pytest.fixture
def tight_limit(idp_app: Flask) -> Iterator[None]:
    """Three form posts a minute from one address, for one test."""
    saved = idp_app.config["FORM_RATE_LIMIT"]
    idp_app.config["FORM_RATE_LIMIT"] = "3 per minute"
    yield
    idp_app.config["FORM_RATE_LIMIT"] = saved


def test_a_flood_of_login_posts_is_told_to_wait(idp, make_school, tight_limit) -> None:
    school = make_school()
    browser = Browser(idp)
    _verifier, challenge = pkce_pair()
    page = browser.follow(authorize_url(idp, school, challenge), school.redirect_uri)
    answers = [
        browser.post_login(page, "kes@example.ee", "vale-parool-123").status_code for _ in range(4)
    ]
    assert answers[:3] == [200, 200, 200]  # a wrong password: the form again
    assert answers[3] == 429
    refused = browser.post_login(page, "kes@example.ee", "vale-parool-123")
    assert refused.status_code == 429 and "Liiga palju päringuid" in refused.text
    assert refused.headers["Retry-After"] == "60"
    # The page a person reads is not limited, nor the protocol.
    assert browser.http.get(page.url, timeout=10).status_code == 200
    assert (
        browser.http.get(f"{idp}/.well-known/openid-configuration", timeout=10).status_code == 200
    )
