"""`school-instance schools add` registers a tenant from `idp schools add --json` output."""

from __future__ import annotations

import json
import secrets

from click.testing import CliRunner


def test_a_school_is_imported_from_the_idp_json(idp_app, school_app, monkeypatch, state_dir):
    from sqlalchemy import select

    from idp.cli import main as idp_main
    from school_instance.cli import main as school_main
    from school_instance.models import Tenant
    from shared.db import get_db

    monkeypatch.setenv("DATABASE_URL", idp_app.config["DATABASE_URL"])
    monkeypatch.setenv("REDIS_URL", idp_app.config["REDIS_URL"])
    monkeypatch.setenv("IDP_ISSUER", idp_app.config["ISSUER"])
    slug = "cli-" + secrets.token_hex(3)
    out = CliRunner().invoke(
        idp_main,
        [
            "schools",
            "add",
            "--slug",
            slug,
            "--name",
            "Laagri Kool",
            "--url",
            "http://localhost:7001",
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["issuer"] == idp_app.config["ISSUER"]
    monkeypatch.setenv("SCHOOL_DATABASE_URL", school_app.config["DATABASE_URL"])
    res = CliRunner().invoke(
        school_main, ["schools", "add", "--from-json", "-"], input=json.dumps(data)
    )
    assert res.exit_code == 0, res.output
    assert "localhost:7001" in res.output
    with school_app.app_context():
        tenant = get_db().scalar(select(Tenant).where(Tenant.slug == slug))
        assert tenant is not None
        assert (tenant.client_id, tenant.client_secret) == (
            data["client_id"],
            data["client_secret"],
        )
        assert tenant.hosts == ["localhost:7001"] and tenant.issuer == idp_app.config["ISSUER"]


def test_missing_values_are_named(school_app, monkeypatch):
    from school_instance.cli import main as school_main

    monkeypatch.setenv("SCHOOL_DATABASE_URL", school_app.config["DATABASE_URL"])
    res = CliRunner().invoke(school_main, ["schools", "add", "--slug", "x"])
    assert res.exit_code != 0
    assert "client_id" in res.output and "issuer" in res.output


def test_a_host_serves_one_school_the_last_registered(school_app):
    from sqlalchemy import select

    from school_instance.cli import add_tenant
    from school_instance.models import Tenant
    from shared.db import get_db

    host = f"127.0.0.1:{secrets.randbelow(20000) + 40000}"
    first, second = "h-" + secrets.token_hex(3), "h-" + secrets.token_hex(3)
    for slug in (first, second):
        add_tenant(
            school_app,
            slug=slug,
            name=slug,
            url=f"http://{host}",
            issuer="http://127.0.0.1:9",
            client_id=slug,
            client_secret="x" * 32,
            hosts=[host, f"{slug}.example"],
        )
    with school_app.app_context():
        rows = {
            t.slug: t.hosts
            for t in get_db().scalars(select(Tenant).where(Tenant.slug.in_((first, second))))
        }
        assert rows == {first: [f"{first}.example"], second: [host, f"{second}.example"]}
        tenants = school_app.extensions["tenants"]
        tenants.invalidate()
        found = tenants.find(host)
        assert found is not None and found.slug == second
