"""The ops command line: `idp db upgrade`, `idp schools add`, `idp clients add`, ..."""

from __future__ import annotations

import base64
import csv
import json
import mimetypes
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from prometheus_client import start_http_server
from sqlalchemy import select

from idp import create_app
from idp import worker as loop
from idp.dispatch.deliveries import resend
from idp.models import Client, Delivery, School, SigningKey
from idp.oidc.keys import ensure_keys, key_encryption, rotate
from idp.people.accounts import AccountError, create_account
from idp.tenants.operations import (
    audit_rows,
    delivery_stats,
    disable_school,
    end_school_sessions,
    update_school,
)
from idp.tenants.schools import RegistrationError, add_client, add_school, school_by_slug
from shared.app import add_db_commands, upgrade_schema
from shared.db import get_db

_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _app() -> Flask:
    return create_app()


def _emit(as_json: bool, data: dict[str, Any] | list[Any], text: Callable[[], str]) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else text())


def _development(app: Flask) -> bool:
    """Only development relaxes registration (plain http, internal hosts), as delivery does."""
    return bool(app.config["STUUDIUM_ENV"] == "development")


@click.group()
def main() -> None:
    """Stuudium ID identity provider: operations."""


def upgrade_database(app: Flask) -> None:
    """Apply Alembic migrations to head, then make sure signing keys exist."""
    upgrade_schema(app, Path(__file__).parent / "migrations")
    with app.app_context():
        session = get_db()
        ensure_keys(session, key_encryption(app.config["KEY_ENCRYPTION_KEYS"]))
        session.commit()


add_db_commands(main, lambda: upgrade_database(_app()))


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

    return {
        "issuer": current_app.config["ISSUER"],
        "school": client.school.slug,
        "school_name": client.school.name,
        "school_url": client.school.base_url,
        "client_id": client.client_id,
        "client_secret": secret,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "frontchannel_logout_uri": client.frontchannel_logout_uri,
        "events_uri": client.events_uri,
        "initiate_login_uri": client.initiate_login_uri,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
    }


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
            issued = add_school(
                session, slug, name, url, development=_development(app), logo=_logo(logo)
            )
        except RegistrationError as exc:
            raise click.ClickException(str(exc)) from exc
        data = _client_data(issued.client, issued.secret)
        session.commit()
    _emit(
        as_json,
        data,
        lambda: (
            f"school {slug} registered\nclient_id: {data['client_id']}\n"
            f"client_secret: {data['client_secret']}"
        ),
    )


def _school_data(school: Any) -> dict[str, Any]:
    return {
        "slug": school.slug,
        "name": school.name,
        "url": school.base_url,
        "status": school.status,
        "logo": bool(school.logo),
        "created_at": school.created_at,
    }


@schools.command("list")
@_json_option
def schools_list(as_json: bool) -> None:
    """List the schools with their address and status."""

    app = _app()
    with app.app_context():
        data = [_school_data(s) for s in get_db().scalars(select(School).order_by(School.slug))]
    _emit(
        as_json,
        data,
        lambda: (
            "\n".join(f"{d['slug']:24} {d['status']:9} {d['url']:40} {d['name']}" for d in data)
            or "no schools"
        ),
    )


@schools.command("update")
@click.argument("slug")
@click.option("--name")
@click.option("--logo", help="An image file; an empty value removes the logo.")
@click.option("--url", help="The school instance's new base URL (its clients' URIs move).")
@_json_option
def schools_update(
    slug: str, name: str | None, logo: str | None, url: str | None, as_json: bool
) -> None:
    """Change a school's branding (name, logo) or address."""

    if logo and not Path(logo).is_file():
        raise click.ClickException(f"no such file: {logo}")
    app = _app()
    with app.app_context():
        session = get_db()
        try:
            school = school_by_slug(session, slug)
            changed = update_school(
                session,
                school,
                name=name,
                url=url,
                logo="" if logo == "" else _logo(logo),
                development=_development(app),
            )
        except RegistrationError as exc:
            raise click.ClickException(str(exc)) from exc
        data = {**_school_data(school), "changed": changed}
        session.commit()
    _emit(
        as_json, data, lambda: f"school {slug}: " + (", ".join(changed) or "nothing") + " changed"
    )


@schools.command("disable")
@click.argument("slug")
@click.option(
    "--no-wait",
    is_flag=True,
    help="Skip the second sweep after the IdP processes' client caches expire.",
)
@_json_option
def schools_disable(slug: str, no_wait: bool, as_json: bool) -> None:
    """Disable a school: its clients stop authenticating and its part of every session ends
    (the schools are told through single logout)."""

    app = _app()
    with app.app_context():
        session = get_db()
        try:
            school = school_by_slug(session, slug)
        except RegistrationError as exc:
            raise click.ClickException(str(exc)) from exc
        disable_school(session, school)
        ended, queued = end_school_sessions(session, school)
        if not no_wait:
            # Each IdP process caches active clients for CLIENT_CACHE_SECONDS: until then a
            # login at this school can still start a session. The second sweep ends those.
            time.sleep(app.config["CLIENT_CACHE_SECONDS"] + 1)
            more, more_queued = end_school_sessions(session, school)
            ended, queued = ended + more, queued + more_queued
    data = {"school": slug, "status": "disabled", "sessions_ended": ended, "logouts_queued": queued}
    _emit(
        as_json,
        data,
        lambda: f"school {slug} disabled: {ended} sessions ended, {queued} logout messages queued",
    )


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
def clients_add(
    slug: str,
    name: str,
    redirect_uris: tuple[str, ...],
    post_logout: tuple[str, ...],
    backchannel_logout_uri: str | None,
    frontchannel_logout_uri: str | None,
    public: bool,
    id_token_alg: str,
    as_json: bool,
) -> None:
    """Register another relying party a school trusts."""
    app = _app()
    with app.app_context():
        session = get_db()
        try:
            school = school_by_slug(session, slug)
            issued = add_client(
                session,
                school,
                name,
                list(redirect_uris),
                development=_development(app),
                post_logout_redirect_uris=list(post_logout),
                backchannel_logout_uri=backchannel_logout_uri,
                frontchannel_logout_uri=frontchannel_logout_uri,
                public=public,
                id_token_alg=id_token_alg,
            )
        except RegistrationError as exc:
            raise click.ClickException(str(exc)) from exc
        data = _client_data(issued.client, issued.secret)
        session.commit()
    _emit(
        as_json,
        data,
        lambda: (
            f"client registered\nclient_id: {data['client_id']}\n"
            f"client_secret: {data['client_secret'] or '(public client)'}"
        ),
    )


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
def accounts_add(
    slug: str,
    email: str,
    given_name: str,
    family_name: str,
    isikukood: str | None,
    roles: tuple[str, ...],
    password_stdin: bool,
    as_json: bool,
) -> None:
    """Create a person with an account at a school."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    app = _app()
    with app.app_context():
        session = get_db()
        try:
            school = school_by_slug(session, slug)
            account = create_account(
                session,
                school.id,
                email=email,
                given_name=given_name,
                family_name=family_name,
                roles=list(roles),
                isikukood=isikukood,
                password=password,
            )
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
    return [
        {
            "kid": r.kid,
            "alg": r.alg,
            "state": r.state,
            "created_at": r.created_at,
            "activated_at": r.activated_at,
            "retiring_at": r.retiring_at,
        }
        for r in rows
    ]


@keys.command("rotate")
@_json_option
def keys_rotate(as_json: bool) -> None:
    """Promote the published next keys to signing; the old ones keep verifying for a while."""
    app = _app()
    with app.app_context():
        session = get_db()
        promoted = rotate(
            session,
            key_encryption(app.config["KEY_ENCRYPTION_KEYS"]),
            app.config["KEY_RETIRE_AFTER_SECONDS"],
        )
        session.commit()
        # Each running IdP process reads the key ring again when its cache expires.
        within = int(app.config["KEY_CACHE_SECONDS"])
        data = [{"kid": r.kid, "alg": r.alg, "signing_within_seconds": within} for r in promoted]
    _emit(
        as_json,
        data,
        lambda: "\n".join(
            f"{d['alg']}: {d['kid']} is the active key; every running IdP process signs with it "
            f"within {within} s (IDP_KEY_CACHE_SECONDS), until then with the previous key, "
            "which keeps verifying"
            for d in data
        ),
    )


@keys.command("list")
@_json_option
def keys_list(as_json: bool) -> None:
    """List the signing keys and their states."""
    app = _app()
    with app.app_context():
        data = _key_rows()
    _emit(
        as_json, data, lambda: "\n".join(f"{d['kid']:32} {d['alg']:6} {d['state']}" for d in data)
    )


@main.command()
@click.option("--once", is_flag=True, help="One round, then exit.")
@click.option(
    "--metrics-port",
    type=int,
    envvar="IDP_WORKER_METRICS_PORT",
    help="Serve this worker's Prometheus metrics (delivery latency) on this port.",
)
@click.option(
    "--metrics-address", default="127.0.0.1", envvar="IDP_WORKER_METRICS_ADDRESS", show_default=True
)
def worker(once: bool, metrics_port: int | None, metrics_address: str) -> None:
    """End timed-out sessions and deliver logout messages and data-sync events to schools,
    with retries."""

    if metrics_port:
        start_http_server(metrics_port, metrics_address)

    def report(done: loop.Round) -> None:
        for sid in done.ended_sessions:
            click.echo(f"session ended: timeout ({sid[:6]}…)")
        for o in done.outcomes:
            click.echo(
                f"delivery {o.delivery_id}: {'delivered' if o.delivered else o.status or o.error}"
            )

    loop.run(_app(), once=once, report=report)


@main.group()
def deliveries() -> None:
    """The delivery outbox (logout messages and data-sync events to schools)."""


@deliveries.command("list")
@click.option("--failed", is_flag=True, help="Only failed (400) and dead deliveries.")
@_json_option
def deliveries_list(failed: bool, as_json: bool) -> None:
    """List deliveries, newest first, with their state."""

    app = _app()
    with app.app_context():
        query = select(Delivery).order_by(Delivery.id.desc()).limit(200)
        if failed:
            query = query.where(Delivery.state.in_(("failed", "dead")))
        data = [
            {
                "id": d.id,
                "kind": d.kind,
                "school": d.client.school.slug,
                "client_id": d.client.client_id,
                "state": d.state,
                "attempts": d.attempts,
                "last_status": d.last_status,
                "last_error": d.last_error,
                "created_at": d.created_at,
                "next_attempt_at": d.next_attempt_at,
            }
            for d in get_db().scalars(query)
        ]
    _emit(
        as_json,
        data,
        lambda: (
            "\n".join(
                f"{d['id']:>6} {d['kind']:7} {d['school']:24} {d['state']:9} "
                f"attempts={d['attempts']} last={d['last_status'] or d['last_error'] or '-'}"
                for d in data
            )
            or "no deliveries"
        ),
    )


@deliveries.command("stats")
@click.option("--school", "slug", help="Only this school's deliveries.")
@_json_option
def deliveries_stats(slug: str | None, as_json: bool) -> None:
    """Counts by kind and state, the oldest undelivered, the schools waiting most."""

    app = _app()
    with app.app_context():
        session = get_db()
        try:
            school = school_by_slug(session, slug) if slug else None
        except RegistrationError as exc:
            raise click.ClickException(str(exc)) from exc
        data = delivery_stats(session, school)

    def text() -> str:
        lines = [
            f"{kind:7} " + " ".join(f"{state}={n}" for state, n in sorted(states.items()))
            for kind, states in sorted(data["by_state"].items())
        ] or ["no deliveries"]
        lines += [
            f"oldest pending {kind}: {age:.0f} s"
            for kind, age in sorted(data["oldest_pending_seconds"].items())
        ]
        lines += [f"waiting: {w['school']} {w['undelivered']}" for w in data["schools_waiting"]]
        return "\n".join(lines)

    _emit(as_json, data, text)


@deliveries.command("resend")
@click.argument("delivery_id", type=int)
def deliveries_resend(delivery_id: int) -> None:
    """Queue a failed or dead delivery again, due now."""

    app = _app()
    with app.app_context():
        if not resend(app, delivery_id):
            raise click.ClickException(f"no undelivered delivery {delivery_id}")
    click.echo(f"delivery {delivery_id} queued")


@main.group()
def audit() -> None:
    """The audit log."""


@audit.command("export")
@click.option(
    "--from",
    "start",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="First day (UTC), YYYY-MM-DD.",
)
@click.option(
    "--to",
    "end",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="Last day (UTC), YYYY-MM-DD, included.",
)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (the default is JSON lines).")
@_json_option
def audit_export(start: Any, end: Any, as_csv: bool, as_json: bool) -> None:
    """Export the audit events of a date range: JSON (--json), CSV (--csv) or JSON lines."""

    if end < start:
        raise click.ClickException("--to is before --from")
    app = _app()
    with app.app_context():
        rows = audit_rows(get_db(), start.date(), end.date())
    if as_csv:
        writer = csv.DictWriter(
            sys.stdout, fieldnames=["id", "at", "action", "actor", "school", "person_id", "details"]
        )
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "details": json.dumps(row["details"], ensure_ascii=False)})
    elif as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    main()
