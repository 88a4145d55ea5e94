"""Front-Channel Logout 1.0: the IdP's logout page frames each school's logout URI with iss
and sid; the school ends that session and lets only the IdP frame it."""

from __future__ import annotations

import html
import json
import re

from tests.flows.test_school_sso import _sign_in


def _sid(school_app, sub):
    r = school_app.extensions["redis"]
    for key in r.scan_iter("si:sess:*"):
        raw = r.get(key)
        if raw and json.loads(raw)["sub"] == sub:
            return json.loads(raw)["sid"]
    return None


def test_the_logout_page_frames_every_school_of_the_session(
    idp, browser, make_tenant, make_person, school_app
):
    school = make_tenant("Laagri Kool")
    person = make_person(school.client, given_name="Mari", family_name="Tamm")
    _sign_in(browser, school.url, person)
    sid = _sid(school_app, person.sub)
    page = browser.http.get(f"{idp}/logout", timeout=10)  # no hint: confirmation first
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf, page.text
    done = browser.http.post(
        f"{idp}/logout", data={"csrf_token": csrf.group(1), "confirm": "yes"}, timeout=10
    )
    frames = [
        html.unescape(src)
        for src in re.findall(
            r'<iframe class="frontchannel" '
            r'src="([^"]+)"',
            done.text,
        )
    ]
    assert frames == [
        f"{school.url}/auth/frontchannel-logout?iss="
        f"{idp.replace(':', '%3A').replace('/', '%2F')}&sid={sid}"
    ]
    assert f"frame-src {school.url}" in done.headers["Content-Security-Policy"]


def test_the_school_ends_the_framed_session_and_only_the_idp_may_frame_it(
    idp, browser, make_tenant, make_person, school_app
):
    import requests

    school = make_tenant()
    person = make_person(school.client, given_name="Mari", family_name="Tamm")
    _sign_in(browser, school.url, person)
    sid = _sid(school_app, person.sub)
    wrong = requests.get(
        f"{school.url}/auth/frontchannel-logout",
        params={"iss": "http://evil.example", "sid": sid},
        timeout=10,
    )
    assert wrong.status_code == 400
    assert "Mari Tamm" in browser.http.get(school.url + "/", timeout=10).text
    resp = requests.get(
        f"{school.url}/auth/frontchannel-logout", params={"iss": idp, "sid": sid}, timeout=10
    )
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    assert f"frame-ancestors {idp}" in resp.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in resp.headers
    assert "Mari Tamm" not in browser.http.get(school.url + "/", timeout=10).text
    assert "X-Frame-Options" in requests.get(school.url + "/", timeout=10).headers
