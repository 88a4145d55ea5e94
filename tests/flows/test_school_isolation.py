"""Tenant isolation in the school instance: one school's session cookie, ID token, access token,
authorization response or logout token is useless at another school; one school's data never
shows at another; a host that is no school's gets 404."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests

from tests.support import Browser, PersonLogin, Tenant

EVENT = "http://schemas.openid.net/event/backchannel-logout"


def _sign_in(browser: Browser, school: Tenant, person: PersonLogin) -> str:
    """Sign in at a school with the password; return the school's session cookie."""
    page = browser.follow(f"{school.url}/auth/login", stop_prefix="\x00")
    assert page.status_code == 200 and 'name="password"' in page.text
    final = browser.submit_login(page, person.email, person.password, stop_prefix="\x00")
    assert final.status_code == 200 and final.url == school.url + "/", final.text
    cookie = browser.http.cookies.get(f"stuudium_{school.client.slug}", domain="127.0.0.1")
    assert cookie
    return str(cookie)


def _jump(browser: Browser, idp: str, school: Tenant) -> str:
    """Go to another school as its logo link does (a silent login); return its cookie."""
    query = urlencode({"iss": idp, "target_link_uri": school.url + "/"})
    landed = browser.follow(f"{school.url}/auth/login?{query}", stop_prefix="\x00")
    assert landed.status_code == 200 and landed.url == school.url + "/"
    assert 'name="password"' not in landed.text
    cookie = browser.http.cookies.get(f"stuudium_{school.client.slug}", domain="127.0.0.1")
    assert cookie
    return str(cookie)


def _tenant_info(school_app: Any, school: Tenant) -> Any:
    return school_app.extensions["tenants"].find(urlsplit(school.url).netloc)


def _session_data(school_app: Any, school: Tenant, cookie: str) -> dict[str, Any] | None:
    """The school's local session behind a cookie, read from its store."""
    from school_instance import sessions

    with school_app.app_context():
        found = sessions.load(_tenant_info(school_app, school), cookie)
    return found[1] if found else None


def _home(school: Tenant, cookies: dict[str, str]) -> requests.Response:
    return requests.get(school.url + "/", cookies=cookies, timeout=10)


def _is_visitor(school: Tenant, cookies: dict[str, str], name: str) -> bool:
    home = _home(school, cookies)
    profile = requests.get(
        school.url + "/profile", cookies=cookies, allow_redirects=False, timeout=10
    )
    return (
        'id="login"' in home.text
        and name not in home.text
        and profile.status_code == 303
        and "/auth/login" in profile.headers["Location"]
    )


def test_a_session_cookie_of_one_school_is_no_session_at_another(browser, make_tenant, make_person):
    a, b = make_tenant("Laagri Kool"), make_tenant("Laagri Lasteaed")
    person = make_person(a.client, given_name="Tiina", family_name="Õunapuu")
    cookie = _sign_in(browser, a, person)
    a_name, b_name = f"stuudium_{a.client.slug}", f"stuudium_{b.client.slug}"
    assert a_name != b_name

    assert "Tiina Õunapuu" in _home(a, {a_name: cookie}).text  # the control
    # A's cookie value under B's cookie name: B has no such session.
    assert _is_visitor(b, {b_name: cookie}, "Tiina Õunapuu")
    # A's cookie under A's name, sent to B (browsers share cookies across ports): ignored.
    assert _is_visitor(b, {a_name: cookie}, "Tiina Õunapuu")
    # Nor does B's answer hand out a session of its own.
    resp = requests.get(b.url + "/", cookies={a_name: cookie, b_name: cookie}, timeout=10)
    assert b_name not in resp.headers.get("Set-Cookie", "")


def test_an_id_token_for_one_school_is_refused_by_another(
    idp, browser, make_tenant, make_person, school_app
):
    from school_instance.provider import IdTokenInvalid, provider, validate_id_token

    a, b = make_tenant(), make_tenant()
    person = make_person(a.client)
    data = _session_data(school_app, a, _sign_in(browser, a, person))
    assert data is not None
    prov = provider(idp, 5)

    claims = validate_id_token(
        prov, data["id_token"], client_id=a.client.client_id, nonce=None, leeway=30, timeout=5
    )
    assert claims["sub"] == person.sub  # the control: valid for the school it was issued to
    with pytest.raises(IdTokenInvalid, match="audience"):
        validate_id_token(
            prov, data["id_token"], client_id=b.client.client_id, nonce=None, leeway=30, timeout=5
        )


def test_tokens_of_one_school_are_inactive_when_another_introspects_them(
    idp, browser, make_tenant, make_person, school_app
):
    a, b = make_tenant(), make_tenant()
    person = make_person(a.client)
    data = _session_data(school_app, a, _sign_in(browser, a, person))
    assert data is not None and data["refresh_token"]

    def introspect(tenant: Tenant, token: str) -> dict[str, Any]:
        resp = requests.post(
            f"{idp}/introspect",
            data={"token": token},
            auth=(tenant.client.client_id, tenant.client.client_secret or ""),
            timeout=10,
        )
        assert resp.status_code == 200
        return dict(resp.json())

    for token in (data["access_token"], data["refresh_token"]):
        assert introspect(b, token) == {"active": False}
        own = introspect(a, token)  # the control: the school it was issued to sees it live
        assert own["active"] is True and own["client_id"] == a.client.client_id


def _callback_url(browser: Browser, school: Tenant, person: PersonLogin) -> str:
    """Log in at the IdP for a school, stopping before the school's callback is called."""
    prefix = school.url + "/auth/callback"
    page = browser.follow(f"{school.url}/auth/login", stop_prefix="\x00")
    to_school = browser.submit_login(page, person.email, person.password, stop_prefix=prefix)
    url = urljoin(to_school.url, to_school.headers["Location"])
    assert url.startswith(prefix + "?")
    return url


def _refused(resp: requests.Response, heading: str) -> None:
    assert resp.status_code == 400
    assert f"<h1>{heading}</h1>" in resp.text
    assert '<a class="button" href="/auth/login">Logi sisse</a>' in resp.text
    assert "Set-Cookie" not in resp.headers


def test_a_callback_of_one_school_replayed_at_another_is_refused(browser, make_tenant, make_person):
    a, b = make_tenant(), make_tenant()
    person = make_person(a.client, given_name="Tiina", family_name="Õunapuu")
    link = _callback_url(browser, a, person)
    query = urlsplit(link).query

    at_b = browser.http.get(f"{b.url}/auth/callback?{query}", allow_redirects=False, timeout=10)
    _refused(at_b, "Sisselogimine aegus")
    assert _is_visitor(b, dict(browser.http.cookies.items()), "Tiina Õunapuu")

    # B neither consumed A's state nor redeemed A's code: A's own callback still works.
    at_a = browser.http.get(link, allow_redirects=False, timeout=10)
    assert at_a.status_code == 303 and f"stuudium_{a.client.slug}=" in at_a.headers["Set-Cookie"]


def test_a_code_of_one_school_under_a_state_of_another_is_refused(
    idp, browser, make_tenant, make_person
):
    """Code injection: a code issued to A, pasted into B's callback with a state B issued."""
    a, b = make_tenant(), make_tenant()
    person = make_person(a.client, given_name="Tiina", family_name="Õunapuu")
    code = parse_qs(urlsplit(_callback_url(browser, a, person)).query)["code"][0]

    attacker = requests.Session()
    start = attacker.get(f"{b.url}/auth/login", allow_redirects=False, timeout=10)
    state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
    resp = attacker.get(
        f"{b.url}/auth/callback?" + urlencode({"code": code, "state": state, "iss": idp}),
        allow_redirects=False,
        timeout=10,
    )
    _refused(resp, "Sisselogimine ei õnnestunud")
    assert _is_visitor(b, dict(attacker.cookies.items()), "Tiina Õunapuu")


def _logout_token(idp_app: Any, client_id: str, sub: str | None, sid: str | None) -> str:
    """A logout token minted by the IdP itself, as its delivery would send it."""
    from idp.oidc import tokens
    from shared.db import get_db

    with idp_app.app_context():
        ring = idp_app.extensions["keys"].ring(get_db())
        return str(
            tokens.logout_token(
                ring, idp_app.config["ISSUER"], client_id=client_id, sub=sub, sid=sid
            )
        )


def test_a_logout_token_of_one_school_ends_only_that_schools_sessions(
    idp, idp_app, school_app, make_tenant, make_person, link_account
):
    a, b = make_tenant("Laagri Kool"), make_tenant("Laagri Lasteaed")
    teacher = make_person(a.client, given_name="Tiina", family_name="Õunapuu", roles=("teacher",))
    link_account(teacher, b.client, ["parent"])
    colleague = make_person(a.client, given_name="Peeter", family_name="Paju", roles=("teacher",))
    tiina, peeter = Browser(idp), Browser(idp)
    a_cookie = _sign_in(tiina, a, teacher)
    b_cookie = _jump(tiina, idp, b)
    peeter_cookie = _sign_in(peeter, a, colleague)
    a_data = _session_data(school_app, a, a_cookie)
    b_data = _session_data(school_app, b, b_cookie)
    assert a_data and b_data and a_data["sid"] == b_data["sid"]  # one SSO session
    sid = a_data["sid"]

    # B is given the logout token meant for A: refused, and nothing ends anywhere.
    token = _logout_token(idp_app, a.client.client_id, teacher.sub, sid)
    resp = requests.post(
        f"{b.url}/auth/backchannel-logout", data={"logout_token": token}, timeout=10
    )
    assert resp.status_code == 400
    assert resp.headers["Cache-Control"] == "no-store"
    assert _session_data(school_app, a, a_cookie) is not None
    assert _session_data(school_app, b, b_cookie) is not None

    # At A it ends A's sessions under that sid, and nothing else.
    resp = requests.post(
        f"{a.url}/auth/backchannel-logout", data={"logout_token": token}, timeout=10
    )
    assert resp.status_code == 200
    assert _session_data(school_app, a, a_cookie) is None
    assert _is_visitor(a, {f"stuudium_{a.client.slug}": a_cookie}, "Tiina Õunapuu")
    assert "Tiina Õunapuu" in _home(b, {f"stuudium_{b.client.slug}": b_cookie}).text
    assert "Peeter Paju" in _home(a, {f"stuudium_{a.client.slug}": peeter_cookie}).text


def test_a_logout_token_by_sub_for_one_school_leaves_the_other_school_alone(
    idp, idp_app, school_app, make_tenant, make_person, link_account
):
    """A token without sid ends that sub's sessions — only at the school it is for."""
    a, b = make_tenant(), make_tenant()
    person = make_person(a.client)
    b_sub = link_account(person, b.client, ["parent"])
    browser = Browser(idp)
    a_cookie = _sign_in(browser, a, person)
    b_cookie = _jump(browser, idp, b)

    token = _logout_token(idp_app, b.client.client_id, b_sub, None)
    resp = requests.post(
        f"{a.url}/auth/backchannel-logout", data={"logout_token": token}, timeout=10
    )
    assert resp.status_code == 400
    resp = requests.post(
        f"{b.url}/auth/backchannel-logout", data={"logout_token": token}, timeout=10
    )
    assert resp.status_code == 200
    assert _session_data(school_app, b, b_cookie) is None
    assert _session_data(school_app, a, a_cookie) is not None


def test_one_schools_data_is_not_visible_at_another(
    idp, school_app, browser, make_tenant, make_person, link_account
):
    from sqlalchemy import select
    from werkzeug.exceptions import NotFound

    from school_instance import tenancy
    from school_instance.models import Member
    from shared.db import get_db

    a, b = make_tenant("Laagri Kool"), make_tenant("Laagri Lasteaed")
    teacher = make_person(a.client, given_name="Tiina", family_name="Õunapuu", roles=("teacher",))
    b_sub = link_account(teacher, b.client, ["parent"])
    a_cookie = _sign_in(browser, a, teacher)
    b_cookie = _jump(browser, idp, b)

    # Each school knows the person by its own account: its own sub and its own roles.
    a_data, b_data = (
        _session_data(school_app, a, a_cookie),
        _session_data(school_app, b, b_cookie),
    )
    assert a_data and b_data
    assert (a_data["sub"], a_data["roles"]) == (teacher.sub, ["teacher"])
    assert (b_data["sub"], b_data["roles"]) == (b_sub, ["parent"])
    a_profile = browser.http.get(a.url + "/profile", timeout=10).text
    b_profile = browser.http.get(b.url + "/profile", timeout=10).text
    # The roles as the school says them (the profile shows names, not codes).
    assert "Rollid selles koolis: õpetaja</p>" in a_profile
    assert "Rollid selles koolis: lapsevanem</p>" in b_profile

    with school_app.app_context():
        a_member = get_db().scalar(select(Member).where(Member.sub == teacher.sub))
        assert a_member is not None
        a_member_id = a_member.id
    # The tenancy helpers at school B: A's row is not found, and not listed.
    with school_app.test_request_context("/", base_url=b.url):
        tenancy.resolve(school_app)
        with pytest.raises(NotFound):
            tenancy.get_scoped(Member, a_member_id)
        subs = get_db().scalars(tenancy.scoped(Member).with_only_columns(Member.sub)).all()
        assert subs == [b_sub]
    with school_app.test_request_context("/", base_url=a.url):
        tenancy.resolve(school_app)
        assert tenancy.get_scoped(Member, a_member_id).sub == teacher.sub  # the control


@pytest.mark.parametrize(
    "host",
    ["unknown.example", "localhost:{port}", "127.0.0.1:1", "127.0.0.1", "evil.example:{port}"],
)
def test_a_request_for_an_unknown_host_is_404(make_tenant, host):
    school = make_tenant()
    port = urlsplit(school.url).port
    headers = {"Host": host.format(port=port)}
    for method, path in (
        ("GET", "/"),
        ("GET", "/profile"),
        ("GET", "/auth/login"),
        ("GET", "/auth/login?iss=x"),
        ("GET", "/auth/callback?state=x&code=y"),
        ("POST", "/auth/backchannel-logout"),
        ("POST", "/auth/logout"),
    ):
        resp = requests.request(
            method, school.url + path, headers=headers, allow_redirects=False, timeout=10
        )
        assert resp.status_code == 404, (method, path)
        assert "<h1>Lehte ei leitud</h1>" in resp.text
        assert "Location" not in resp.headers and "Set-Cookie" not in resp.headers
    # The control: the school's own host is served.
    assert requests.get(school.url + "/", timeout=10).status_code == 200


def _post_form(browser: Browser, page_url: str, action: str, data: dict[str, str]) -> Any:
    """Submit a form with the CSRF token of the page it is on, as a browser would."""
    from tests.support import CSRF_RE

    found = CSRF_RE.search(browser.http.get(page_url, timeout=10).text)
    assert found, "a form with a CSRF token expected"
    return browser.http.post(
        action, data={"csrf_token": found.group(1), **data}, allow_redirects=False, timeout=10
    )


def test_an_admin_of_two_schools_sees_each_schools_data_only_there(
    idp, browser, make_tenant, make_person, link_account
):
    """The same person with the same role at both schools: what A holds never shows at B."""
    a, b = make_tenant("Laagri Kool"), make_tenant("Laagri Lasteaed")
    admin = make_person(a.client, given_name="Kaja", family_name="Kask", roles=("admin",))
    link_account(admin, b.client, ["admin"])
    _sign_in(browser, a, admin)

    made = _post_form(
        browser, a.url + "/admin/classes", a.url + "/admin/classes", {"name": "Salajane 9.c"}
    )
    assert made.status_code == 303
    class_path = urlsplit(made.headers["Location"]).path
    assert class_path.startswith("/admin/classes/")
    posted = _post_form(
        browser,
        a.url + "/news/new",
        a.url + "/news/new",
        {"title": "Ainult Laagri Koolile", "body": "Homme on spordipäev."},
    )
    assert posted.status_code == 303
    assert "Ainult Laagri Koolile" in browser.http.get(a.url + "/news", timeout=10).text
    assert "Salajane 9.c" in browser.http.get(a.url + class_path, timeout=10).text

    _jump(browser, idp, b)
    assert "Ainult Laagri Koolile" not in browser.http.get(b.url + "/news", timeout=10).text
    assert "Ainult Laagri Koolile" not in browser.http.get(b.url + "/", timeout=10).text
    assert "Salajane 9.c" not in browser.http.get(b.url + "/admin/classes", timeout=10).text
    other = browser.http.get(b.url + class_path, allow_redirects=False, timeout=10)
    assert other.status_code == 404 and "Salajane 9.c" not in other.text
    change = _post_form(
        browser, b.url + "/admin/classes", b.url + class_path + "/teacher", {"teacher_id": ""}
    )
    assert change.status_code == 404
