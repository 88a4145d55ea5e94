"""The school instance's command line: schema and tenants."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click
from flask import Flask
from sqlalchemy import select

from school_instance import create_app
from school_instance.models import Tenant
from shared.app import add_db_commands, upgrade_schema
from shared.db import get_db


def _app() -> Flask:

    return create_app()


def upgrade_database(app: Flask) -> None:
    """Apply the school instance's migrations."""
    upgrade_schema(app, Path(__file__).parent / "migrations")


def add_tenant(
    app: Flask,
    *,
    slug: str,
    name: str,
    url: str,
    issuer: str,
    client_id: str,
    client_secret: str,
    hosts: list[str],
    locale: str = "et",
    logo_url: str | None = None,
) -> Tenant:
    """Register (or update) a school served by this deployment; a host serves one school, so
    hosts given here are taken from any other school that had them."""
    hosts = [h.lower() for h in (hosts or [urlsplit(url).netloc])]
    with app.app_context():
        db = get_db()
        for other in db.scalars(select(Tenant).where(Tenant.slug != slug)):
            if set(other.hosts or []) & set(hosts):
                other.hosts = [h for h in other.hosts if h not in hosts]
        tenant = db.scalar(select(Tenant).where(Tenant.slug == slug)) or Tenant(slug=slug)
        tenant.name, tenant.base_url, tenant.issuer = name, url.rstrip("/"), issuer.rstrip("/")
        tenant.client_id, tenant.client_secret = client_id, client_secret
        tenant.hosts = hosts
        tenant.default_locale = locale
        tenant.logo_url = logo_url
        db.add(tenant)
        db.commit()
        app.extensions["tenants"].invalidate()
        return tenant


@click.group()
def main() -> None:
    """Stuudium school instance: operations."""


add_db_commands(main, lambda: upgrade_database(_app()))


@main.group()
def schools() -> None:
    """Schools served by this deployment."""


@schools.command("add")
@click.option(
    "--from-json",
    "from_json",
    type=click.File("r"),
    help="The output of `idp schools add --json` (use - for standard input).",
)
@click.option("--slug")
@click.option("--name")
@click.option("--url", help="The school's base URL.")
@click.option("--issuer", help="The IdP's issuer URL.")
@click.option("--client-id")
@click.option("--client-secret-stdin", is_flag=True)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="Host (host:port) the school answers at; one other than the URL's redirects to the URL.",
)
@click.option("--logo-url", help="The school's own logo in its bar: the IdP's /schools/SLUG/logo.")
def schools_add(
    from_json: click.File | None,
    slug: str | None,
    name: str | None,
    url: str | None,
    issuer: str | None,
    client_id: str | None,
    client_secret_stdin: bool,
    hosts: tuple[str, ...],
    logo_url: str | None,
) -> None:
    """Register a school with its client credentials and the IdP issuer."""
    data = json.load(from_json) if from_json else {}  # type: ignore[arg-type]
    secret = sys.stdin.readline().strip() if client_secret_stdin else data.get("client_secret")
    values = {
        "slug": slug or data.get("school"),
        "name": name or data.get("school_name"),
        "url": url or data.get("school_url"),
        "issuer": issuer or data.get("issuer"),
        "client_id": client_id or data.get("client_id"),
        "client_secret": secret,
    }
    missing = [k for k, v in values.items() if not v]
    if missing:
        raise click.ClickException("missing: " + ", ".join(missing))
    tenant = add_tenant(_app(), hosts=list(hosts), logo_url=logo_url, **values)  # type: ignore[arg-type]
    click.echo(f"school {tenant.slug} served at {', '.join(tenant.hosts)}")
