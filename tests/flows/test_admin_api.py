"""The tenant admin API (/api/admin/v1): who may call it, and disabling an account ends its
sessions everywhere (ARCHITECTURE: "Disabling the account a session logged in with ends the
session; disabling another linked account is handled like unlink")."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from tests.flows.test_end_session import silent
from tests.flows.test_resource_errors import _mint, _segments, assert_invalid_token
from tests.flows.test_school_sso import _sign_in
from tests.support import Browser, PersonLogin, Tenant, refresh, sign_in

API = "/api/admin/v1"


def _call(idp: str, token: str, method: str, path: str) -> requests.Response:
    return requests.request(
        method, f"{idp}{API}{path}", timeout=10, headers={"Authorization": f"Bearer {token}"}
    )


def _disable(idp: str, token: str, sub: str) -> requests.Response:
    return _call(idp, token, "POST", f"/accounts/{sub}/disable")


def _token(idp: str, school: Tenant, person: PersonLogin) -> str:
    """A person's access token for a school, as the school instance holds it after login."""
    tokens = sign_in(
        idp, Browser(idp), school.client, person, scope="openid profile offline_access stuudium"
    )
    return str(tokens["access_token"])


def _jump(idp: str, browser: Browser, school: Tenant) -> None:
    """Go to a linked school through its login initiation URI: signed in silently."""
    query = urlencode({"iss": idp, "target_link_uri": school.url + "/"})
    landed = browser.follow(f"{school.url}/auth/login?{query}", stop_prefix="\x00")
    assert landed.status_code == 200 and landed.url == school.url + "/", landed.text
    assert 'name="password"' not in landed.text


def _local(school_app: Any, school: Tenant, sub: str) -> dict[str, Any]:
    """The school instance's one local session of this account (with its tokens)."""
    r = school_app.extensions["redis"]
    found = [json.loads(r.get(k)) for k in r.scan_iter("si:sess:*")]
    mine = [s for s in found if s and s["sub"] == sub]
    assert len(mine) == 1, mine
    return mine[0]


def _lands_on_login(browser: Browser, school: Tenant, name: str) -> bool:
    page = browser.http.get(school.url + "/", timeout=10)
    assert page.status_code == 200
    return 'id="login"' in page.text and name not in page.text


@dataclass
class _Logout:
    client_id: str
    sub: str
    state: str
    status: int | None


def _logouts(idp_app: Any, sid: str) -> list[_Logout]:
    """The logout messages queued for one session, sorted by client."""
    from sqlalchemy import select

    from idp.models import Delivery
    from shared.db import get_db

    with idp_app.app_context():
        rows = get_db().scalars(select(Delivery).where(Delivery.kind == "logout")).all()
        found = [
            _Logout(r.client.client_id, r.payload["sub"], r.state, r.last_status)
            for r in rows
            if r.payload.get("sid") == sid
        ]
    return sorted(found, key=lambda x: x.client_id)


def _password_login_works(idp: str, school: Tenant, person: PersonLogin) -> bool:
    browser = Browser(idp)
    page = browser.follow(f"{school.url}/auth/login", stop_prefix="\x00")
    final = browser.submit_login(page, person.email, person.password, stop_prefix="\x00")
    if final.url == school.url + "/" and person.given_name in final.text:
        return True
    assert "E-posti aadress või parool on vale." in final.text, final.text
    return False


@pytest.fixture
def schools(make_tenant, make_person):
    """Schools A and B, and an admin of each."""
    a, b = make_tenant("Kastani Kool"), make_tenant("Kastani Lasteaed")
    return (
        a,
        b,
        make_person(a.client, "Anne", "Admin", ("admin", "teacher")),
        make_person(b.client, "Bert", "Boss", ("admin",)),
    )


@dataclass
class _SignedIn:
    """A linked person signed in at two schools in one browser, and the schools' sessions."""

    browser: Browser
    person: PersonLogin
    other_sub: str
    at_home: dict[str, Any]
    at_other: dict[str, Any]


@pytest.fixture
def signed_in(idp, school_app, make_person, link_account):
    """Log a linked person in at home with that school's account, then jump to the other."""

    def make(home: Tenant, other: Tenant, given_name: str, family_name: str) -> _SignedIn:
        person = make_person(home.client, given_name, family_name)
        other_sub = link_account(person, other.client, ["parent"])
        browser = Browser(idp)
        _sign_in(browser, home.url, person)
        _jump(idp, browser, other)
        found = _SignedIn(
            browser,
            person,
            other_sub,
            _local(school_app, home, person.sub),
            _local(school_app, other, other_sub),
        )
        assert found.at_home["sid"] == found.at_other["sid"]
        return found

    return make


def test_disabling_the_account_a_session_logged_in_with_ends_it_everywhere(
    idp, idp_app, schools, signed_in
):
    a, b, admin, _ = schools
    p = signed_in(a, b, "Peeter", "Pihlakas")  # logged in with the A account
    browser, parent, b_sub, at_a, at_b = p.browser, p.person, p.other_sub, p.at_home, p.at_other

    resp = _disable(idp, _token(idp, a, admin), parent.sub)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["changed"] is True and body["account"]["status"] == "disabled"
    assert (body["sessions_ended"], body["sessions_left_school"], body["logouts_queued"]) == (
        1,
        0,
        2,
    )

    # Each school was told with a logout token it accepted (it answers 400 to an invalid one).
    assert _logouts(idp_app, at_a["sid"]) == sorted(
        [
            _Logout(a.client.client_id, parent.sub, "delivered", 200),
            _Logout(b.client.client_id, b_sub, "delivered", 200),
        ],
        key=lambda x: x.client_id,
    )
    for school in (a, b):
        assert _lands_on_login(browser, school, "Peeter Pihlakas")
        assert silent(idp, browser, school.client)["error"] == "login_required"
    for school, local in ((a, at_a), (b, at_b)):
        refused = refresh(idp, school.client, local["refresh_token"])
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert not _password_login_works(idp, a, parent)


def test_disabling_a_linked_account_takes_only_that_school_out(
    idp, idp_app, school_app, schools, signed_in, monkeypatch
):
    a, b, admin, _ = schools
    p = signed_in(b, a, "Kadri", "Kask")  # logged in with the B account
    browser, parent, a_sub, at_b, at_a = p.browser, p.person, p.other_sub, p.at_home, p.at_other

    resp = _disable(idp, _token(idp, a, admin), a_sub)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["sessions_ended"], body["sessions_left_school"], body["logouts_queued"]) == (
        0,
        1,
        1,
    )
    assert _logouts(idp_app, at_a["sid"]) == [_Logout(a.client.client_id, a_sub, "delivered", 200)]
    assert _lands_on_login(browser, a, "Kadri Kask")
    assert silent(idp, browser, a.client)["error"] == "login_required"
    refused = refresh(idp, a.client, at_a["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"

    # B goes on, and its refresh still works: make the school refresh on its next request.
    assert not _lands_on_login(browser, b, "Kadri Kask")
    assert "code" in silent(idp, browser, b.client)
    monkeypatch.setitem(school_app.config, "REFRESH_MARGIN_SECONDS", 10_000)
    page = browser.http.get(b.url + "/", timeout=10)
    assert "Kadri Kask" in page.text
    assert _local(school_app, b, parent.sub)["refresh_token"] != at_b["refresh_token"]


def test_disabling_twice_sends_nothing_new_and_enabling_brings_login_back(
    idp, idp_app, schools, make_person
):
    a, _, admin, _ = schools
    parent = make_person(a.client, "Liis", "Lepp")
    token = _token(idp, a, admin)
    tokens = sign_in(idp, Browser(idp), a.client, parent)
    sid = _segments(tokens["id_token"])[1]["sid"]
    first = _disable(idp, token, parent.sub)
    assert first.json()["changed"] is True and len(_logouts(idp_app, sid)) == 1
    again = _disable(idp, token, parent.sub)
    assert again.status_code == 200
    assert again.json()["changed"] is False and again.json()["logouts_queued"] == 0
    assert len(_logouts(idp_app, sid)) == 1
    assert not _password_login_works(idp, a, parent)

    enabled = _call(idp, token, "POST", f"/accounts/{parent.sub}/enable")
    assert enabled.status_code == 200
    assert enabled.json()["changed"] is True and enabled.json()["account"]["status"] == "active"
    assert _password_login_works(idp, a, parent)
    assert _call(idp, token, "POST", f"/accounts/{parent.sub}/enable").json()["changed"] is False


def test_every_change_is_audited_with_the_acting_admin(idp, idp_app, schools, make_person):
    from sqlalchemy import select

    from idp.models import Account, AuditEvent
    from shared.db import get_db

    a, _, admin, _ = schools
    parent = make_person(a.client, "Mart", "Mänd")
    token = _token(idp, a, admin)
    _disable(idp, token, parent.sub)
    _call(idp, token, "POST", f"/accounts/{parent.sub}/enable")
    with idp_app.app_context():
        db = get_db()
        account = db.scalar(select(Account).where(Account.sub == parent.sub))
        assert account is not None
        events = db.scalars(
            select(AuditEvent)
            .where(AuditEvent.person_id == account.person_id)
            .order_by(AuditEvent.id)
        ).all()
        assert [(e.action, e.actor, e.school_id, e.details) for e in events] == [
            ("account.disable", admin.sub, account.school_id, {"sub": parent.sub}),
            ("account.enable", admin.sub, account.school_id, {"sub": parent.sub}),
        ]


def test_the_list_shows_the_schools_own_accounts_without_personal_codes(idp, schools, make_person):
    a, b, admin, b_admin = schools
    parent = make_person(a.client, "Olev", "Ots", ("parent", "staff"))
    resp = _call(idp, _token(idp, a, admin), "GET", "/accounts")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    listed = {x["sub"]: x for x in resp.json()["accounts"]}
    assert set(listed) == {admin.sub, parent.sub}  # nobody of school B
    assert listed[parent.sub] == {
        "sub": parent.sub,
        "given_name": "Olev",
        "family_name": "Ots",
        "email": parent.email,
        "roles": ["parent", "staff"],
        "status": "active",
    }
    assert b_admin.sub not in resp.text and "isikukood" not in resp.text


def test_only_an_active_admin_of_the_school_may_call(idp, idp_app, schools, make_person):
    from sqlalchemy import update

    from idp.models import Account
    from shared.db import get_db

    a, _, admin, b_admin = schools
    parent = make_person(a.client, "Piret", "Paju")
    as_parent = _token(idp, a, parent)
    for resp in (_call(idp, as_parent, "GET", "/accounts"), _disable(idp, as_parent, admin.sub)):
        assert resp.status_code == 403
        assert resp.json()["error"] == "insufficient_scope"
        assert resp.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'

    # An admin of another school does not even learn that the account exists.
    as_b_admin = _token(idp, schools[1], b_admin)
    for path in (f"/accounts/{parent.sub}/disable", f"/accounts/{parent.sub}/enable"):
        resp = _call(idp, as_b_admin, "POST", path)
        assert resp.status_code == 404 and resp.json()["error"] == "not_found"
    assert _password_login_works(idp, a, parent)

    # An admin may not lock themselves out.
    token = _token(idp, a, admin)
    assert _disable(idp, token, admin.sub).status_code == 409

    # An admin whose own account was disabled (by another admin) is refused at once.
    with idp_app.app_context():
        db = get_db()
        db.execute(update(Account).where(Account.sub == admin.sub).values(status="disabled"))
        db.commit()
    resp = _call(idp, token, "GET", "/accounts")
    assert resp.status_code == 403 and resp.json()["error"] == "insufficient_scope"


def test_a_bad_token_is_401(idp, idp_app, schools, make_person):
    a, _, admin, _ = schools
    parent = make_person(a.client, "Rein", "Raud")
    tokens = sign_in(idp, Browser(idp), a.client, admin)
    claims = _segments(tokens["access_token"])[1]
    for bad in ("", "not-a-token", _mint(idp_app, claims, -1)):
        assert_invalid_token(_disable(idp, bad, parent.sub))
    unauthenticated = requests.get(f"{idp}{API}/accounts", timeout=10)
    assert_invalid_token(unauthenticated)

    revoked = requests.post(
        f"{idp}/revoke",
        data={"token": tokens["access_token"]},
        auth=(a.client.client_id, a.client.client_secret or ""),
        timeout=10,
    )
    assert revoked.status_code == 200
    assert_invalid_token(_disable(idp, tokens["access_token"], parent.sub))
    # The admin's session ended: its tokens end with it.
    other = Browser(idp)
    live = sign_in(idp, other, a.client, admin)
    assert _call(idp, live["access_token"], "GET", "/accounts").status_code == 200
    other.http.get(f"{idp}/logout", params={"id_token_hint": live["id_token"]}, timeout=10)
    assert_invalid_token(_call(idp, live["access_token"], "GET", "/accounts"))
    assert _password_login_works(idp, a, parent)
