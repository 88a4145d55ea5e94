"""Single logout: a person signed in at three schools logs out at one of them and is signed out
at every one (issue 4, acceptance 1)."""

from __future__ import annotations

import re

import pytest

from tests.flows.test_end_session import silent
from tests.flows.test_school_sso import _sign_in
from tests.support import CSRF_RE, Browser, Tenant

SCHOOL_NAMES = ("Laagri Kool", "Laagri Huvialakool", "Laagri Lasteaed")


def _signed_in_as(browser: Browser, school: Tenant, name: str) -> bool:
    """Tell whether the school's front page greets the person (the diary, not the landing)."""
    home = browser.http.get(school.url + "/", timeout=10)
    assert home.status_code == 200, home.text
    signed_in = 'class="menu account"' in home.text and name in home.text
    assert signed_in != ('id="login"' in home.text), "either the diary or the sign-in button"
    return signed_in


def _log_out_at(browser: Browser, school: Tenant) -> None:
    """Press the school's "Logi välja" button and follow on to the IdP's logout page."""
    profile = browser.http.get(school.url + "/profile", allow_redirects=False, timeout=10)
    assert profile.status_code == 200 and 'id="logout"' in profile.text
    csrf = CSRF_RE.search(profile.text)
    assert csrf
    resp = browser.http.post(
        school.url + "/auth/logout",
        data={"csrf_token": csrf.group(1)},
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 303
    done = browser.follow(resp.headers["Location"], stop_prefix="\x00")
    assert done.status_code == 200
    # The logout page lists every school of the session as signed out.
    listed = re.findall(r'<li data-state="([a-z]+)"><strong>([^<]+)</strong>', done.text)
    assert sorted(listed) == sorted(("delivered", n) for n in SCHOOL_NAMES), done.text


@pytest.mark.parametrize("where", range(3), ids=["kool", "huvialakool", "lasteaed"])
def test_logging_out_at_one_school_logs_out_at_all_three(
    idp, browser, make_tenant, make_person, link_account, where
):
    schools = [make_tenant(name) for name in SCHOOL_NAMES]
    person = make_person(schools[0].client, given_name="Kaja", family_name="Kask", roles=("admin",))
    for school in schools[1:]:
        link_account(person, school.client, ["admin"])
    name = f"{person.given_name} {person.family_name}"
    _sign_in(browser, schools[0].url, person)  # typed once, at the first school
    for school in schools[1:]:
        # Already signed in at the IdP: the school's login finishes without the login page.
        landed = browser.follow(f"{school.url}/auth/login", stop_prefix="\x00")
        assert landed.status_code == 200 and 'name="password"' not in landed.text
    assert all(_signed_in_as(browser, s, name) for s in schools)

    _log_out_at(browser, schools[where])

    for school in schools:
        assert not _signed_in_as(browser, school, name), school.client.name
        # A page that needs a session sends the person to the IdP's login page.
        page = browser.follow(school.url + "/profile", stop_prefix="\x00")
        assert page.status_code == 200 and page.url.startswith(idp + "/login")
        assert 'name="password"' in page.text
        assert silent(idp, browser, school.client)["error"] == "login_required"
