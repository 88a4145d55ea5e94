"""The ops command line: `idp db upgrade`, `idp schools add`, `idp clients add`, ..."""

from __future__ import annotations

import base64
import json
import mimetypes
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask import Flask
from sqlalchemy import select

from idp import create_app
from idp.accounts import AccountError, create_account
from idp.keys import ensure_keys, key_encryption, rotate
from idp.models import Client, SigningKey
from idp.schools import RegistrationError, add_client, add_school, school_by_slug
from shared.app import upgrade_schema
from shared.db import get_db

_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _app() -> Flask:
    return create_app()


def _emit(as_json: bool, data: dict[str, Any] | list[Any], text: Callable[[], str]) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else text())


def _development(app: Flask) -> bool:
    return bool(app.config["STUUDIUM_ENV"] != "production")


@click.group()
def main() -> None:
    """Stuudium ID identity provider: operations."""


@main.group()
def db() -> None:
    """Database schema."""


def upgrade_database(app: Flask) -> None:
    """Apply Alembic migrations to head and make sure signing keys exist."""
    upgrade_schema(app, Path(__file__).parent / "migrations")
    with app.app_context():
        session = get_db()
        ensure_keys(session, key_encryption(app.config["KEY_ENCRYPTION_KEYS"]))
        session.commit()


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the schema to the newest version."""
    upgrade_database(_app())
    click.echo("database is up to date")


@main.group()
def schools() -> None:
    """Schools (tenants)."""


def _logo(path: str | None) -> str | None:
    if not path:
        return None
    data = Path(path).read_bytes()
    mime = mimetypes.guess_type(path)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _client_data(client: Client, secret: str | None) -> dict[str, Any]:
    from flask import current_app

    return {"issuer": current_app.config["ISSUER"],
            "school": client.school.slug, "school_name": client.school.name,
            "school_url": client.school.base_url, "client_id": client.client_id,
            "client_secret": secret, "redirect_uris": client.redirect_uris,
            "post_logout_redirect_uris": client.post_logout_redirect_uris,
            "backchannel_logout_uri": client.backchannel_logout_uri,
            "frontchannel_logout_uri": client.frontchannel_logout_uri,
            "events_uri": client.events_uri, "initiate_login_uri": client.initiate_login_uri,
            "id_token_signed_response_alg": client.id_token_signed_response_alg}


@schools.command("add")
@click.option("--slug", required=True)
@click.option("--name", required=True)
@click.option("--url", required=True, help="The school instance's base URL.")
@click.option("--logo", type=click.Path(exists=True, dir_okay=False))
@_json_option
def schools_add(slug: str, name: str, url: str, logo: str | None, as_json: bool) -> None:
    """Register a school and its e-diary client; prints client_id and the secret once."""
    app = _app()
    with app.app_context():
        session = get_db()
        try:
            issued = add_school(session, slug, name, url, development=_development(app),
                                logo=_logo(logo))
        except RegistrationError as exc:
            raise click.ClickException(str(exc)) from exc
        data = _client_data(issued.client, issued.secret)
        session.commit()
    _emit(as_json, data, lambda: f"school {slug} registered\nclient_id: {data['client_id']}\n"
          f"client_secret: {data['client_secret']}")


@main.group()
def clients() -> None:
    """OIDC clients (relying parties) of schools."""


@clients.command("add")
@click.option("--school", "slug", required=True)
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True, required=True)
@click.option("--post-logout-redirect-uri", "post_logout", multiple=True)
@click.option("--backchannel-logout-uri")
@click.option("--frontchannel-logout-uri")
@click.option("--public", is_flag=True, help="A public client (no secret; PKCE only).")
@click.option("--id-token-alg", type=click.Choice(["RS256", "ES256"]), default="RS256")
@_json_option
def clients_add(slug: str, name: str, redirect_uris: tuple[str, ...], post_logout: tuple[str, ...],
                backchannel_logout_uri: str | None, frontchannel_logout_uri: str | None,
                public: bool, id_token_alg: str, as_json: bool) -> None:
    """Register another relying party a school trusts."""
    app = _app()
    with app.app_context():
        session = get_db()
        try:
            school = school_by_slug(session, slug)
            issued = add_client(session, school, name, list(redirect_uris),
                                development=_development(app),
                                post_logout_redirect_uris=list(post_logout),
                                backchannel_logout_uri=backchannel_logout_uri,
                                frontchannel_logout_uri=frontchannel_logout_uri, public=public,
                                id_token_alg=id_token_alg)
        except RegistrationError as exc:
            raise click.ClickException(str(exc)) from exc
        data = _client_data(issued.client, issued.secret)
        session.commit()
    _emit(as_json, data, lambda: f"client registered\nclient_id: {data['client_id']}\n"
          f"client_secret: {data['client_secret'] or '(public client)'}")


@main.group()
def accounts() -> None:
    """People's accounts at schools."""


@accounts.command("add")
@click.option("--school", "slug", required=True)
@click.option("--email", required=True)
@click.option("--given-name", required=True)
@click.option("--family-name", required=True)
@click.option("--isikukood")
@click.option("--role", "roles", multiple=True, default=("parent",), show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@_json_option
def accounts_add(slug: str, email: str, given_name: str, family_name: str,
                 isikukood: str | None, roles: tuple[str, ...], password_stdin: bool,
                 as_json: bool) -> None:
    """Create a person with an account at a school."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    app = _app()
    with app.app_context():
        session = get_db()
        try:
            school = school_by_slug(session, slug)
            account = create_account(session, school.id, email=email, given_name=given_name,
                                     family_name=family_name, roles=list(roles),
                                     isikukood=isikukood, password=password)
        except (RegistrationError, AccountError) as exc:
            raise click.ClickException(str(exc)) from exc
        data = {"school": slug, "sub": account.sub, "email": email, "roles": account.roles}
        session.commit()
    _emit(as_json, data, lambda: f"account created at {slug}: sub {data['sub']}")


@main.group()
def keys() -> None:
    """Token-signing keys."""


def _key_rows() -> list[dict[str, Any]]:
    rows = get_db().scalars(select(SigningKey).order_by(SigningKey.id)).all()
    return [{"kid": r.kid, "alg": r.alg, "state": r.state, "created_at": r.created_at,
             "activated_at": r.activated_at, "retiring_at": r.retiring_at} for r in rows]


@keys.command("rotate")
@_json_option
def keys_rotate(as_json: bool) -> None:
    """Promote the published next keys to signing; the old ones keep verifying for a while."""
    app = _app()
    with app.app_context():
        session = get_db()
        promoted = rotate(session, key_encryption(app.config["KEY_ENCRYPTION_KEYS"]),
                          app.config["KEY_RETIRE_AFTER_SECONDS"])
        session.commit()
        data = [{"kid": r.kid, "alg": r.alg} for r in promoted]
    _emit(as_json, data, lambda: "\n".join(f"{d['alg']} now signs with {d['kid']}"
                                           for d in data))


@keys.command("list")
@_json_option
def keys_list(as_json: bool) -> None:
    """List the signing keys and their states."""
    app = _app()
    with app.app_context():
        data = _key_rows()
    _emit(as_json, data, lambda: "\n".join(f"{d['kid']:32} {d['alg']:6} {d['state']}"
                                           for d in data))


@main.command()
@click.option("--once", is_flag=True, help="One round, then exit.")
@click.option("--metrics-port", type=int, envvar="IDP_WORKER_METRICS_PORT",
              help="Serve this worker's Prometheus metrics (delivery latency) on this port.")
@click.option("--metrics-address", default="127.0.0.1", envvar="IDP_WORKER_METRICS_ADDRESS",
              show_default=True)
def worker(once: bool, metrics_port: int | None, metrics_address: str) -> None:
    """End timed-out sessions and deliver logout messages and data-sync events to schools,
    with retries."""
    from idp import worker as loop

    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, metrics_address)

    def report(done: loop.Round) -> None:
        for sid in done.ended_sessions:
            click.echo(f"session ended: timeout ({sid[:6]}…)")
        for o in done.outcomes:
            click.echo(f"delivery {o.delivery_id}: "
                       f"{'delivered' if o.delivered else o.status or o.error}")

    loop.run(_app(), once=once, report=report)


@main.group()
def deliveries() -> None:
    """The delivery outbox (logout messages and data-sync events to schools)."""


@deliveries.command("list")
@click.option("--failed", is_flag=True, help="Only failed (400) and dead deliveries.")
@_json_option
def deliveries_list(failed: bool, as_json: bool) -> None:
    """List deliveries, newest first, with their state."""
    from idp.models import Delivery

    app = _app()
    with app.app_context():
        query = select(Delivery).order_by(Delivery.id.desc()).limit(200)
        if failed:
            query = query.where(Delivery.state.in_(("failed", "dead")))
        data = [{"id": d.id, "kind": d.kind, "school": d.client.school.slug,
                 "client_id": d.client.client_id, "state": d.state, "attempts": d.attempts,
                 "last_status": d.last_status, "last_error": d.last_error,
                 "created_at": d.created_at, "next_attempt_at": d.next_attempt_at}
                for d in get_db().scalars(query)]
    _emit(as_json, data, lambda: "\n".join(
        f"{d['id']:>6} {d['kind']:7} {d['school']:24} {d['state']:9} attempts={d['attempts']}"
        f" last={d['last_status'] or d['last_error'] or '-'}" for d in data) or "no deliveries")


@deliveries.command("resend")
@click.argument("delivery_id", type=int)
def deliveries_resend(delivery_id: int) -> None:
    """Queue a failed or dead delivery again, due now."""
    from idp.deliveries import resend

    app = _app()
    with app.app_context():
        if not resend(app, delivery_id):
            raise click.ClickException(f"no undelivered delivery {delivery_id}")
    click.echo(f"delivery {delivery_id} queued")


if __name__ == "__main__":
    main()
