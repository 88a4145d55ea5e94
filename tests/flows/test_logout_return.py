"""After RP-initiated logout with a valid hint and a registered post_logout_redirect_uri, the
logged-out page shows the schools' states and returns the browser to that exact URI (with the
school's state) by itself: a script of the IdP's own origin (the page's CSP allows no other),
with the "Jätka" link kept for people without JavaScript. The script's only target is that
link's href, so the return can only ever go where the link does."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import requests

from tests.flows.idp_account import school_states
from tests.flows.test_end_session import _altered, logout
from tests.support import Browser, sign_in, sign_in_at_school

RETURN_RE = re.compile(r'<a class="button" id="continue" data-return="auto" href="([^"]*)">')
SCRIPT_RE = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S)
SCRIPT = Path(__file__).resolve().parents[2] / "idp" / "static" / "logout_return.js"


def auto_return(page: requests.Response) -> str | None:
    """Where the page sends the browser back by itself (the #continue link), if anywhere."""
    found = RETURN_RE.search(page.text)
    return html.unescape(found.group(1)) if found else None


def scripts(page: requests.Response) -> list[str]:
    """The src of each script of the page; an inline script would be ''."""
    found = []
    for attrs, body in SCRIPT_RE.findall(page.text):
        src = re.search(r'src="([^"]+)"', attrs)
        assert src and not body.strip(), "no inline script: the CSP allows only 'self'"
        found.append(src.group(1))
    return found


def test_the_page_returns_to_the_registered_uri_with_state(idp, make_school, make_person):
    school = make_school()
    browser = Browser(idp)
    tokens = sign_in(idp, browser, school, make_person(school))
    page = logout(
        browser,
        idp,
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri=school.post_logout_redirect_uri,
        state="bye-1",
    )
    assert page.status_code == 200
    assert auto_return(page) == school.post_logout_redirect_uri + "?state=bye-1"
    assert scripts(page) == ["/static/logout_return.js"]
    assert ">Jätka</a>" in page.text  # without JavaScript, the button
    assert f"tagasi kooli {school.name}" in page.text
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src" not in policy
    served = requests.get(f"{idp}/static/logout_return.js", timeout=10)
    assert served.status_code == 200 and "javascript" in served.headers["Content-Type"]


@pytest.mark.parametrize("variant", range(8))
def test_an_unregistered_uri_is_never_a_return(idp, make_school, make_person, variant):
    school = make_school()
    browser = Browser(idp)
    tokens = sign_in(idp, browser, school, make_person(school))
    target = _altered(school.post_logout_redirect_uri)[variant]
    page = logout(
        browser, idp, id_token_hint=tokens["id_token"], post_logout_redirect_uri=target, state="s"
    )
    assert page.status_code == 200
    assert auto_return(page) is None and scripts(page) == []
    # The way onward is the hint's school, by its own registered address.
    assert f'id="onward" href="http://127.0.0.1:9/{school.slug}"' in page.text


def test_without_a_hint_there_is_no_return(idp, make_school, make_person):
    school = make_school()
    browser = Browser(idp)
    sign_in(idp, browser, school, make_person(school))
    page = logout(browser, idp, post_logout_redirect_uri=school.post_logout_redirect_uri)
    assert auto_return(page) is None and scripts(page) == []


def test_the_script_goes_only_where_the_continue_link_points():
    source = SCRIPT.read_text()
    # One navigation, to the href of #continue marked data-return="auto"; nothing read from
    # the address, the referrer or a message could choose another target.
    assert source.count("location.replace(") == 1 and "location.replace(link.href)" in source
    assert 'getElementById("continue")' in source and 'data-return") !== "auto"' in source
    for other in (
        "location.search",
        "location.hash",
        "referrer",
        "postMessage",
        ".assign(",
        "href =",
    ):
        assert other not in source, other
    assert "AT_MOST = 2000" in source


def test_a_school_logout_shows_the_states_and_frames_then_returns(
    idp, browser, make_tenant, make_person
):
    kool = make_tenant("Laagri Kool")
    person = make_person(kool.client)
    sign_in_at_school(browser, kool.url, person)
    profile = browser.http.get(f"{kool.url}/profile", timeout=10)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', profile.text)
    assert csrf
    to_idp = browser.http.post(
        f"{kool.url}/auth/logout",
        data={"csrf_token": csrf.group(1)},
        allow_redirects=False,
        timeout=10,
    )
    assert to_idp.status_code == 303
    page = browser.http.get(to_idp.headers["Location"], allow_redirects=False, timeout=10)
    assert page.status_code == 200
    assert school_states(page) == {"Laagri Kool": "delivered"}
    assert '<iframe class="frontchannel"' in page.text
    assert f"frame-src {kool.url}" in page.headers["Content-Security-Policy"]
    target = auto_return(page)
    assert target and target.startswith(f"{kool.url}/auth/logged-out?state=")
    assert scripts(page) == ["/static/logout_return.js"]
    back = browser.http.get(target, timeout=10)
    assert back.status_code == 200 and back.url.startswith(kool.url)
