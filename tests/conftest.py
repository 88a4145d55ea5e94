"""Shared fixtures: one IdP served over HTTP for the test session, on PostgreSQL + Redis when
DATABASE_URL / REDIS_URL are set, else on SQLite + embedded Redis."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.support import Browser, LiveServer, PersonLogin, SchoolClient, Tenant, free_port


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for embedded state of this test session."""
    path = tmp_path_factory.mktemp("state")
    os.environ["STUUDIUM_VAR_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def idp_port() -> int:
    """The IdP's port."""
    return free_port()


@pytest.fixture(scope="session")
def idp_app(state_dir: Path, idp_port: int) -> Flask:
    """The IdP application with its schema migrated."""
    from idp import create_app
    from idp.cli import upgrade_database

    # Every test logs in from 127.0.0.1: the per-address failure cap is lifted so that tests of
    # wrong passwords cannot lock out other tests; the per-account cap stays as configured.
    config = {
        "ISSUER": f"http://127.0.0.1:{idp_port}",
        "KEY_CACHE_SECONDS": 0,
        "TESTING": True,
        "LOGIN_MAX_FAILURES_PER_ADDRESS": 1_000_000,
        "FORM_RATE_LIMIT": "1000000 per minute",
    }
    if not os.environ.get("DATABASE_URL"):
        config["DATABASE_URL"] = f"sqlite:///{state_dir / 'idp.db'}"
    app = create_app(config)
    upgrade_database(app)
    return app


@pytest.fixture(scope="session")
def idp(idp_app: Flask, idp_port: int) -> Iterator[str]:
    """The issuer URL of the IdP served over HTTP."""
    server = LiveServer(idp_app, idp_port).start()
    yield server.url
    server.stop()


@pytest.fixture
def make_school(idp_app: Flask) -> Callable[..., SchoolClient]:
    """Register a school (or a client of it) and return its credentials."""
    from idp.tenants.schools import add_client, add_school
    from shared.db import get_db

    def make(
        public: bool = False, id_token_alg: str | None = None, backchannel: str | None = None
    ) -> SchoolClient:
        slug = "s-" + secrets.token_hex(5)
        base = f"http://127.0.0.1:9/{slug}"
        with idp_app.app_context():
            db = get_db()
            issued = add_school(db, slug, f"Kool {slug}", base, development=True)
            if public or id_token_alg is not None or backchannel:
                issued = add_client(
                    db,
                    issued.client.school,
                    "extra",
                    [f"{base}/cb"],
                    development=True,
                    public=public,
                    id_token_alg=id_token_alg or "RS256",
                    post_logout_redirect_uris=[f"{base}/bye"],
                    backchannel_logout_uri=backchannel,
                )
            db.commit()
            client = issued.client
            return SchoolClient(
                slug,
                client.school.name,
                client.client_id,
                issued.secret,
                client.redirect_uris[0],
                client.post_logout_redirect_uris[0],
            )

    return make


@pytest.fixture
def make_person(idp_app: Flask) -> Callable[..., PersonLogin]:
    """Create a person with a password and an account at a school."""
    from idp.people.accounts import create_account
    from idp.tenants.schools import school_by_slug
    from shared.db import get_db

    def make(
        school: SchoolClient,
        given_name: str = "Mari",
        family_name: str = "Maasikas",
        roles: tuple[str, ...] = ("parent",),
        isikukood: str | None = None,
        email: str | None = None,
    ) -> PersonLogin:
        email = email or f"{secrets.token_hex(4)}@example.ee"
        password = "mets-kask-" + secrets.token_hex(6)
        with idp_app.app_context():
            db = get_db()
            account = create_account(
                db,
                school_by_slug(db, school.slug).id,
                email=email,
                given_name=given_name,
                family_name=family_name,
                roles=list(roles),
                password=password,
                isikukood=isikukood,
            )
            db.commit()
            return PersonLogin(email, password, account.sub, given_name, family_name)

    return make


@pytest.fixture
def browser(idp: str) -> Browser:
    """A fresh browser."""
    return Browser(idp)


@pytest.fixture(scope="session")
def school_app(state_dir: Path, idp_app: Flask) -> Flask:
    """The school instance (one deployment for every test school), schema migrated."""
    from school_instance import create_app
    from school_instance.cli import upgrade_database

    config: dict[str, object] = {"TESTING": True, "TENANT_CACHE_SECONDS": 0}
    if not os.environ.get("DATABASE_URL"):
        config["DATABASE_URL"] = f"sqlite:///{state_dir / 'school.db'}"
    config["REDIS_URL"] = idp_app.config["REDIS_URL"]
    app = create_app(config)
    upgrade_database(app)
    return app


@pytest.fixture
def make_tenant(idp: str, idp_app: Flask, school_app: Flask) -> Iterator[Callable[..., Tenant]]:
    """Register a school at the IdP and serve it from the school instance on a port of its own."""
    from idp.tenants.schools import add_school
    from school_instance.cli import add_tenant
    from shared.db import get_db

    servers: list[LiveServer] = []

    def make(name: str | None = None) -> Tenant:
        port = free_port()
        slug = "t-" + secrets.token_hex(4)
        url = f"http://127.0.0.1:{port}"
        with idp_app.app_context():
            db = get_db()
            issued = add_school(db, slug, name or f"Kool {slug}", url, development=True)
            db.commit()
            client = SchoolClient(
                slug,
                issued.client.school.name,
                issued.client.client_id,
                issued.secret,
                issued.client.redirect_uris[0],
                issued.client.post_logout_redirect_uris[0],
            )
        add_tenant(
            school_app,
            slug=slug,
            name=client.name,
            url=url,
            issuer=idp,
            client_id=client.client_id,
            client_secret=issued.secret or "",
            hosts=[f"127.0.0.1:{port}"],
        )
        server = LiveServer(school_app, port).start()
        servers.append(server)
        return Tenant(url=url, client=client, server=server)

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def link_account(idp_app: Flask) -> Callable[[PersonLogin, SchoolClient, list[str]], str]:
    """Give an existing person an account at another school (as linking would); returns sub."""
    from sqlalchemy import select

    from idp.models import Account
    from idp.tenants.schools import school_by_slug
    from shared.db import get_db

    def link(person: PersonLogin, school: SchoolClient, roles: list[str]) -> str:
        with idp_app.app_context():
            db = get_db()
            first = db.scalar(select(Account).where(Account.sub == person.sub))
            assert first is not None
            sub = secrets.token_urlsafe(24)
            db.add(
                Account(
                    person_id=first.person_id,
                    school_id=school_by_slug(db, school.slug).id,
                    sub=sub,
                    roles=roles,
                    login_email=first.login_email,
                )
            )
            db.commit()
            return sub

    return link


@pytest.fixture
def cli(idp_app: Flask, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Run the `idp` CLI against the test IdP's database and Redis; returns the click Result."""
    from click.testing import CliRunner

    from idp.cli import main

    monkeypatch.setenv("DATABASE_URL", idp_app.config["DATABASE_URL"])
    monkeypatch.setenv("REDIS_URL", idp_app.config["REDIS_URL"])
    monkeypatch.setenv("STUUDIUM_VAR_DIR", str(state_dir))
    monkeypatch.delenv("STUUDIUM_ENV", raising=False)
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Any:
        return runner.invoke(main, list(args), input=input)

    return run


@pytest.fixture(scope="session")
def mail_catcher(idp_app: Flask) -> Iterator[Any]:
    """A mail catcher of the tests' own (SMTP and its JSON list on free ports); the IdP sends
    to it."""
    from deploy.dev.mailcatcher import MailCatcher

    catcher = MailCatcher(free_port(), free_port()).start()
    idp_app.config["SMTP_URL"] = catcher.smtp_url
    yield catcher
    catcher.stop()


@pytest.fixture
def inbox(idp_app: Flask, mail_catcher: Any) -> Callable[[str], list[dict[str, Any]]]:
    """Run the mail sender (as the worker does each round), then read an address's messages
    from the catcher's JSON list over HTTP, oldest first."""
    import requests

    from idp.dispatch import mail as mailer

    def read(address: str) -> list[dict[str, Any]]:
        with idp_app.app_context():
            while mailer.run_once(idp_app):
                pass
        messages = requests.get(f"{mail_catcher.url}/api/messages", timeout=10).json()
        return [m for m in messages["messages"] if address.lower() in (t.lower() for t in m["to"])]

    return read
