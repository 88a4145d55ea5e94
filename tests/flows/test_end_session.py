"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) at /logout."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
import requests

from tests.support import (
    Browser,
    SchoolClient,
    authorize_url,
    callback_params,
    pkce_pair,
    sign_in,
    token_request,
)

HIDDEN_RE = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
CONTINUE_RE = re.compile(r'<a[^>]*id="continue"[^>]*href="([^"]*)"')


def silent(idp: str, browser: Browser, school: SchoolClient) -> dict[str, str]:
    """A prompt=none authorization request; the callback parameters."""
    _, challenge = pkce_pair()
    resp = browser.http.get(
        authorize_url(idp, school, challenge, prompt="none"), allow_redirects=False, timeout=5
    )
    return callback_params(resp)


def session_alive(idp: str, browser: Browser, school: SchoolClient) -> bool:
    """Tell whether the browser's SSO session still yields codes silently."""
    params = silent(idp, browser, school)
    assert "code" in params or params.get("error") == "login_required", params
    return "code" in params


def logout(browser: Browser, idp: str, **params: str) -> requests.Response:
    """GET the end-session endpoint."""
    resp = browser.http.get(f"{idp}/logout", params=params, allow_redirects=False, timeout=5)
    assert "Location" not in resp.headers, "the logout endpoint must render, not redirect"
    return resp


def continue_link(page: requests.Response) -> str | None:
    """The logged-out page's continue link, if it offers one."""
    match = CONTINUE_RE.search(page.text)
    return html.unescape(match.group(1)) if match else None


def is_confirmation(page: requests.Response) -> bool:
    """Tell whether the page asks to confirm the logout."""
    fields = dict(HIDDEN_RE.findall(page.text))
    return (
        page.status_code == 200
        and fields.get("confirm") == "yes"
        and bool(fields.get("csrf_token"))
    )


def confirm(
    browser: Browser, idp: str, page: requests.Response, csrf: bool = True
) -> requests.Response:
    """Submit the confirmation form as shown."""
    fields = {k: html.unescape(v) for k, v in HIDDEN_RE.findall(page.text)}
    if not csrf:
        fields.pop("csrf_token")
    return browser.http.post(f"{idp}/logout", data=fields, allow_redirects=False, timeout=5)


def assert_ended(idp: str, browser: Browser, school: SchoolClient, tokens: dict[str, Any]) -> None:
    """The session is over: no silent login, no refresh, no userinfo."""
    assert silent(idp, browser, school)["error"] == "login_required"
    resp = token_request(
        idp, school, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
    info = requests.get(
        f"{idp}/userinfo", timeout=5, headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert info.status_code == 401


def test_logout_with_hint_and_registered_uri(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    tokens = sign_in(idp, browser, school, person)
    page = logout(
        browser,
        idp,
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri=school.post_logout_redirect_uri,
        state="bye-1",
    )
    assert page.status_code == 200 and not is_confirmation(page)
    assert continue_link(page) == school.post_logout_redirect_uri + "?state=bye-1"
    assert_ended(idp, browser, school, tokens)
    assert "stuudium_idp_sso" not in browser.http.cookies.get_dict()


def test_logout_without_state_continues_to_the_exact_uri(idp, make_school, make_person, browser):
    school = make_school(public=True)  # the extra client registers .../bye
    person = make_person(school)
    tokens = sign_in(idp, browser, school, person)
    assert school.post_logout_redirect_uri.endswith("/bye")
    page = logout(
        browser,
        idp,
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri=school.post_logout_redirect_uri,
    )
    assert continue_link(page) == school.post_logout_redirect_uri
    assert_ended(idp, browser, school, tokens)


def _altered(uri: str) -> list[str]:
    return [
        "https://evil.example/",
        uri + "x",
        uri + "?next=https://evil.example/",
        uri + "#frag",
        uri.rstrip("/") if uri.endswith("/") else uri + "/",
        uri.replace("http://", "HTTP://"),
        uri.replace("127.0.0.1", "127.0.0.1.evil.example"),
        "javascript:alert(1)",
    ]


def _without_frames(page: str) -> str:
    """The page as offered to the person: front-channel iframes load the school's logout URI
    (on the school's origin), which is not a place the person is sent to."""
    return re.sub(r'<iframe class="frontchannel"[^>]*></iframe>', "", page)


@pytest.mark.parametrize("variant", range(8))
def test_unregistered_or_altered_uri_is_never_offered(idp, make_school, make_person, variant):
    school = make_school()
    person = make_person(school)
    browser = Browser(idp)
    tokens = sign_in(idp, browser, school, person)
    target = _altered(school.post_logout_redirect_uri)[variant]
    page = logout(
        browser, idp, id_token_hint=tokens["id_token"], post_logout_redirect_uri=target, state="s"
    )
    assert page.status_code == 200
    assert continue_link(page) is None
    # The way onward is the hint's school by its own registered address (base_url), which one
    # variant happens to spell: that link is the school's, not the altered URI.
    onward = f'id="onward" href="http://127.0.0.1:9/{school.slug}">'
    assert onward in page.text
    shown = _without_frames(page.text).replace(onward, "")
    assert target not in shown and html.escape(target) not in shown
    # The logout itself still happened: the hint is this session's.
    assert_ended(idp, browser, school, tokens)


def test_another_clients_uri_is_not_offered(idp, make_school, make_person, browser):
    school, other = make_school(), make_school()
    person = make_person(school)
    tokens = sign_in(idp, browser, school, person)
    page = logout(
        browser,
        idp,
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri=other.post_logout_redirect_uri,
        state="s",
    )
    assert continue_link(page) is None
    assert other.post_logout_redirect_uri not in _without_frames(page.text)


def test_without_hint_asks_first_and_offers_no_redirect(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    tokens = sign_in(idp, browser, school, person)
    page = logout(browser, idp, post_logout_redirect_uri=school.post_logout_redirect_uri, state="s")
    assert is_confirmation(page)
    assert session_alive(idp, browser, school)
    # A GET cannot confirm, whatever it says.
    again = logout(browser, idp, confirm="yes", post_logout_redirect_uri="https://evil.example/")
    assert is_confirmation(again)
    assert session_alive(idp, browser, school)
    # A POST without the CSRF token is refused and ends nothing.
    forged = confirm(browser, idp, page, csrf=False)
    assert forged.status_code == 400
    assert session_alive(idp, browser, school)
    # A POST without the session's cookies (cross-site) is refused too.
    stranger = requests.post(
        f"{idp}/logout", data=dict(HIDDEN_RE.findall(page.text)), allow_redirects=False, timeout=5
    )
    assert stranger.status_code == 400
    assert session_alive(idp, browser, school)
    done = confirm(browser, idp, page)
    assert done.status_code == 200 and not is_confirmation(done)
    assert continue_link(done) is None
    assert school.post_logout_redirect_uri not in _without_frames(done.text)
    assert_ended(idp, browser, school, tokens)


def test_hint_of_another_session_asks_first(idp, make_school, make_person):
    school = make_school()
    person, other_person = make_person(school), make_person(school)
    mine, theirs = Browser(idp), Browser(idp)
    my_tokens = sign_in(idp, mine, school, person)
    their_tokens = sign_in(idp, theirs, school, other_person)
    page = logout(
        mine,
        idp,
        id_token_hint=their_tokens["id_token"],
        post_logout_redirect_uri=school.post_logout_redirect_uri,
        state="s",
    )
    assert is_confirmation(page)
    assert continue_link(page) is None
    assert session_alive(idp, mine, school) and session_alive(idp, theirs, school)
    # The same person's other browser session is another session too.
    same_person_elsewhere = Browser(idp)
    elsewhere = sign_in(idp, same_person_elsewhere, school, person)
    page = logout(mine, idp, id_token_hint=elsewhere["id_token"])
    assert is_confirmation(page)
    assert session_alive(idp, mine, school)
    # Confirming ends this browser's session only.
    done = confirm(mine, idp, page)
    assert done.status_code == 200
    assert_ended(idp, mine, school, my_tokens)
    assert session_alive(idp, theirs, school)
    assert session_alive(idp, same_person_elsewhere, school)


def test_forged_hint_is_no_hint(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    tokens = sign_in(idp, browser, school, person)
    header, payload, signature = tokens["id_token"].split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    page = logout(
        browser, idp, id_token_hint=forged, post_logout_redirect_uri=school.post_logout_redirect_uri
    )
    assert is_confirmation(page)
    assert session_alive(idp, browser, school)
    # An access token is not an ID token either.
    page = logout(
        browser,
        idp,
        id_token_hint=tokens["access_token"],
        post_logout_redirect_uri=school.post_logout_redirect_uri,
    )
    assert is_confirmation(page)
    assert session_alive(idp, browser, school)


def test_logout_without_a_session(idp, make_school, make_person, browser):
    school = make_school()
    person = make_person(school)
    tokens = sign_in(idp, browser, school, person)
    page = logout(browser, idp, id_token_hint=tokens["id_token"])
    assert page.status_code == 200 and continue_link(page) is None
    # Already logged out: a second logout with a registered URI just continues there.
    page = logout(
        browser,
        idp,
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri=school.post_logout_redirect_uri,
        state="again",
    )
    assert page.status_code == 200
    assert continue_link(page) == school.post_logout_redirect_uri + "?state=again"
    page = logout(Browser(idp), idp)
    assert page.status_code == 200 and continue_link(page) is None
