"""The `idp` ops CLI and the registration rules behind it (idp.tenants.schools)."""

from __future__ import annotations

import json
import secrets
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from click.testing import Result

from idp.tenants.schools import RegistrationError, add_client, add_school, check_uri
from shared.security import sha256_hex
from tests.support import Browser, SchoolClient, authorize_url, pkce_pair, token_request


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def new_slug() -> str:
    return "c-" + secrets.token_hex(5)


def client_row(idp_app, client_id: str) -> Any:
    from sqlalchemy import select

    from idp.models import Client
    from shared.db import get_db

    with idp_app.app_context():
        row = get_db().scalar(select(Client).where(Client.client_id == client_id))
        assert row is not None
        return SimpleNamespace(
            secret_hash=row.secret_hash, token_endpoint_auth_method=row.token_endpoint_auth_method
        )


def school_exists(idp_app, slug: str) -> bool:
    from idp.tenants.schools import school_by_slug
    from shared.db import get_db

    with idp_app.app_context():
        try:
            school_by_slug(get_db(), slug)
        except RegistrationError:
            return False
        return True


# ------------------------------------------------------------------------ schools add


def test_schools_add_json_prints_client_id_and_a_long_secret(idp, idp_app, cli):
    slug = new_slug()
    url = f"http://127.0.0.1:9/{slug}"
    data = ok_json(
        cli("schools", "add", "--slug", slug, "--name", "Laagri Kool", "--url", url, "--json")
    )
    assert data["school"] == slug and data["client_id"]
    secret = data["client_secret"]
    assert isinstance(secret, str) and len(secret) >= 32
    assert data["redirect_uris"] == [f"{url}/auth/callback"]
    assert data["backchannel_logout_uri"] == f"{url}/auth/backchannel-logout"
    # Stored as a SHA-256, never in clear.
    row = client_row(idp_app, data["client_id"])
    assert row.secret_hash == sha256_hex(secret) and row.secret_hash != secret
    # The printed secret authenticates the school at the IdP; a wrong one does not.
    resp = requests.post(
        f"{idp}/introspect", data={"token": "x"}, auth=(data["client_id"], secret), timeout=5
    )
    assert resp.status_code == 200 and resp.json() == {"active": False}
    resp = requests.post(
        f"{idp}/introspect", data={"token": "x"}, auth=(data["client_id"], secret[:-1]), timeout=5
    )
    assert resp.status_code == 401


def test_schools_add_issues_a_fresh_secret_each_time(cli):
    secrets_seen = {
        ok_json(
            cli(
                "schools",
                "add",
                "--slug",
                new_slug(),
                "--name",
                "K",
                "--url",
                "http://127.0.0.1:9/k",
                "--json",
            )
        )["client_secret"]
        for _ in range(3)
    }
    assert len(secrets_seen) == 3


def test_schools_add_plain_text_output(cli):
    slug = new_slug()
    result = cli("schools", "add", "--slug", slug, "--name", "K", "--url", "http://127.0.0.1:9/k")
    assert result.exit_code == 0, result.output
    assert "client_id:" in result.output and "client_secret:" in result.output


def test_schools_add_refuses_a_taken_slug(cli):
    slug = new_slug()
    ok_json(
        cli(
            "schools",
            "add",
            "--slug",
            slug,
            "--name",
            "K",
            "--url",
            "http://127.0.0.1:9/k",
            "--json",
        )
    )
    result = cli(
        "schools", "add", "--slug", slug, "--name", "K2", "--url", "http://127.0.0.1:9/k2", "--json"
    )
    assert result.exit_code != 0 and "exists" in result.output


BAD_URLS = [
    "ftp://school.example/",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "/relative/path",
    "school.example",
    "https://school.example/#frag",
    "https://school.example/path#",
    "https://user:pw@school.example/",
    "https://",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_schools_add_refuses_bad_urls(idp_app, cli, url):
    slug = new_slug()
    result = cli("schools", "add", "--slug", slug, "--name", "K", "--url", url, "--json")
    assert result.exit_code != 0
    assert "Error" in result.output and "client_secret" not in result.output
    assert not school_exists(idp_app, slug)


# ------------------------------------------------------------------------ clients add


@pytest.fixture
def school_slug(cli) -> str:
    slug = new_slug()
    ok_json(
        cli(
            "schools",
            "add",
            "--slug",
            slug,
            "--name",
            "K",
            "--url",
            "http://127.0.0.1:9/base",
            "--json",
        )
    )
    return slug


@pytest.mark.parametrize(
    "option",
    [
        "--redirect-uri",
        "--post-logout-redirect-uri",
        "--backchannel-logout-uri",
        "--frontchannel-logout-uri",
    ],
)
@pytest.mark.parametrize(
    "uri",
    [
        "ftp://127.0.0.1:9/x",
        "javascript:alert(1)",
        "/relative",
        "http://127.0.0.1:9/cb#frag",
        "data:text/html,hi",
    ],
)
def test_clients_add_refuses_bad_uris(cli, school_slug, option, uri):
    args = ["clients", "add", "--school", school_slug, "--name", "App", "--json"]
    if option != "--redirect-uri":
        args += ["--redirect-uri", "http://127.0.0.1:9/app/cb"]
    result = cli(*args, option, uri)
    assert result.exit_code != 0, result.output
    assert "client_secret" not in result.output


def test_clients_add_refuses_outbound_uris_of_another_origin(cli, school_slug):
    result = cli(
        "clients",
        "add",
        "--school",
        school_slug,
        "--name",
        "App",
        "--redirect-uri",
        "http://127.0.0.1:9/app/cb",
        "--backchannel-logout-uri",
        "http://10.0.0.1/logout",
        "--json",
    )
    assert result.exit_code != 0 and "origin" in result.output


def test_clients_add_public_and_es256(idp_app, cli, school_slug):
    data = ok_json(
        cli(
            "clients",
            "add",
            "--school",
            school_slug,
            "--name",
            "App",
            "--redirect-uri",
            "http://127.0.0.1:9/app/cb",
            "--public",
            "--id-token-alg",
            "ES256",
            "--post-logout-redirect-uri",
            "http://127.0.0.1:9/app/bye",
            "--json",
        )
    )
    assert data["client_secret"] is None
    assert data["id_token_signed_response_alg"] == "ES256"
    assert data["post_logout_redirect_uris"] == ["http://127.0.0.1:9/app/bye"]
    row = client_row(idp_app, data["client_id"])
    assert row.secret_hash is None and row.token_endpoint_auth_method == "none"


# -------------------------------------------------- the rules, production (https only)


@pytest.mark.parametrize(
    "uri", ["http://school.example/cb", "http://localhost:5001/cb", "http://127.0.0.1/cb"]
)
def test_check_uri_refuses_plain_http_in_production(uri):
    with pytest.raises(RegistrationError, match="http"):
        check_uri(uri, development=False)
    assert check_uri(uri, development=True) == uri


@pytest.mark.parametrize("uri", BAD_URLS)
def test_check_uri_refuses_bad_uris_everywhere(uri):
    for development in (True, False):
        with pytest.raises(RegistrationError):
            check_uri(uri, development=development)


def test_check_uri_accepts_https_in_production():
    uri = "https://kool.example.ee/auth/callback?tenant=1"
    assert check_uri(uri, development=False) == uri


def test_add_client_and_school_refuse_plain_http_in_production(idp_app, monkeypatch):
    from shared.db import get_db

    monkeypatch.setenv("STUUDIUM_ENV", "production")
    with idp_app.app_context():
        db = get_db()
        try:
            with pytest.raises(RegistrationError, match="http"):
                add_school(db, new_slug(), "K", "http://kool.example.ee", development=False)
            issued = add_school(db, new_slug(), "K", "https://kool.example.ee", development=False)
            assert issued.client.redirect_uris == ["https://kool.example.ee/auth/callback"]
            school = issued.client.school
            with pytest.raises(RegistrationError, match="http"):
                add_client(db, school, "App", ["http://kool.example.ee/cb"], development=False)
            with pytest.raises(RegistrationError, match="http"):
                add_client(
                    db,
                    school,
                    "App",
                    ["https://kool.example.ee/cb"],
                    development=False,
                    post_logout_redirect_uris=["http://kool.example.ee/bye"],
                )
            with pytest.raises(RegistrationError, match="http"):
                add_client(
                    db,
                    school,
                    "App",
                    ["https://kool.example.ee/cb"],
                    development=False,
                    backchannel_logout_uri="http://kool.example.ee/bc",
                )
            with pytest.raises(RegistrationError, match="fragment"):
                add_client(db, school, "App", ["https://kool.example.ee/cb#x"], development=False)
            with pytest.raises(RegistrationError):
                add_client(db, school, "App", [], development=False)
            ok = add_client(
                db,
                school,
                "App",
                ["https://kool.example.ee/cb"],
                development=False,
                post_logout_redirect_uris=["https://kool.example.ee/bye"],
                backchannel_logout_uri="https://kool.example.ee/bc",
            )
            assert ok.secret is not None and len(ok.secret) >= 32
        finally:
            db.rollback()


# ----------------------------------------------------------------------- accounts add


def test_accounts_add_with_password_stdin_can_log_in(idp, cli, make_school):
    school = make_school()
    email = f"{secrets.token_hex(4)}@example.ee"
    password = "kuusk-mänd-" + secrets.token_hex(6)
    result = cli(
        "accounts",
        "add",
        "--school",
        school.slug,
        "--email",
        email,
        "--given-name",
        "Tiit",
        "--family-name",
        "Tamm",
        "--role",
        "teacher",
        "--role",
        "parent",
        "--password-stdin",
        "--json",
        input=password + "\n",
    )
    data = ok_json(result)
    assert password not in result.output
    assert data["email"] == email and data["sub"]
    assert sorted(data["roles"]) == ["parent", "teacher"]
    browser = Browser(idp)
    verifier, challenge = pkce_pair()
    page = browser.follow(authorize_url(idp, school, challenge), school.redirect_uri)
    resp = browser.submit_login(page, email, password, school.redirect_uri)
    assert resp.status_code in (302, 303), resp.text
    code = resp.headers["Location"].split("code=")[1].split("&")[0]
    tokens = token_request(
        idp,
        school,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": school.redirect_uri,
            "code_verifier": verifier,
        },
    )
    assert tokens.status_code == 200, tokens.text
    info = requests.get(
        f"{idp}/userinfo",
        timeout=5,
        headers={"Authorization": f"Bearer {tokens.json()['access_token']}"},
    ).json()
    assert info["sub"] == data["sub"] and info["email"] == email
    assert info["name"] == "Tiit Tamm"


def test_accounts_add_wrong_password_does_not_log_in(idp, cli, make_school):
    school: SchoolClient = make_school()
    email = f"{secrets.token_hex(4)}@example.ee"
    ok_json(
        cli(
            "accounts",
            "add",
            "--school",
            school.slug,
            "--email",
            email,
            "--given-name",
            "Tiit",
            "--family-name",
            "Tamm",
            "--password-stdin",
            "--json",
            input="a-right-password-123\n",
        )
    )
    browser = Browser(idp)
    _, challenge = pkce_pair()
    page = browser.follow(authorize_url(idp, school, challenge), school.redirect_uri)
    resp = browser.submit_login(page, email, "a-wrong-password-123", school.redirect_uri)
    assert resp.status_code == 200 and 'name="password"' in resp.text


@pytest.mark.parametrize(
    ("override", "stdin", "message"),
    [
        ({"--school": "no-such-school"}, "a-long-password-1\n", "no school"),
        ({}, "short\n", "password"),
        ({"--email": "not-an-email"}, "a-long-password-1\n", "e-mail"),
        ({"--role": "janitor"}, "a-long-password-1\n", "roles"),
        ({"--isikukood": "12345678901"}, "a-long-password-1\n", "isikukood"),
    ],
)
def test_accounts_add_refusals(cli, make_school, override, stdin, message):
    school = make_school()
    options = {
        "--school": school.slug,
        "--email": f"{secrets.token_hex(4)}@example.ee",
        "--given-name": "Tiit",
        "--family-name": "Tamm",
        **override,
    }
    argv = [x for pair in options.items() for x in pair]
    result = cli("accounts", "add", *argv, "--password-stdin", "--json", input=stdin)
    assert result.exit_code != 0
    assert message in result.output


def test_accounts_add_refuses_a_second_active_account_with_the_email(cli, make_school):
    school = make_school()
    email = f"{secrets.token_hex(4)}@example.ee"
    for address, ok in ((email, True), (email.upper(), False)):
        result = cli(
            "accounts",
            "add",
            "--school",
            school.slug,
            "--email",
            address,
            "--given-name",
            "A",
            "--family-name",
            "B",
            "--json",
        )
        assert (result.exit_code == 0) is ok, result.output
    assert "exists" in result.output


# -------------------------------------------------------------------------- keys list


def test_keys_list_json(cli):
    rows = ok_json(cli("keys", "list", "--json"))
    assert rows
    for row in rows:
        assert {"kid", "alg", "state", "created_at"} <= set(row)
        assert row["state"] in ("next", "active", "retiring", "retired")
    for alg in ("RS256", "ES256"):
        assert len([r for r in rows if r["alg"] == alg and r["state"] == "active"]) == 1
        assert len([r for r in rows if r["alg"] == alg and r["state"] == "next"]) == 1
    text = json.dumps(rows)
    assert "PRIVATE KEY" not in text and '"d":' not in text and "private" not in text
    kids = [r["kid"] for r in rows]
    assert len(set(kids)) == len(kids)
    plain = cli("keys", "list")
    assert plain.exit_code == 0 and all(kid in plain.output for kid in kids)
