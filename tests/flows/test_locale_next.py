"""The language switch's way back over real HTTP: a `next` a browser would read as another site
(a tab or a backslash turning "/x/evil.com" into "//evil.com") sends the person to "/"."""

from __future__ import annotations

import pytest
import requests


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("/\t/evil.example", "/"),
        ("/\n/evil.example", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("https://evil.example/", "/"),
        (" /account", "/"),
        ("/%09/evil.example", "/%09/evil.example"),  # stays a path of this origin
        ("/account?x=1", "/account?x=1"),
    ],
)
def test_the_idp_switch_returns_only_to_its_own_paths(idp: str, target: str, location: str) -> None:
    resp = requests.post(
        f"{idp}/locale",
        data={"locale": "ru", "next": target},
        headers={"Origin": idp},
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 303, resp.text
    assert resp.headers["Location"] == location


def test_the_school_switch_uses_the_same_rule(make_tenant) -> None:
    kool = make_tenant()
    for target, location in (("/\t/evil.example", "/"), ("/klassid", "/klassid")):
        resp = requests.post(
            f"{kool.url}/locale",
            data={"locale": "en", "next": target},
            headers={"Origin": kool.url},
            allow_redirects=False,
            timeout=10,
        )
        assert resp.status_code == 303 and resp.headers["Location"] == location, resp.text
