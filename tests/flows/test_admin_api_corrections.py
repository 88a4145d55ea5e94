"""Corrections of personal data through the tenant admin API: a class teacher's correction in the
school instance reaches every linked school, concurrent corrections of one version never lose an
update, every change is audited, and one school never reaches another's accounts."""

from __future__ import annotations

import html
import re
import threading
from typing import Any

import pytest
import requests
from sqlalchemy import select

from tests.flows.sync_support import (
    add_member,
    api,
    client_token,
    copy_of,
    eventually,
    person_id,
)
from tests.flows.test_admin_api import _token
from tests.flows.test_diary import Laagri, _get, _sign_in
from tests.flows.test_diary import laagri as _laagri  # noqa: F401 (a fixture)
from tests.support import CSRF_RE, Browser, Tenant

VERSION_RE = re.compile(r'name="version" value="(\d+)"')


@pytest.fixture
def diary(request: pytest.FixtureRequest) -> Laagri:
    """The diary tests' school: classes 3.a (Tiina; Mia's parent Jüri, Oskar's parent Kadri)
    and 4.b (Peeter), and the admin Kaja."""
    school: Laagri = request.getfixturevalue("_laagri")
    return school


def _form(browser: Browser, school: Tenant, sub: str) -> requests.Response:
    page = _get(browser, f"{school.url}/people/{sub}/correct")
    assert page.status_code == 200, page.text
    return page


def _submit(
    browser: Browser, school: Tenant, sub: str, page: requests.Response, **fields: str
) -> requests.Response:
    """Submit the correction form shown on page with some fields changed."""
    values = {
        name: html.unescape(value)
        for name, value in re.findall(
            r'<input type="(?:text|tel|hidden)" id="\w+" name="(\w+)" value="([^"]*)"', page.text
        )
    }
    csrf, version = CSRF_RE.search(page.text), VERSION_RE.search(page.text)
    assert csrf and version
    data = {**values, "csrf_token": csrf.group(1), "version": version.group(1), **fields}
    return browser.http.post(
        f"{school.url}/people/{sub}/correct", data=data, allow_redirects=False, timeout=10
    )


def _audit(idp_app: Any, pid: int) -> list[tuple[str, str | None, int | None, dict[str, Any]]]:
    from idp.models import AuditEvent
    from shared.db import get_db

    with idp_app.app_context():
        rows = (
            get_db()
            .scalars(select(AuditEvent).where(AuditEvent.person_id == pid).order_by(AuditEvent.id))
            .all()
        )
        assert all(r.at is not None for r in rows)
        return [(r.action, r.actor, r.school_id, r.details) for r in rows]


def _school_id(idp_app: Any, school: Tenant) -> int:
    from idp.tenants.schools import school_by_slug
    from shared.db import get_db

    with idp_app.app_context():
        return school_by_slug(get_db(), school.client.slug).id


def test_a_class_teachers_correction_of_a_parent_reaches_every_linked_school(
    idp, idp_app, school_app, diary, make_tenant, link_account
):
    hobby = make_tenant("Laagri Huvialakool")
    juri = diary.juri
    hobby_sub = link_account(juri, hobby.client, ["parent"])
    add_member(school_app, hobby, juri, ["parent"], hobby_sub)
    browser = Browser(idp)
    _sign_in(browser, diary.school.url, diary.tiina)

    listing = _get(browser, f"{diary.school.url}/people")
    assert "Jüri Mägi" in listing.text and "Kadri Tamm" in listing.text  # parents of 3.a
    assert "Peeter" not in listing.text and "Kaja" not in listing.text
    page = _form(browser, diary.school, juri.sub)
    assert 'value="Mägi"' in page.text
    forged = browser.http.post(
        f"{diary.school.url}/people/{juri.sub}/correct",
        data={"family_name": "Mäeots"},
        allow_redirects=False,
        timeout=10,
    )
    assert forged.status_code == 400 and "Vorm aegus" in forged.text

    done = _submit(browser, diary.school, juri.sub, page, family_name="Mäeots")
    assert done.status_code == 303 and done.headers["Location"] == "/people"
    shown = _get(browser, f"{diary.school.url}/people")
    assert "Jüri Mäeots andmed on parandatud" in html.unescape(shown.text)
    assert eventually(lambda: copy_of(school_app, hobby, hobby_sub)["family_name"] == "Mäeots")
    assert copy_of(school_app, diary.school, juri.sub)["family_name"] == "Mäeots"

    changes = [a for a in _audit(idp_app, person_id(idp_app, juri.sub)) if a[0] == "person.change"]
    assert len(changes) == 1
    action, actor, school_id, details = changes[0]
    assert (actor, school_id) == (diary.tiina.sub, _school_id(idp_app, diary.school))
    assert details["reason"] == "correction" and details["changed"] == ["family_name"]


def test_a_change_made_meanwhile_is_shown_not_overwritten(idp, idp_app, school_app, diary):
    school, kadri = diary.school, diary.kadri
    browser = Browser(idp)
    _sign_in(browser, school.url, diary.tiina)
    page = _form(browser, school, kadri.sub)
    # Meanwhile the admin corrects her phone through the API.
    token = client_token(idp, school.client)
    now = api(idp, token, "GET", f"/accounts/{kadri.sub}", acting=diary.kaja.sub).json()
    assert (
        api(
            idp,
            token,
            "PATCH",
            f"/accounts/{kadri.sub}/person",
            acting=diary.kaja.sub,
            body={"phone_number": "+372 5555 0101"},
            if_match=now["version"],
        ).status_code
        == 200
    )

    stale = _submit(browser, school, kadri.sub, page, family_name="Tamm-Kask")
    assert stale.status_code == 409
    text = html.unescape(stale.text)
    assert "Keegi muutis neid andmeid vahepeal; siin on praegused andmed" in text
    assert 'value="+372 5555 0101"' in text and 'value="Tamm"' in text
    again = _submit(browser, school, kadri.sub, stale, family_name="Tamm-Kask")
    assert again.status_code == 303
    final = api(idp, token, "GET", f"/accounts/{kadri.sub}", acting=diary.kaja.sub).json()
    assert (final["family_name"], final["phone_number"]) == ("Tamm-Kask", "+372 5555 0101")
    assert copy_of(school_app, school, kadri.sub)["phone"] == "+372 5555 0101"


def test_two_concurrent_corrections_of_one_version_one_wins(idp, diary):
    school, juri, kaja = diary.school, diary.juri, diary.kaja
    token = client_token(idp, school.client)
    version = api(idp, token, "GET", f"/accounts/{juri.sub}", acting=kaja.sub).json()["version"]
    names = [f"Mägi-{n}" for n in range(4)]
    answers: dict[str, requests.Response] = {}
    start = threading.Barrier(len(names))

    def correct(name: str) -> None:
        start.wait()
        answers[name] = api(
            idp,
            token,
            "PATCH",
            f"/accounts/{juri.sub}/person",
            acting=kaja.sub,
            body={"family_name": name},
            if_match=version,
        )

    threads = [threading.Thread(target=correct, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    statuses = sorted(r.status_code for r in answers.values())
    assert statuses == [200, 409, 409, 409], [r.text for r in answers.values()]
    winner = next(n for n, r in answers.items() if r.status_code == 200)
    won = answers[winner].json()["version"]
    for r in answers.values():
        if r.status_code == 409:
            assert r.json()["error"] == "version_mismatch"
            assert (r.json()["current"]["family_name"], r.json()["current"]["version"]) == (
                winner,
                won,
            )
    final = api(idp, token, "GET", f"/accounts/{juri.sub}", acting=kaja.sub)
    assert final.json()["family_name"] == winner and final.headers["ETag"] == f'"{won}"'


def test_if_match_is_required_and_a_stale_version_gets_the_current_data(idp, diary):
    school, juri, kaja = diary.school, diary.juri, diary.kaja
    token = client_token(idp, school.client)
    path = f"/accounts/{juri.sub}/person"
    missing = api(idp, token, "PATCH", path, acting=kaja.sub, body={"given_name": "Jüri"})
    assert missing.status_code == 428 and missing.json()["error"] == "precondition_required"
    current = api(idp, token, "GET", f"/accounts/{juri.sub}", acting=kaja.sub)
    assert current.headers["ETag"] == f'"{current.json()["version"]}"'
    assert "isikukood" not in current.text
    stale = api(
        idp,
        token,
        "PATCH",
        path,
        acting=kaja.sub,
        body={"given_name": "Jürgen"},
        if_match=current.json()["version"] - 1,
    )
    assert stale.status_code == 409 and stale.json()["current"]["given_name"] == "Jüri"
    for bad in (
        {"isikukood": "38001010000"},
        {"family_name": ""},
        {"phone_number": "helista"},
        {"birthdate": "29.02.1981"},
    ):
        resp = api(
            idp, token, "PATCH", path, acting=kaja.sub, body=bad, if_match=current.json()["version"]
        )
        assert resp.status_code == 400, bad
    unchanged = api(
        idp,
        token,
        "PATCH",
        path,
        acting=kaja.sub,
        body={"given_name": "Jüri"},
        if_match=current.json()["version"],
    )
    assert unchanged.status_code == 200 and unchanged.json()["changed"] is False
    assert unchanged.json()["version"] == current.json()["version"]


def test_login_factors_only_for_a_person_of_this_school_alone(
    idp, diary, make_tenant, link_account
):
    school, kaja = diary.school, diary.kaja
    token = client_token(idp, school.client)
    kadri = api(idp, token, "GET", f"/accounts/{diary.kadri.sub}", acting=kaja.sub).json()
    assert kadri["login_factors_editable"] is True
    taken = api(
        idp,
        token,
        "PATCH",
        f"/accounts/{diary.kadri.sub}/person",
        acting=kaja.sub,
        body={"email": diary.juri.email},
        if_match=kadri["version"],
    )
    assert taken.status_code == 409 and taken.json()["error"] == "email_in_use"
    moved = api(
        idp,
        token,
        "PATCH",
        f"/accounts/{diary.kadri.sub}/person",
        acting=kaja.sub,
        body={"email": "Kadri.Tamm@Laagri.ee"},
        if_match=kadri["version"],
    )
    assert moved.status_code == 200, moved.text
    from tests.flows.test_admin_api import _password_login_works
    from tests.support import PersonLogin

    renamed = PersonLogin(
        "kadri.tamm@laagri.ee", diary.kadri.password, diary.kadri.sub, "Kadri", "Tamm"
    )
    assert _password_login_works(idp, school, renamed)

    link_account(diary.juri, make_tenant().client, ["parent"])
    juri = api(idp, token, "GET", f"/accounts/{diary.juri.sub}", acting=kaja.sub).json()
    assert juri["login_factors_editable"] is False
    refused = api(
        idp,
        token,
        "PATCH",
        f"/accounts/{diary.juri.sub}/person",
        acting=kaja.sub,
        body={"email": "juri@laagri.ee"},
        if_match=juri["version"],
    )
    assert refused.status_code == 409 and refused.json()["error"] == "login_factor"


def test_an_admin_creates_an_account_as_a_new_person(idp, idp_app, diary, make_tenant, make_person):
    school, kaja = diary.school, diary.kaja
    token = client_token(idp, school.client)
    elsewhere = make_person(make_tenant().client, "Liis", "Lepp")
    body = {
        "email": elsewhere.email,
        "given_name": "Liis",
        "family_name": "Lepp",
        "roles": ["parent"],
        "phone_number": "+372 5000 0000",
    }
    created = api(idp, token, "POST", "/accounts", acting=kaja.sub, body=body)
    assert created.status_code == 201, created.text
    account = created.json()
    assert created.headers["Location"].endswith(f"/api/admin/v1/accounts/{account['sub']}")
    assert (account["roles"], account["phone_number"]) == (["parent"], "+372 5000 0000")
    # Same e-mail as a person at another school: still a person of its own (never merged).
    assert person_id(idp_app, account["sub"]) != person_id(idp_app, elsewhere.sub)
    twice = api(idp, token, "POST", "/accounts", acting=kaja.sub, body=body)
    assert twice.status_code == 409 and twice.json()["error"] == "email_in_use"
    teacher = api(
        idp,
        token,
        "POST",
        "/accounts",
        acting=diary.tiina.sub,
        body={**body, "email": "x@example.ee"},
    )
    assert teacher.status_code == 403
    assert (
        api(
            idp,
            token,
            "POST",
            "/accounts",
            acting=kaja.sub,
            body={**body, "email": "y@example.ee", "roles": ["king"]},
        ).status_code
        == 400
    )


def test_one_school_never_reaches_anothers_accounts(
    idp, school_app, diary, make_tenant, make_person
):
    a, kaja = diary.school, diary.kaja
    b = make_tenant("Teine Kool")
    b_admin = make_person(b.client, "Berit", "Bärg", ("admin",))
    b_parent = make_person(b.client, "Boris", "Bõrk")
    a_token, b_token = client_token(idp, a.client), client_token(idp, b.client)
    for method, path, body in (
        ("GET", f"/accounts/{b_parent.sub}", None),
        ("PATCH", f"/accounts/{b_parent.sub}/person", {"family_name": "Võõras"}),
        ("POST", f"/accounts/{b_parent.sub}/disable", None),
        ("POST", f"/accounts/{b_parent.sub}/enable", None),
    ):
        resp = api(idp, a_token, method, path, acting=kaja.sub, body=body, if_match=1)
        assert resp.status_code == 404, (method, path)
    listing = api(idp, a_token, "GET", "/accounts", acting=kaja.sub).json()["accounts"]
    assert b_parent.sub not in {x["sub"] for x in listing}
    assert diary.juri.sub in {x["sub"] for x in listing}
    # A client cannot act as another school's account, nor with no acting account at all.
    assert api(idp, a_token, "GET", "/accounts", acting=b_admin.sub).status_code == 403
    assert (
        api(idp, b_token, "GET", f"/accounts/{diary.juri.sub}", acting=kaja.sub).status_code == 403
    )
    assert api(idp, a_token, "GET", "/accounts").status_code == 400
    # A person's own token reaches no further than their school either.
    user_token = _token(idp, a, kaja)
    assert api(idp, user_token, "GET", f"/accounts/{b_parent.sub}").status_code == 404
    assert api(idp, user_token, "GET", f"/accounts/{diary.juri.sub}").status_code == 200
    assert (
        api(
            idp, user_token, "GET", f"/accounts/{diary.juri.sub}", acting=diary.tiina.sub
        ).status_code
        == 400
    )
    # The admin API's token is no userinfo token, and a parent may not correct anyone.
    userinfo = requests.get(
        f"{idp}/userinfo", headers={"Authorization": f"Bearer {a_token}"}, timeout=10
    )
    assert userinfo.status_code == 401
    assert (
        api(idp, a_token, "GET", f"/accounts/{diary.kadri.sub}", acting=diary.juri.sub).status_code
        == 403
    )
    assert copy_of(school_app, a, diary.juri.sub)["family_name"] == "Mägi"


def test_a_teacher_cannot_correct_people_outside_their_class(idp, diary):
    school = diary.school
    browser = Browser(idp)
    _sign_in(browser, school.url, diary.peeter)  # class teacher of 4.b, not of 3.a
    listing = _get(browser, f"{school.url}/people")
    assert "Jüri" not in listing.text and "Kadri" not in listing.text
    csrf = CSRF_RE.search(_get(browser, f"{school.url}/lessons/new").text)  # a valid token
    assert csrf
    for resp in (
        _get(browser, f"{school.url}/people/{diary.juri.sub}/correct"),
        browser.http.post(
            f"{school.url}/people/{diary.juri.sub}/correct",
            data={
                "csrf_token": csrf.group(1),
                "family_name": "X",
                "given_name": "Y",
                "version": "1",
            },
            allow_redirects=False,
            timeout=10,
        ),
    ):
        assert resp.status_code == 403
        assert "Selle inimese andmeid sa parandada ei saa" in html.unescape(resp.text)
    parent = Browser(idp)
    _sign_in(parent, school.url, diary.juri)
    assert _get(parent, f"{school.url}/people").status_code == 403


def test_client_credentials_are_for_the_admin_api_only(idp, diary, make_school):
    school = diary.school.client
    for scope in ("openid", "admin openid", "profile"):
        resp = requests.post(
            f"{idp}/token",
            data={"grant_type": "client_credentials", "scope": scope},
            auth=(school.client_id, school.client_secret or ""),
            timeout=10,
        )
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_scope", scope
    public = make_school(public=True)
    resp = requests.post(
        f"{idp}/token",
        data={"grant_type": "client_credentials", "client_id": public.client_id},
        timeout=10,
    )
    assert resp.status_code in (400, 401)
    assert resp.json()["error"] in ("unauthorized_client", "invalid_client")
    wrong = requests.post(
        f"{idp}/token",
        data={"grant_type": "client_credentials"},
        auth=(school.client_id, "wrong"),
        timeout=10,
    )
    assert wrong.status_code == 401
    plain = requests.post(
        f"{idp}/token",
        data={"grant_type": "client_credentials"},
        auth=(school.client_id, school.client_secret or ""),
        timeout=10,
    )
    assert plain.status_code == 200 and plain.json()["scope"] == "admin"
    assert "refresh_token" not in plain.json() and "id_token" not in plain.json()


def test_the_openapi_document_describes_the_api(idp):
    doc = requests.get(f"{idp}/api/admin/v1/openapi.json", timeout=10)
    assert doc.status_code == 200
    body = doc.json()
    assert body["openapi"].startswith("3.1")
    assert set(body["paths"]) == {
        "/accounts",
        "/accounts/{sub}",
        "/accounts/{sub}/person",
        "/accounts/{sub}/disable",
        "/accounts/{sub}/enable",
    }
    patch = body["paths"]["/accounts/{sub}/person"]["patch"]
    assert {"409", "428"} <= set(patch["responses"])
    assert any(p["name"] == "If-Match" and p["required"] for p in patch["parameters"])
    flows = body["components"]["securitySchemes"]["clientCredentials"]["flows"]
    assert flows["clientCredentials"]["tokenUrl"] == f"{idp}/token"


def test_a_child_with_an_account_is_corrected_by_their_class_teacher(
    idp, school_app, diary, make_person
):
    from school_instance.models import Student
    from tests.flows.test_diary import _diary

    mia = make_person(diary.school.client, "Mia", "Mägi", ("student",))
    member = add_member(school_app, diary.school, mia, ["student"])
    with _diary(school_app, diary.school) as (db, _tenant_id):
        db.get(Student, diary.ids["mia"]).member_id = member
    tiina, peeter = Browser(idp), Browser(idp)
    _sign_in(tiina, diary.school.url, diary.tiina)
    _sign_in(peeter, diary.school.url, diary.peeter)
    assert f'data-sub="{mia.sub}"' in _get(tiina, f"{diary.school.url}/people").text
    assert f'data-sub="{mia.sub}"' not in _get(peeter, f"{diary.school.url}/people").text
    page = _form(tiina, diary.school, mia.sub)
    done = _submit(
        tiina, diary.school, mia.sub, page, given_name="Mia-Liis", birth_date="05.03.2016"
    )
    assert done.status_code == 303
    copy = copy_of(school_app, diary.school, mia.sub)
    assert (copy["given_name"], str(copy["birth_date"])) == ("Mia-Liis", "2016-03-05")
    assert _get(peeter, f"{diary.school.url}/people/{mia.sub}/correct").status_code == 403


def test_a_school_revokes_its_client_token_and_introspects_only_its_own(idp, diary, make_tenant):
    client = diary.school.client
    token = client_token(idp, client)
    auth = (client.client_id, client.client_secret or "")
    seen = requests.post(f"{idp}/introspect", data={"token": token}, auth=auth, timeout=10)
    assert seen.json()["active"] is True and seen.json()["scope"] == "admin"
    assert "sid" not in seen.json()
    other = make_tenant().client
    foreign = requests.post(
        f"{idp}/introspect",
        data={"token": token},
        timeout=10,
        auth=(other.client_id, other.client_secret or ""),
    )
    assert foreign.json() == {"active": False}
    path = f"/accounts/{diary.juri.sub}"
    assert api(idp, token, "GET", path, acting=diary.kaja.sub).status_code == 200
    assert (
        requests.post(f"{idp}/revoke", data={"token": token}, auth=auth, timeout=10).status_code
        == 200
    )
    assert api(idp, token, "GET", path, acting=diary.kaja.sub).status_code == 401
